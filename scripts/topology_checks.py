"""Did a `topology` model learn the invariant, or a shortcut?

Usage:
  python scripts/topology_checks.py --workdir runs/topology
      [--config configs/topology.py[:options]] [--variants weak,strong]
      [--seed 0] [--data_dir DIR] [--out FILE]

Loads a finished run of `configs/topology.py` (the config must be the one
the run was trained with: it is checked against the run's config.json),
restores its best weights (every member) and scores them, per member, on:

  test          the default test split, with accuracy by |C| (0, 1, 2,
                ...), C = minus the rounded degree of the stored k-space
                vectors (chern.degree_from_kspace_nodes; it reproduces
                every stored label, scripts/materials_ceiling.py);
  test_rotated  the same examples with each example's unit vectors n
                rotated by its own random rotation of SO(3) (the degree,
                hence the label, does not change; the gap feature is
                untouched). A model of the invariant scores the same; one
                that learned where n points does not;
  <variant>     every example (all splits: none was trained on) of the
                `materials_tb` builder configs `weak` and `strong`: other
                models (seed 1) whose random hoppings are drawn with 0.5x
                and 1.5x the default's perturbation strengths.

Each entry has the members' accuracies, their mean and sd, and the same
by |C|. Results go to --out (default <workdir>/topology_checks.json) with
the command, date, commit, versions and hardware; a markdown table is
printed.
"""

import argparse
import importlib
import os
import sys

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mmjax import provenance  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.data import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.data.datasets import load_dataset  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.data.materials import chern  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.training import checkpoint  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.training import trainer as trainer_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.training import workdir as workdir_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

NODES = "kspace_nodes"


def load_config(spec):
  """`configs/<name>.py[:arg]` -> its get_config(arg)."""
  path, _, arg = spec.partition(":")
  name = os.path.splitext(os.path.basename(path))[0]
  module = importlib.import_module(f"configs.{name}")
  return module.get_config(arg or None)


def abs_chern(nodes):
  """|C| int [N] from stored k-space node features [N, 64, 64]."""
  return np.abs(np.rint(chern.degree_from_kspace_nodes(nodes))).astype(int)


def rotated(nodes, seed):
  """nodes [N, 64, 64] with each example's unit vectors (the first 3 of
  every 4 features) turned by its own uniformly random rotation."""
  n = nodes.shape[0]
  rot = Rotation.random(n, random_state=seed).as_matrix()   # [N, 3, 3]
  f = nodes.reshape(n, nodes.shape[1], -1, 4).astype(np.float64)
  f[..., :3] = np.einsum("nij,ncsj->ncsi", rot, f[..., :3])
  return f.reshape(nodes.shape).astype(nodes.dtype)


def _stats(values):
  v = np.asarray(values, np.float64)
  return {"mean": float(v.mean()),
          "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
          "members": v.round(6).tolist()}


def score(outputs, labels, c_abs):
  """Per-member accuracy of outputs [K, N, C], overall and by |C|."""
  hit = outputs.argmax(-1) == labels[None]
  entry = {"n": int(len(labels)), "accuracy": _stats(hit.mean(1)),
           "by_abs_chern": {}}
  for c in np.unique(c_abs):
    sel = c_abs == c
    entry["by_abs_chern"][str(int(c))] = {
        "n": int(sel.sum()), "accuracy": _stats(hit[:, sel].mean(1))}
  return entry


def _concat(parts):
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def main(argv=None):
  """Scores the run's members on every check; writes and returns the JSON
  document."""
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True,
                      help="a finished run of configs/topology.py")
  parser.add_argument("--config", default="configs/topology.py",
                      help="the run's config, FILE[:options]")
  parser.add_argument("--variants", default="weak,strong",
                      help="materials_tb builder configs to score whole")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the random rotations")
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  try:
    doc = run(args)
  except (UserError, ValueError, FileNotFoundError) as e:
    print(f"topology_checks.py: error: {e}".splitlines()[0], file=sys.stderr)
    sys.exit(2)
  return doc


def run(args):
  if not os.path.exists(os.path.join(args.workdir, "results.json")):
    raise UserError(f"--workdir {args.workdir}: no results.json (not a "
                    "finished run)")
  config = load_config(args.config)
  if args.data_dir is not None:
    config.dataset.data_dir = args.data_dir
  workdir_lib.write_or_check_config(config, args.workdir)
  tr = trainer_lib.Trainer(config, args.workdir)
  weights, _ = checkpoint.final_variables(args.workdir, "best")
  params, stats = weights["params"], weights.get("batch_stats", {})

  def predict(split):
    return np.asarray(tr.evaluator.predict(split, params, stats)[0])

  test = tr._split("test")  # pylint: disable=protected-access
  labels, c_abs = test.labels, abs_chern(test.arrays[NODES])
  checks = {"test": score(predict(test), labels, c_abs)}
  test.arrays[NODES] = rotated(test.arrays[NODES], args.seed)
  checks["test_rotated"] = score(predict(test), labels,
                                 abs_chern(test.arrays[NODES]))
  for variant in [v for v in args.variants.split(",") if v]:
    dcfg = config.dataset.copy_and_resolve_references()
    dcfg.variant = variant
    sources = load_dataset(dcfg).sources
    outs, arrays = [], []
    for name, src in sources.items():
      split = pipeline.PaddedSplit(src, tr.spec, tr.budgets,
                                   f"{variant}/{name}")
      outs.append(predict(split))
      arrays.append({"label": split.labels, NODES: split.arrays[NODES]})
    a = _concat(arrays)
    checks[variant] = score(np.concatenate(outs, axis=1), a["label"],
                            abs_chern(a[NODES]))
  doc = {**provenance.record("scripts/topology_checks.py", sys.argv[1:],
                              ("numpy", "jax", "flax"), with_jax=True),
         "workdir_config": args.config,
         "rotation_seed": args.seed, "checks": checks}
  out = args.out or os.path.join(args.workdir, "topology_checks.json")
  provenance.write_json(out, doc)
  print(markdown(checks))
  return doc


def _pm(st):
  return f"{100 * st['mean']:.2f} ± {100 * st['sd']:.2f}"


def markdown(checks):
  """check | n | accuracy | accuracy by |C| (mean ± sd over members, %)."""
  cs = sorted({c for e in checks.values() for c in e["by_abs_chern"]},
              key=int)
  lines = ["| check | n | accuracy | " + " | ".join(
      f"abs(C) = {c}" for c in cs) + " |",
           "|---|---:|---|" + "---|" * len(cs)]
  for name, e in checks.items():
    by = e["by_abs_chern"]
    lines.append(f"| {name} | {e['n']} | {_pm(e['accuracy'])} | " + " | ".join(
        f"{_pm(by[c]['accuracy'])} (n={by[c]['n']})" if c in by else ""
        for c in cs) + " |")
  return "\n".join(lines)


if __name__ == "__main__":
  main()
