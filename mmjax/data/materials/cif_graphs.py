"""Crystal graphs of unit cells: atoms as nodes, periodic neighbours as edges.

Errors are one-line `ValueError`s starting with the `where` the caller gives
(the CIF's path).
"""

import ase
import ase.data
import ase.neighborlist
import numpy as np

DEFAULT_CUTOFF = 4.0  # Angstrom; covers first and usually second shells.
# Feature scales: bring each node feature to roughly [0, 1.5].
_Z_SCALE = 100.0  # atomic number
_RADIUS_SCALE = 2.0  # covalent radius, Angstrom
_MASS_SCALE = 200.0  # atomic mass, u
# Bounds on the work of one neighbour list (tests/test_fuzz_readers.py:
# without them a crafted cell hangs the reader for minutes): it visits every
# periodic image within the cutoff. Real unit cells are far below both.
MAX_CELL_IMAGES = 100_000  # periodic images of the cell within the cutoff
MAX_NEIGHBOUR_PAIRS = 1_000_000  # expected (atom, neighbour) pairs


def crystal_node_features(numbers: np.ndarray) -> np.ndarray:
  """Per-atom features from the element alone.

  Args:
    numbers: int [n] atomic numbers.

  Returns:
    float32 [n, 3]: atomic number / 100, covalent radius (Angstrom, ase.data:
    Cordero et al. 2008; 0.2 for Z > 96 where none is tabulated) / 2, atomic
    mass (u, ase.data) / 200. Radius adds size information that Z and mass,
    which are nearly proportional, do not carry.
  """
  numbers = np.asarray(numbers)
  return np.stack([
      numbers / _Z_SCALE,
      ase.data.covalent_radii[numbers] / _RADIUS_SCALE,
      ase.data.atomic_masses[numbers] / _MASS_SCALE,
  ], axis=-1).astype(np.float32)


def check_neighbour_work(atoms: ase.Atoms, cutoff: float, where: str) -> None:
  """Rejects cells whose neighbour list would be huge or take too long:
  lattice planes much closer than the cutoff (a flat or needle cell) or far
  more atoms per volume than any solid."""
  cell = atoms.cell.array
  volume = abs(np.linalg.det(cell))
  areas = np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
  with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
    spacing = volume / areas  # distance between lattice planes, per axis
    images = np.prod(2 * np.ceil(cutoff / spacing) + 1)
    pairs = len(atoms) ** 2 * 4 / 3 * np.pi * cutoff ** 3 / volume
  if not np.isfinite(images) or images > MAX_CELL_IMAGES:
    raise ValueError(f"{where}: lattice plane spacings "
                     f"{np.array2string(spacing, precision=3)} A are too small "
                     f"for cutoff {cutoff} A (degenerate cell?)")
  if not np.isfinite(pairs) or pairs > MAX_NEIGHBOUR_PAIRS:
    raise ValueError(f"{where}: {len(atoms)} atoms in {volume:.3g} A^3 give "
                     f"about {pairs:.3g} neighbour pairs within {cutoff} A, "
                     f"more than MAX_NEIGHBOUR_PAIRS={MAX_NEIGHBOUR_PAIRS} "
                     "(overlapping atoms or a wrong cell?)")


def crystal_graph(atoms: ase.Atoms, cutoff: float, where: str):
  """Periodic neighbour graph of a unit cell.

  Edge (i, j) exists iff some periodic image of atom j lies within `cutoff`
  Angstrom of atom i. Edges i == j (an atom and its own images) are dropped:
  the GCN adds self loops itself. Several images of the same j collapse into
  one edge (i, j). The result is symmetric by construction and sorted by
  (sender, receiver).

  Args:
    atoms: periodic structure with n >= 1 atoms.
    cutoff: neighbour distance, Angstrom.
    where: prefix for error messages (the CIF path).

  Returns:
    nodes float32 [n, 3], senders int32 [e], receivers int32 [e].

  Raises:
    ValueError: if some atom has no neighbour at all (not even its own image)
      within `cutoff`: the cutoff is too small for this structure and the
      atom would be disconnected.
  """
  n = len(atoms)
  check_neighbour_work(atoms, cutoff, where)
  i, j = ase.neighborlist.neighbor_list("ij", atoms, float(cutoff))
  lonely = np.setdiff1d(np.arange(n), i)
  if len(lonely):
    raise ValueError(f"{where}: {len(lonely)} of {n} atoms (first: index "
                     f"{lonely[0]}, {atoms[lonely[0]].symbol}) have no "
                     f"neighbour within cutoff {cutoff} A; use a larger cutoff")
  keep = i != j
  pairs = np.unique(i[keep].astype(np.int64) * n + j[keep])
  senders = (pairs // n).astype(np.int32)
  receivers = (pairs % n).astype(np.int32)
  return crystal_node_features(atoms.numbers), senders, receivers
