r"""Pools the test predictions of cross-validation runs, one run per fold.

Each run (a workdir of launch.py) holds predictions.npz (every member's
final val and test outputs, evaluation.save_predictions) and config.json.
The folds' test sets are disjoint, so member i's test outputs of all runs
together score every example once: the pooled out-of-fold figure, per
member, then mean +- sd over members (the seeds). Also per fold, and per
value of a metric-group key against a reference value (e.g. each viral
genome against the cellular fragments of its fold).

  python scripts/pool_folds.py runs/cellular_fold{0,1,2,3} \
      --group viral_group --reference cellular \
      --out docs/results/viral_cellular_folds.json

Binary classification only: the score is the softmax probability of class
1 over the first model.num_outputs columns (a confidence column after them
is ignored).
"""

import argparse
import json
import os
import sys

import numpy as np
from sklearn import metrics as skm


def class1_scores(outputs, num_classes):
  """P(class 1) [K, N] of logits [K, N, >= num_classes]."""
  z = outputs[..., :num_classes].astype(np.float64)
  z = z - z.max(-1, keepdims=True)
  p = np.exp(z)
  return p[..., 1] / p.sum(-1)


def binary_metrics(labels, scores):
  pred = scores >= 0.5
  return {"roc_auc": float(skm.roc_auc_score(labels, scores)),
          "accuracy": float(np.mean(pred == labels)),
          "f1": float(skm.f1_score(labels, pred, zero_division=0)),
          "n": int(len(labels))}


def mean_sd(rows):
  keys = rows[0].keys()
  return {k: {"mean": float(np.mean([r[k] for r in rows])),
              "sd": float(np.std([r[k] for r in rows], ddof=1))
              if len(rows) > 1 else 0.0} for k in keys}


def load(run):
  path = os.path.join(run, "predictions.npz")
  if not os.path.exists(path):
    sys.exit(f"pool_folds: {path}: no predictions (is the run finished?)")
  with open(os.path.join(run, "config.json")) as f:
    config = json.load(f)
  num_classes = int(config["model"]["num_outputs"])
  if num_classes != 2:
    sys.exit(f"pool_folds: {run}: model.num_outputs is {num_classes}; "
             "only binary classification is pooled")
  with np.load(path) as z:
    arrays = dict(z)
  return config, class1_scores(arrays["test_outputs"], 2), arrays


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("runs", nargs="+", help="workdirs, one per fold")
  ap.add_argument("--group", default="", help="metric-group key")
  ap.add_argument("--reference", default=None,
                  help="the key's value every other value is scored against")
  ap.add_argument("--out", default="")
  args = ap.parse_args(argv)
  scores, labels, groups, folds = [], [], [], []
  for run in args.runs:
    config, s, arrays = load(run)
    scores.append(s)
    labels.append(arrays["test_labels"])
    if args.group:
      key = f"test_{args.group}"
      if key not in arrays:
        sys.exit(f"pool_folds: {run}: predictions have no group "
                 f"'{args.group}'")
      groups.append(arrays[key])
    folds.append(config["dataset"].get("fold", len(folds)))
  k = {s.shape[0] for s in scores}
  if len(k) != 1:
    sys.exit(f"pool_folds: the runs have different member counts {k}")
  k = k.pop()
  all_scores = np.concatenate(scores, 1)
  all_labels = np.concatenate(labels)
  res = {"runs": args.runs, "folds": folds, "members": k,
         "pooled": mean_sd([binary_metrics(all_labels, all_scores[i])
                            for i in range(k)]),
         "per_fold": {str(f): mean_sd([binary_metrics(l, s[i])
                                       for i in range(k)])
                      for f, s, l in zip(folds, scores, labels)}}
  if args.group:
    all_groups = np.concatenate(groups)
    fold_of = np.concatenate([np.full(len(l), f)
                              for f, l in zip(folds, labels)])
    per = {}
    for v in sorted(set(all_groups.tolist()) - {args.reference}):
      f = fold_of[all_groups == v][0]
      rows = (all_groups == v) | ((all_groups == args.reference) &
                                  (fold_of == f))
      if len(set(all_labels[rows].tolist())) < 2:
        continue
      per[v] = dict(fold=int(f), **mean_sd(
          [binary_metrics(all_labels[rows], all_scores[i][rows])
           for i in range(k)]))
    res["per_group"] = {"key": args.group, "reference": args.reference,
                        "values": per}
  text = json.dumps(res, indent=1)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")
  p = res["pooled"]["roc_auc"]
  print(f"pooled ROC-AUC {p['mean']:.3f} +- {p['sd']:.3f} over {k} members")
  for f, r in res["per_fold"].items():
    print(f"  fold {f}: {r['roc_auc']['mean']:.3f} +- "
          f"{r['roc_auc']['sd']:.3f} (n {r['n']['mean']:.0f})")


if __name__ == "__main__":
  main()
