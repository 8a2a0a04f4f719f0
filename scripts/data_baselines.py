"""Shallow baselines on materials_tb; writes the table into docs/data.md.

Usage:
  python scripts/data_baselines.py --data_dir workdirs/tfds [--config default]

Builds (or loads) the dataset, trains LogisticRegression (with StandardScaler)
and HistGradientBoostingClassifier on train, and reports test accuracy per
modality (graph modalities: node features flattened), on all features, and
the best single-scalar threshold rule (threshold chosen on train).
"""

import argparse
import datetime
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mmjax.data.materials import materials_tb  # pylint: disable=g-import-not-at-top
from mmjax.data.materials import tb_features  # pylint: disable=g-import-not-at-top

BEGIN, END = "<!-- baselines:begin -->", "<!-- baselines:end -->"


def to_arrays(source):
  """Stacks a split into {modality: float32 [N, F]} and labels int64 [N]."""
  exs = [source[i] for i in range(len(source))]
  feats = {
      "crystal": np.stack([e["crystal_nodes"].ravel() for e in exs]),
      "kspace": np.stack([e["kspace_nodes"].ravel() for e in exs]),
      "scalar": np.stack([e["scalar"] for e in exs]),
      "decomp": np.stack([e["decomp"] for e in exs]),
  }
  feats["all"] = np.concatenate(list(feats.values()), axis=1)
  return feats, np.array([e["label"] for e in exs], np.int64)


def best_single_scalar(x_tr, y_tr, x_te, y_te):
  """Best one-threshold rule per scalar column (either direction).

  Returns:
    float [10] test accuracy of the rule picked on train for each column.
  """
  accs = []
  for j in range(x_tr.shape[1]):
    xs = np.unique(x_tr[:, j])
    ths = np.quantile(xs, np.linspace(0, 1, 401))
    acc = np.array([((x_tr[:, j] > t) == y_tr).mean() for t in ths])
    score = np.maximum(acc, 1 - acc)
    i = int(np.argmax(score))
    pred = x_te[:, j] > ths[i]
    if acc[i] < 0.5:
      pred = ~pred
    accs.append(float((pred == y_te).mean()))
  return np.array(accs)


def run(args):
  """Trains the baselines; returns the markdown table."""
  from sklearn.ensemble import HistGradientBoostingClassifier  # pylint: disable=g-import-not-at-top
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from sklearn.pipeline import make_pipeline  # pylint: disable=g-import-not-at-top
  from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top

  t0 = time.time()
  sources = materials_tb.load_materials_tb(args.config, args.data_dir)
  print(f"load/build: {time.time() - t0:.1f} s", flush=True)
  (f_tr, y_tr), (f_te, y_te) = to_arrays(sources["train"]), to_arrays(
      sources["test"])
  rows = []
  for name in ("crystal", "kspace", "scalar", "decomp", "all"):
    t1 = time.time()
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    acc_lr = lr.fit(f_tr[name], y_tr).score(f_te[name], y_te)
    hgb = HistGradientBoostingClassifier(max_iter=150, random_state=0)
    acc_gb = hgb.fit(f_tr[name], y_tr).score(f_te[name], y_te)
    rows.append((name, f_tr[name].shape[1], acc_lr, acc_gb))
    print(f"{name:8s} dim={f_tr[name].shape[1]:5d} LR={acc_lr:.4f} "
          f"HGB={acc_gb:.4f} ({time.time() - t1:.0f} s)", flush=True)
  single = best_single_scalar(f_tr["scalar"], y_tr, f_te["scalar"], y_te)
  lines = [
      f"Config `{args.config}`: train {len(y_tr)}, test {len(y_te)} examples "
      f"(test chance level 0.5).",
      "",
      "| features | dim | LogReg (+StandardScaler) | HistGradBoosting |",
      "|---|---|---|---|",
  ]
  for name, dim, a, b in rows:
    lines.append(f"| {name} | {dim} | {a:.3f} | {b:.3f} |")
  lines += [
      "",
      "Best single-scalar threshold rule (threshold picked on train), test "
      "accuracy per scalar:",
      "",
      "| " + " | ".join(tb_features.SCALAR_NAMES) + " |",
      "|" + "---|" * len(tb_features.SCALAR_NAMES),
      "| " + " | ".join(f"{a:.3f}" for a in single) + " |",
      "",
      f"Max over scalars: **{single.max():.3f}** "
      f"(`{tb_features.SCALAR_NAMES[int(single.argmax())]}`).",
      "",
      f"Produced by `python scripts/data_baselines.py --config {args.config} "
      f"--data_dir {args.data_dir}` on {datetime.date.today().isoformat()} "
      f"(total {time.time() - t0:.0f} s on 2 CPU cores).",
  ]
  return "\n".join(lines)


def write_doc(path, table):
  """Replaces the text between the baseline markers of `path`."""
  text = open(path).read() if os.path.exists(path) else f"{BEGIN}\n{END}\n"
  pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
  text = pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text)
  with open(path, "w") as f:
    f.write(text)


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--config", default="default")
  parser.add_argument("--data_dir", default="workdirs/tfds")
  parser.add_argument("--doc", default=os.path.join(
      os.path.dirname(__file__), "..", "docs", "data.md"))
  args = parser.parse_args()
  table = run(args)
  print(table)
  write_doc(args.doc, table)


if __name__ == "__main__":
  main()
