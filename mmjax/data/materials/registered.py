"""The materials datasets as registered datasets (mmjax.data.datasets).

Config key `dataset.modalities` (default: all of schema.MODALITIES): the
modalities a model reads, a non-empty subset; the others are not padded or
batched, and each example's `modality_mask` keeps only their columns.
"""

import os

from mmjax.data.datasets import Dataset
from mmjax.data.datasets import DatasetSpec
from mmjax.data.materials import schema
from mmjax.data.modalities import Modality
from mmjax.errors import UserError


def chosen_modalities(dcfg):
  """`dataset.modalities` in schema order (all if unset); ValueError naming
  the key if it is empty or names an unknown modality."""
  chosen = tuple(dcfg.get("modalities", None) or schema.MODALITIES)
  unknown = [m for m in chosen if m not in schema.MODALITIES]
  if unknown:
    raise ValueError(f"dataset.modalities: unknown modality '{unknown[0]}' "
                     f"(known: {', '.join(schema.MODALITIES)})")
  return tuple(m for m in schema.MODALITIES if m in chosen)


def materials_spec(modalities=schema.MODALITIES):
  """Graph and vector modalities (those of `modalities`, in schema order),
  binary labels (schema.py)."""
  mods = {}
  for m in schema.MODALITIES:
    if m not in modalities:
      continue
    if m in schema.GRAPH_MODALITIES:
      mods[m] = Modality("graph", (schema.NODE_FEATURES[m],))
    else:
      mods[m] = Modality("vector", (schema.VECTOR_FEATURES[m],))
  return DatasetSpec(modalities=mods, task="classification",
                     num_outputs=schema.NUM_CLASSES,
                     class_names=schema.CLASS_NAMES)


class ModalitySubset:
  """A source whose examples' `modality_mask` [4] is cut to the columns of
  `modalities` (the padded batch's mask has one column per modality of the
  spec)."""

  def __init__(self, source, modalities):
    self._source = source
    self._cols = [schema.MODALITIES.index(m) for m in modalities]

  def __len__(self):
    return len(self._source)

  def __getitem__(self, i):
    ex = dict(self._source[i])
    ex["modality_mask"] = ex["modality_mask"][self._cols]
    return ex


def _dataset(sources, dcfg):
  """Dataset of `sources` restricted to `dataset.modalities`."""
  chosen = chosen_modalities(dcfg)
  if chosen != schema.MODALITIES:
    sources = {s: ModalitySubset(src, chosen) for s, src in sources.items()}
  return Dataset(sources, materials_spec(chosen))


def load_materials_tb(dcfg, data_dir):
  from mmjax.data.materials.materials_tb import load_materials_tb as load  # pylint: disable=g-import-not-at-top
  return _dataset(load(dcfg.variant, data_dir), dcfg)


def load_cif_folder(dcfg, data_dir):
  if not dcfg.get("path", ""):
    raise UserError("dataset.path: give the folder of CIF files and "
                    "labels.csv (--config.dataset.path=DIR)")
  from mmjax.data.materials.cif_folder import load_cif_folder as load  # pylint: disable=g-import-not-at-top
  return _dataset(load(os.path.expanduser(dcfg.path), data_dir,
                       cutoff=dcfg.cutoff, seed=dcfg.split_seed), dcfg)
