"""Ligand-only baselines for the `binding` dataset (reference recipe 002).

Usage:
  python scripts/affinity_baselines.py [--target F2] [--seeds 0,1,2]
      [--out docs/results/affinity_baselines.json]

On the scaffold split (split_seed 0, as `configs/affinity.py`) and on
MoleculeACE's own train/test split, fits on train and scores test:
  * the train-mean predictor;
  * a random forest on ECFP4 counts (RDKit Morgan radius 2, 2,048 folded
    count bins, 1,000 trees, as MoleculeACE's RF_ECFP configuration for
    CHEMBL204), one fit per seed, reported as mean and sd over seeds.
Metrics: RMSE, MAE, R^2 (1 - SSE/SST), Pearson r, Spearman rho, in pK.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

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


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--target", default="F2", choices=list(chembl.TARGETS))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--split_seed", type=int, default=0)
  parser.add_argument("--trees", type=int, default=1000)
  parser.add_argument("--out", default="docs/results/affinity_baselines.json")
  args = parser.parse_args()
  from sklearn.ensemble import RandomForestRegressor  # pylint: disable=g-import-not-at-top

  # The train-mean predictor is constant: its correlations are undefined.
  warnings.filterwarnings("ignore", message="An input array is constant")
  ligands = chembl.read_ligands(args.target)
  y = np.asarray([l.pk for l in ligands])
  x = ecfp4_counts([l.smiles for l in ligands])
  seeds = [int(s) for s in args.seeds.split(",")]
  results = {}
  for split in SPLITS:
    train, val, test = chembl.split_ligands(ligands, split, args.split_seed)
    fit = np.concatenate([train, val])  # No tuning: val joins train.
    row = {"sizes": {"train": len(train), "val": len(val), "test": len(test)},
           "test_sd": float(y[test].std())}
    row["train_mean"] = regression_metrics(
        np.full(len(test), y[fit].mean()), y[test])
    t0 = time.time()
    runs = []
    for seed in seeds:
      rf = RandomForestRegressor(n_estimators=args.trees, n_jobs=-1,
                                 random_state=seed)
      rf.fit(x[fit], y[fit])
      runs.append(regression_metrics(rf.predict(x[test]), y[test]))
    row["rf_ecfp4"] = {"per_seed": runs, "summary": summarise(runs),
                       "seconds": time.time() - t0}
    results[split] = row
    s = row["rf_ecfp4"]["summary"]
    print(f"{split}: n={row['sizes']} mean-predictor RMSE "
          f"{row['train_mean']['rmse']:.3f}; RF ECFP4 " + ", ".join(
              f"{m} {s[m]['mean']:.3f} ± {s[m]['sd']:.3f}" for m in METRICS))
  commit = subprocess.run(["git", "describe", "--always", "--dirty"],
                          capture_output=True, text=True).stdout.strip()
  out = {"target": args.target, "set": chembl.TARGETS[args.target],
         "split_seed": args.split_seed, "seeds": seeds, "trees": args.trees,
         "fit_on": "train + val", "commit": commit,
         "date": datetime.date.today().isoformat(),
         "hardware": f"{os.cpu_count()} CPU cores ({platform.machine()})",
         "results": results}
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(out, f, indent=1)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
