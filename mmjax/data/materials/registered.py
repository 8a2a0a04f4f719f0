"""The materials datasets as registered datasets (mmjax.data.datasets)."""

import os

from mmjax.data.datasets import Dataset
from mmjax.data.datasets import DatasetSpec
from mmjax.data.materials import schema
from mmjax.data.modalities import Modality
from mmjax.errors import UserError


def materials_spec():
  """Two graph and two vector modalities, binary labels (schema.py)."""
  mods = {}
  for m in schema.MODALITIES:
    if m in schema.GRAPH_MODALITIES:
      mods[m] = Modality("graph", (schema.NODE_FEATURES[m],))
    else:
      mods[m] = Modality("vector", (schema.VECTOR_FEATURES[m],))
  return DatasetSpec(modalities=mods, task="classification",
                     num_outputs=schema.NUM_CLASSES,
                     class_names=schema.CLASS_NAMES)


def load_materials_tb(dcfg, data_dir):
  from mmjax.data.materials.materials_tb import load_materials_tb as load  # pylint: disable=g-import-not-at-top
  return Dataset(load(dcfg.variant, data_dir), materials_spec())


def load_cif_folder(dcfg, data_dir):
  if not dcfg.get("path", ""):
    raise UserError("dataset.path: give the folder of CIF files and "
                    "labels.csv (--config.dataset.path=DIR)")
  from mmjax.data.materials.cif_folder import load_cif_folder as load  # pylint: disable=g-import-not-at-top
  return Dataset(load(os.path.expanduser(dcfg.path), data_dir,
                      cutoff=dcfg.cutoff, seed=dcfg.split_seed),
                 materials_spec())
