"""Ligand-only baselines for the `binding` dataset (reference recipe 002).

Usage:
  python scripts/affinity_baselines.py [--target F2] [--seeds 0,1,2]
      [--out docs/results/affinity_baselines.json]
  python scripts/affinity_baselines.py --target multi_target --trees 300
      --splits scaffold --out docs/results/affinity_baselines_multi_target.json

On the scaffold split (split_seed 0, as `configs/affinity.py`) and on
MoleculeACE's own train/test split, fits on train and scores test:
  * the train-mean predictor;
  * a random forest on ECFP4 counts (RDKit Morgan radius 2, 2,048 folded
    count bins, 1,000 trees, as MoleculeACE's RF_ECFP configuration for
    CHEMBL204), one fit per seed, reported as mean and sd over seeds.
Metrics: RMSE, MAE, R^2 (1 - SSE/SST), Pearson r, Spearman rho, in pK.

`--target multi_target`: the 7 targets of the `multi_target` builder config
split as `configs/affinity.py:multi_target` splits them (scaffold groups per
target); one forest per target (as MoleculeACE fits them), and the train
mean of all targets beside the per-target train means. Each is scored per
target and pooled over the 7 test sets: the pooled R^2 of the per-target
means shows how much of a pooled R^2 the targets' different means give.
"""

import argparse
import datetime
import os
import sys
import time

import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mmjax import provenance  # pylint: disable=g-import-not-at-top
from mmjax.data.affinity import chembl  # pylint: disable=g-import-not-at-top
from mmjax.training.metrics import regression_metrics  # pylint: disable=g-import-not-at-top

SPLITS = ("scaffold", "moleculeace")
METRICS = ("rmse", "mae", "r2", "pearson", "spearman")


def ecfp4_counts(smiles, n_bits=2048):
  """float32 [N, n_bits] Morgan radius-2 count fingerprints."""
  from rdkit import Chem  # pylint: disable=g-import-not-at-top
  from rdkit.Chem import rdFingerprintGenerator  # pylint: disable=g-import-not-at-top
  gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=n_bits)
  return np.stack([gen.GetCountFingerprintAsNumPy(Chem.MolFromSmiles(s))
                   for s in smiles]).astype(np.float32)


def summarise(runs):
  """{metric: {mean, sd, n}} over a list of metric dicts."""
  return {m: {"mean": float(np.mean([r[m] for r in runs])),
              "sd": float(np.std([r[m] for r in runs], ddof=1))
                    if len(runs) > 1 else 0.0,
              "n": len(runs)} for m in METRICS}


def fit_rf(x, y, fit, test, trees, seed):
  from sklearn.ensemble import RandomForestRegressor  # pylint: disable=g-import-not-at-top
  rf = RandomForestRegressor(n_estimators=trees, n_jobs=-1,
                             random_state=seed)
  rf.fit(x[fit], y[fit])
  return rf.predict(x[test])


def by_target(pred, y, targets):
  """{'pooled': metrics, target: metrics} of predictions [N]."""
  out = {"pooled": regression_metrics(pred, y)}
  for t in chembl.TARGETS:
    sel = targets == t
    if sel.any():
      out[t] = regression_metrics(pred[sel], y[sel])
  return out


def multi_target(args, seeds):
  """Baselines of the 7-target set; {split: row}."""
  ligands = [l for t in chembl.TARGETS for l in chembl.read_ligands(t)]
  y = np.asarray([l.pk for l in ligands])
  targets = np.asarray([l.target for l in ligands])
  x = ecfp4_counts([l.smiles for l in ligands])
  results = {}
  for split in args.splits.split(","):
    train, val, test = chembl.split_ligands(ligands, split, args.split_seed)
    fit = np.concatenate([train, val])
    row = {"sizes": {"train": len(train), "val": len(val),
                     "test": len(test)},
           "test_sd": float(y[test].std())}
    row["train_mean"] = by_target(np.full(len(test), y[fit].mean()),
                                  y[test], targets[test])
    means = {t: y[fit][targets[fit] == t].mean() for t in chembl.TARGETS}
    row["target_mean"] = by_target(
        np.asarray([means[t] for t in targets[test]]), y[test],
        targets[test])
    t0 = time.time()
    runs = []
    for seed in seeds:
      pred = np.zeros(len(test))
      for t in chembl.TARGETS:
        f, te = fit[targets[fit] == t], targets[test] == t
        pred[te] = fit_rf(x, y, f, test[te], args.trees, seed)
      runs.append(by_target(pred, y[test], targets[test]))
    row["rf_ecfp4"] = {"per_seed": runs, "seconds": time.time() - t0,
                       "summary": {k: summarise([r[k] for r in runs])
                                   for k in runs[0]}}
    results[split] = row
    s = row["rf_ecfp4"]["summary"]
    for k in s:
      print(f"{split} {k}: target-mean R2 {row['target_mean'][k]['r2']:.3f}; "
            "RF ECFP4 " + ", ".join(f"{m} {s[k][m]['mean']:.3f} ± "
                                    f"{s[k][m]['sd']:.3f}" for m in METRICS))
  return results


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--target", default="F2",
                      choices=list(chembl.TARGETS) + ["multi_target"])
  parser.add_argument("--splits", default=",".join(SPLITS))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--split_seed", type=int, default=0)
  parser.add_argument("--trees", type=int, default=1000)
  parser.add_argument("--out", default="docs/results/affinity_baselines.json")
  args = parser.parse_args()
  # The train-mean predictor is constant: its correlations are undefined.
  warnings.filterwarnings("ignore", message="An input array is constant")
  seeds = [int(s) for s in args.seeds.split(",")]
  if args.target == "multi_target":
    write(args, seeds, multi_target(args, seeds))
    return
  ligands = chembl.read_ligands(args.target)
  y = np.asarray([l.pk for l in ligands])
  x = ecfp4_counts([l.smiles for l in ligands])
  results = {}
  for split in args.splits.split(","):
    train, val, test = chembl.split_ligands(ligands, split, args.split_seed)
    fit = np.concatenate([train, val])  # No tuning: val joins train.
    row = {"sizes": {"train": len(train), "val": len(val), "test": len(test)},
           "test_sd": float(y[test].std())}
    row["train_mean"] = regression_metrics(
        np.full(len(test), y[fit].mean()), y[test])
    t0 = time.time()
    runs = []
    for seed in seeds:
      runs.append(regression_metrics(
          fit_rf(x, y, fit, test, args.trees, seed), y[test]))
    row["rf_ecfp4"] = {"per_seed": runs, "summary": summarise(runs),
                       "seconds": time.time() - t0}
    results[split] = row
    s = row["rf_ecfp4"]["summary"]
    print(f"{split}: n={row['sizes']} mean-predictor RMSE "
          f"{row['train_mean']['rmse']:.3f}; RF ECFP4 " + ", ".join(
              f"{m} {s[m]['mean']:.3f} ± {s[m]['sd']:.3f}" for m in METRICS))
  write(args, seeds, results)


def write(args, seeds, results):
  out = {"target": args.target,
         "set": chembl.TARGETS.get(args.target, "7 sets"),
         "split_seed": args.split_seed, "seeds": seeds, "trees": args.trees,
         "fit_on": "train + val", "commit": provenance.commit(),
         "date": datetime.date.today().isoformat(),
         "hardware": provenance.hardware(), "results": results}
  provenance.write_json(args.out, out)


if __name__ == "__main__":
  main()
