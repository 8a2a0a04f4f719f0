"""Which ingredient of `configs/topology.py` matters: the recipe and its
ablations (`node`, `coordinates`, `max`, `mean`) trained the same way.

Usage:
  python scripts/topology_ablation.py --workdir runs/topology_ablation
      [--variants full,node,coordinates,max,mean] [--num_epochs 3]
      [--max_train 4000] [--out FILE]

Each variant is `configs/topology.py:<variant>` ('full': no option) with
the same overrides (`num_epochs`, `dataset.max_train`: a smaller, fixed
study than the recipe's own run, so that all five fit in one sitting),
3 seeds as vmapped members, in `<workdir>/<variant>/` (resumable; a
finished run is read back). For each: val and test accuracy of the
members (mean, sd), the members' values and the training time. Results go
to --out (default <workdir>/topology_ablation.json) with the command,
date, commit, versions and hardware; a markdown table is printed.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from configs import topology  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax import provenance  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.training import trainer as trainer_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

VARIANTS = ("full",) + topology.ABLATIONS


def variant_config(name, num_epochs, max_train, data_dir=None):
  c = topology.get_config(None if name == "full" else name)
  c.num_epochs = int(num_epochs)
  c.dataset.max_train = int(max_train)
  if data_dir:
    c.dataset.data_dir = data_dir
  return c


def _stats(values):
  v = np.asarray(values, np.float64)
  return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1
          else 0.0, "members": v.round(6).tolist()}


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--variants", default=",".join(VARIANTS))
  p.add_argument("--num_epochs", type=int, default=3)
  p.add_argument("--max_train", type=int, default=4000)
  p.add_argument("--data_dir", default=None)
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  names = [v for v in args.variants.split(",") if v]
  bad = [v for v in names if v not in VARIANTS]
  if bad or not names:
    p.error(f"--variants: '{bad[0] if bad else ''}' is not one of "
            f"{', '.join(VARIANTS)}")
  rows = {}
  for name in names:
    print(f"== topology ablation: {name}", flush=True)
    res, _ = trainer_lib.train_and_evaluate(
        variant_config(name, args.num_epochs, args.max_train, args.data_dir),
        os.path.join(args.workdir, name))
    rows[name] = {s: _stats([m[s]["accuracy"] for m in res["members"]])
                  for s in ("train", "val", "test")}
    rows[name]["train_time_s"] = res.get("train_time_s")
  doc = {**provenance.record("scripts/topology_ablation.py", argv,
                             ("numpy", "jax", "flax"), with_jax=True),
         "num_epochs": args.num_epochs, "max_train": args.max_train,
         "variants": rows}
  provenance.write_json(
      args.out or os.path.join(args.workdir, "topology_ablation.json"), doc)
  print(markdown(rows))
  return doc


def markdown(rows):
  pm = lambda s: f"{100 * s['mean']:.2f} ± {100 * s['sd']:.2f}"
  lines = ["| variant | train acc | val acc | test acc | training (s) |",
           "|---|---|---|---|---:|"]
  for name, r in rows.items():
    lines.append(f"| {name} | {pm(r['train'])} | {pm(r['val'])} | "
                 f"{pm(r['test'])} | {r['train_time_s']:.0f} |")
  return "\n".join(lines)


if __name__ == "__main__":
  main()
