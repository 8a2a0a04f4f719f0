"""Reading one crystal structure from a CIF file, with bounds on its cost.

Errors are one-line `ValueError`s starting with the CIF's path.
"""

import ase
import ase.io.cif
import numpy as np

from mmjax.data.materials.read_errors import check_file
from mmjax.data.materials.read_errors import first_line

# Bound on the work one CIF may ask for (tests/test_fuzz_readers.py: without
# it a crafted file hangs the reader for minutes). ase expands the atom sites
# by the symmetry operations in time quadratic in the number of positions
# generated. Real unit cells are far below it.
MAX_SITE_IMAGES = 1024  # atom sites x symmetry operations


def read_atoms(cif_path: str) -> ase.Atoms:
  """Reads exactly one periodic structure with >= 1 atom from a CIF file.

  Raises:
    ValueError: naming `cif_path` for a missing/empty/unparsable file, no or
      several structures, no atoms, unknown elements or a degenerate cell.
  """
  check_file(cif_path)
  images = _parse(cif_path)
  images = [a for a in images if len(a)]
  if not images:
    raise ValueError(f"{cif_path}: no atoms (no _atom_site loop with "
                     "coordinates; truncated or not a crystal CIF?)")
  if len(images) > 1:
    raise ValueError(f"{cif_path}: {len(images)} structures, expected one "
                     "data block with atoms per file")
  atoms = images[0]
  if np.any(atoms.numbers <= 0):
    raise ValueError(f"{cif_path}: atom(s) with unknown element")
  if not np.all(np.isfinite(atoms.positions)):
    raise ValueError(f"{cif_path}: non-finite atom positions")
  volume = abs(np.linalg.det(atoms.cell.array))
  if not np.isfinite(volume) or volume < 1e-3:
    raise ValueError(f"{cif_path}: unit cell volume {volume:.3g} A^3 "
                     "(missing or degenerate _cell_length/_cell_angle)")
  atoms.pbc = True  # a crystal is periodic even if a block says otherwise
  return atoms


def _parse(cif_path: str) -> list[ase.Atoms]:
  """The structures of every data block that has one (maybe without atoms)."""
  try:
    images = []
    with open(cif_path, "rb") as f:
      for block in ase.io.cif.parse_cif(f):
        if not block.has_structure():
          continue
        check_site_images(block, cif_path)
        images.append(block.get_atoms())
    return images
  except ValueError as e:
    if str(e).startswith(cif_path):
      raise
    raise ValueError(f"{cif_path}: cannot parse CIF ({type(e).__name__}: "
                     f"{first_line(e)})") from e
  except Exception as e:  # pylint: disable=broad-except
    # ase's CIF parser raises IndexError, AssertionError, KeyError,
    # RuntimeError, ... for malformed input; report them all one way.
    raise ValueError(f"{cif_path}: cannot parse CIF ({type(e).__name__}: "
                     f"{first_line(e)})") from e


def check_site_images(block: ase.io.cif.CIFBlock, cif_path: str) -> None:
  """Rejects a CIF block whose symmetry expansion would take too long."""
  sites = 0
  for tag in ("_atom_site_fract_x", "_atom_site_cartn_x"):
    v = block.get(tag)
    if v is not None:
      sites = max(sites, len(v) if isinstance(v, list) else 1)
  if sites > MAX_SITE_IMAGES:
    raise ValueError(f"{cif_path}: {sites} atom sites, more than "
                     f"MAX_SITE_IMAGES={MAX_SITE_IMAGES} (too large a cell)")
  ops = 1
  if "_atom_site_fract_x" in block:
    ops = block.get_spacegroup(True).nsymop
  if sites * ops > MAX_SITE_IMAGES:
    raise ValueError(f"{cif_path}: {sites} atom sites x {ops} symmetry "
                     f"operations = {sites * ops} positions, more than "
                     f"MAX_SITE_IMAGES={MAX_SITE_IMAGES} (too large a cell)")
