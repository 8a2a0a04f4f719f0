"""The vendored ChEMBL Ki sets (MoleculeACE 3.0.0) and their splits.

Each target's CSV (vendor/CHEMBL<id>_Ki.csv.gz, origin and SHA-256 in
vendor/MANIFEST.json) has columns smiles, exp_mean [nM], y, cliff_mol,
split. MoleculeACE's y is -log10(Ki / nM), so pKi = y + 9 (checked against
exp_mean for every row). `split` is MoleculeACE's own train/test split
(spectral clustering on Tanimoto distance, about 80/20).
"""

import csv
import dataclasses
import functools
import gzip
import json
import os

import numpy as np

from mmjax.data import splits

VENDOR = os.path.join(os.path.dirname(__file__), "vendor")
# DOCKSTRING target -> ChEMBL Ki set, in the order of the multi-target set.
TARGETS = {"F2": "CHEMBL204_Ki", "F10": "CHEMBL244_Ki",
           "ABL1": "CHEMBL1862_Ki", "AR": "CHEMBL1871_Ki",
           "NR3C1": "CHEMBL2034_Ki", "DRD3": "CHEMBL234_Ki",
           "JAK2": "CHEMBL2971_Ki"}
SCAFFOLD_FRACTIONS = (0.8, 0.1, 0.1)
# Share of MoleculeACE's train set held out (by scaffold) for validation.
MOLECULEACE_VAL_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class Ligand:
  """One measured ligand: `pk` = -log10(Ki / M); `moleculeace_split` is
  'train' or 'test'; `id` = '<target>-<row>' (row in the vendored CSV)."""
  id: str
  target: str
  smiles: str
  pk: float
  moleculeace_split: str


def manifest():
  with open(os.path.join(VENDOR, "MANIFEST.json")) as f:
    return json.load(f)


def read_ligands(target, path=None):
  """The ligands of one target's set, in CSV row order.

  Raises ValueError naming the file and row for a missing column, an
  unparsable value or an unknown split.
  """
  if target not in TARGETS:
    raise ValueError(f"unknown target '{target}' (known: "
                     f"{', '.join(TARGETS)})")
  path = path or os.path.join(VENDOR, f"{TARGETS[target]}.csv.gz")
  opener = gzip.open if path.endswith(".gz") else open
  out = []
  with opener(path, "rt", newline="") as f:
    reader = csv.DictReader(f)
    missing = {"smiles", "y", "split"} - set(reader.fieldnames or ())
    if missing:
      raise ValueError(f"{path}: no column {sorted(missing)[0]}")
    for row, rec in enumerate(reader):
      where = f"{path} row {row + 2}"
      try:
        y = float(rec["y"])
      except ValueError:
        raise ValueError(f"{where}: y '{rec['y']}' is not a number") from None
      if not np.isfinite(y) or rec["split"] not in ("train", "test"):
        raise ValueError(f"{where}: y must be finite and split train or "
                         f"test, got {rec['y']!r}, {rec['split']!r}")
      out.append(Ligand(f"{target}-{row}", target, rec["smiles"], y + 9.0,
                        rec["split"]))
  return out


@functools.lru_cache(maxsize=None)
def scaffold(smiles):
  """Bemis-Murcko scaffold SMILES (RDKit, no chirality); '' for acyclic
  molecules, which then share one group."""
  from rdkit import Chem  # pylint: disable=g-import-not-at-top
  from rdkit.Chem.Scaffolds import MurckoScaffold  # pylint: disable=g-import-not-at-top
  mol = Chem.MolFromSmiles(smiles)
  if mol is None:
    raise ValueError(f"SMILES '{smiles}' does not parse")
  return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def split_ligands(ligands, split, seed):
  """(train, val, test) index arrays into `ligands`.

  split='scaffold': Bemis-Murcko scaffold groups, per target, assigned to
    80/10/10 in a seeded random order (splits.group_split), so no scaffold
    is in two parts.
  split='moleculeace': MoleculeACE's test set as test; its train set split
    by scaffold into train and a 10% validation part.
  """
  ligands = list(ligands)
  keys = np.asarray([f"{l.target}|{scaffold(l.smiles)}" for l in ligands])
  if split == "scaffold":
    return tuple(splits.group_split(keys, seed, SCAFFOLD_FRACTIONS))
  if split == "moleculeace":
    ace = np.asarray([l.moleculeace_split for l in ligands])
    train = np.flatnonzero(ace == "train")
    fit, val = splits.group_split(
        keys[train], seed,
        (1 - MOLECULEACE_VAL_FRACTION, MOLECULEACE_VAL_FRACTION))
    return train[fit], train[val], np.flatnonzero(ace == "test")
  raise ValueError(f"dataset.split: '{split}' is not a split (known: "
                   "scaffold, moleculeace)")
