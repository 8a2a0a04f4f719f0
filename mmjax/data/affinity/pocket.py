"""Receptor pockets from PDBQT files and AutoDock Vina box configs.

DOCKSTRING's receptors carry polar hydrogens (type HD), Gasteiger charges in
the PDBQT charge column and AutoDock types in the last column (C, A, N, NA,
OA, SA, S, HD). A `Pocket` keeps the heavy atoms with their voxel channel
weights, the hydrogens folded into the heavy atom they are bonded to.
"""

import dataclasses
import functools
import gzip
import os

import numpy as np

# Voxel channels of protein atoms: the weight of each atom's Gaussian.
PROTEIN_CHANNELS = ("C", "aromatic C", "N", "O acceptor", "S",
                    "polar-H donor", "partial charge")
# AutoDock type -> one-hot channel (OA: every protein O is an acceptor).
TYPE_CHANNEL = {"C": 0, "A": 1, "N": 2, "NA": 2, "OA": 3, "O": 3, "SA": 4,
                "S": 4}
HYDROGEN_TYPES = ("H", "HD", "HS")
# A hydrogen belongs to the nearest heavy atom within this distance (Å);
# N-H and O-H bonds are ~1.0 Å.
H_BOND_LENGTH = 1.1
VENDOR = os.path.join(os.path.dirname(__file__), "vendor")


@dataclasses.dataclass
class Pocket:
  """A receptor's heavy atoms and its docking box.

  Attributes:
    coords: float32 [n, 3] heavy-atom positions (Å).
    channels: float32 [n, len(PROTEIN_CHANNELS)] channel weights per atom.
    center: float32 [3] box centre (Å).
    size: float32 [3] box edge lengths (Å).
  """
  coords: np.ndarray
  channels: np.ndarray
  center: np.ndarray
  size: np.ndarray


def read_box(path):
  """(center float32 [3], size float32 [3]) in Å from a Vina config with
  lines `center_x = ...` ... `size_z = ...`.

  Raises:
    ValueError naming the file if a key is missing or not a number.
  """
  values = {}
  with open(path) as f:
    for line in f:
      if "=" in line:
        key, value = (s.strip() for s in line.split("=", 1))
        values[key] = value
  out = []
  for key in ("center_x", "center_y", "center_z", "size_x", "size_y",
              "size_z"):
    try:
      out.append(float(values[key]))
    except KeyError:
      raise ValueError(f"{path}: no {key}") from None
    except ValueError:
      raise ValueError(f"{path}: {key} '{values[key]}' is not a number") \
          from None
  return np.asarray(out[:3], np.float32), np.asarray(out[3:], np.float32)


def _parse_atoms(path):
  """Positions [m, 3], charges [m], AutoDock types [m] of the ATOM/HETATM
  records. Raises ValueError naming file and line for a malformed record."""
  opener = gzip.open if path.endswith(".gz") else open
  xyz, charge, types = [], [], []
  with opener(path, "rt") as f:
    for lineno, line in enumerate(f, 1):
      if not line.startswith(("ATOM", "HETATM")):
        continue
      try:
        # PDBQT: x, y, z in columns 31-54 (PDB), the charge in 71-76 and
        # the AutoDock type after it, separated by whitespace.
        x, y, z = float(line[30:38]), float(line[38:46]), float(line[46:54])
        fields = line[70:].split()
        q, t = float(fields[0]), fields[1]
      except (ValueError, IndexError):
        raise ValueError(f"{path} line {lineno}: malformed ATOM record "
                         f"{line.rstrip()!r}") from None
      xyz.append((x, y, z))
      charge.append(q)
      types.append(t)
  if not xyz:
    raise ValueError(f"{path}: no ATOM records")
  return np.asarray(xyz, np.float64), np.asarray(charge), np.asarray(types)


def read_pdbqt(path, box_path):
  """The heavy atoms of a PDBQT receptor (plain or .gz) and its box.

  Channels: one-hot C / A (aromatic C) / N and NA / OA / SA and S from the
  AutoDock type; 'polar-H donor' 1 for a heavy atom bonded (within
  H_BOND_LENGTH) to an HD hydrogen; 'partial charge' the atom's charge plus
  those of its bonded hydrogens (e). Atoms of other types (metals, ...) keep
  only their charge.

  Raises:
    ValueError naming the file and line of a malformed ATOM record, or the
    file if it holds no heavy atom.
  """
  from scipy.spatial import cKDTree  # pylint: disable=g-import-not-at-top
  xyz, charge, types = _parse_atoms(path)
  is_h = np.isin(types, HYDROGEN_TYPES)
  heavy = np.flatnonzero(~is_h)
  if not len(heavy):
    raise ValueError(f"{path}: no heavy atoms")
  channels = np.zeros((len(heavy), len(PROTEIN_CHANNELS)), np.float32)
  for row, t in enumerate(types[heavy]):
    if t in TYPE_CHANNEL:
      channels[row, TYPE_CHANNEL[t]] = 1
  q = charge[heavy].copy()
  hs = np.flatnonzero(is_h)
  if len(hs):
    dist, owner = cKDTree(xyz[heavy]).query(xyz[hs],
                                            distance_upper_bound=H_BOND_LENGTH)
    bonded = np.isfinite(dist)
    np.add.at(q, owner[bonded], charge[hs][bonded])
    donors = owner[bonded & (types[hs] == "HD")]
    channels[donors, 5] = 1
  channels[:, 6] = q
  center, size = read_box(box_path)
  return Pocket(xyz[heavy].astype(np.float32), channels, center, size)


@functools.lru_cache(maxsize=None)
def load_target(target):
  """The vendored DOCKSTRING receptor `target` (F2, F10, ABL1, AR, NR3C1,
  DRD3, JAK2), read once per process. Treat the arrays as read-only."""
  path = os.path.join(VENDOR, f"{target}_target.pdbqt.gz")
  if not os.path.exists(path):
    raise ValueError(f"no vendored receptor for target '{target}'")
  return read_pdbqt(path, os.path.join(VENDOR, f"{target}_conf.txt"))
