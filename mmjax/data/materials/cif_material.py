"""One material of a CIF folder as a schema example: CIF + optional npz.

The crystal graph is built from the CIF (`cif_graphs`); the npz may add
kspace / scalar / decomp (`npz_modalities`). Modalities a material lacks are
masked (modality_mask 0, `schema.placeholder`), never invented.

  ex = read_material("a.cif", None, "topological", cutoff=4.0)
"""

import os
from typing import Any

import numpy as np

from mmjax.data.materials import schema
from mmjax.data.materials.cif_graphs import DEFAULT_CUTOFF
from mmjax.data.materials.cif_graphs import crystal_graph
from mmjax.data.materials.cif_labels import parse_label
from mmjax.data.materials.cif_structure import read_atoms
from mmjax.data.materials.npz_modalities import read_npz


def read_material(cif_path: str, npz_path: str | None, label: Any,
                  cutoff: float = DEFAULT_CUTOFF,
                  material_id: str | None = None) -> dict[str, Any]:
  """Builds one schema example from a CIF file and an optional npz.

  Args:
    cif_path: the structure (required; its crystal graph is always present).
    npz_path: optional extra modalities (see `read_npz`), or None.
    label: 0/1 or "trivial"/"topological".
    cutoff: neighbour cutoff in Angstrom for the crystal graph.
    material_id: the example's `id`; defaults to the CIF file's stem.

  Returns:
    Dict in `mmjax.data.materials.schema` format: numpy arrays, `label` an
    int64 0-d array, `id` a str. modality_mask is 1 for crystal and for each
    modality found in the npz, 0 (with the schema placeholder) otherwise.

  Raises:
    ValueError: one line, starting with the offending file's path.
  """
  if not (np.isfinite(cutoff) and cutoff > 0):
    raise ValueError(f"{cif_path}: cutoff must be a positive number of "
                     f"Angstrom, got {cutoff!r}")
  label = parse_label(label, cif_path)
  atoms = read_atoms(cif_path)
  nodes, senders, receivers = crystal_graph(atoms, cutoff, cif_path)
  ex = {"crystal_nodes": nodes, "crystal_senders": senders,
        "crystal_receivers": receivers}
  extra = read_npz(npz_path) if npz_path is not None else {}
  mask = [1.0]
  for m in schema.MODALITIES[1:]:
    key = f"{m}_nodes" if m in schema.GRAPH_MODALITIES else m
    if key in extra:
      mask.append(1.0)
      ex.update({k: v for k, v in extra.items() if k.startswith(m)})
    else:
      mask.append(0.0)
      ex.update(schema.placeholder(m))
  ex["modality_mask"] = np.asarray(mask, np.float32)
  ex["label"] = np.asarray(label, np.int64)
  if material_id is None:
    material_id = os.path.splitext(os.path.basename(cif_path))[0]
  ex["id"] = str(material_id)
  schema.validate_example(ex, cif_path)  # guards this module's own logic
  return ex


def material_paths(folder: str, mid: str) -> tuple[str, str | None]:
  """(cif path, npz path or None if `<id>.npz` does not exist)."""
  npz = os.path.join(folder, f"{mid}.npz")
  return os.path.join(folder, f"{mid}.cif"), (npz if os.path.exists(npz)
                                                else None)
