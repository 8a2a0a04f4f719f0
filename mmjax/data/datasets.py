"""Dataset registry: `config.dataset.name` -> a `Dataset` (random-access
sources per split and the declaration of its modalities and labels).

A dataset is a module with `load(dcfg, data_dir) -> Dataset`, named here by
its import path so that only the chosen dataset's dependencies (TFDS, ase,
...) are imported. Adding a dataset adds one line to DATASETS.
"""

import dataclasses
import importlib
import os

from mmjax.errors import UserError

DATASETS = {
    "materials_tb": "mmjax.data.materials.registered:load_materials_tb",
    "cif_folder": "mmjax.data.materials.registered:load_cif_folder",
    "toy_sequence": "mmjax.data.toy_sequence:load",
    "binding": "mmjax.data.affinity.registered:load_binding",
    "pdbbind_folder": "mmjax.data.affinity.pdbbind:load_pdbbind_folder",
    "viral": "mmjax.data.viral.registered:load_viral",
    "viral_fasta": "mmjax.data.viral.fasta_folder:load_fasta_csv",
    "cardiac_h5ad": "mmjax.data.cardiac.h5ad_reader:load_cardiac_h5ad",
    "cardiac": "mmjax.data.cardiac.registered:load_cardiac",
}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What a dataset holds: `modalities` {name: modalities.Modality} in the
  order of the examples' `modality_mask` columns; `task` the kind of label
  ('classification': int [N] in [0, num_outputs), 'regression': float [N]
  or [N, num_outputs]); `metric_groups` ((key, reference), ...): results
  also hold the metrics of every value of the per-example string `key`
  (e.g. a binding target) on that value's rows or, given a `reference`
  value, on its rows plus the reference's (one kind of negative against
  the positives)."""
  modalities: dict
  task: str
  num_outputs: int
  class_names: tuple = ()
  metric_groups: tuple = ()


@dataclasses.dataclass
class Dataset:
  """sources {'train', 'val', 'test'}: src[i] is one example, a dict of
  numpy arrays with the keys its modalities' kinds read, `label`, and
  optionally `modality_mask` [M] and `id`."""
  sources: dict
  spec: DatasetSpec


def data_dir(dcfg):
  return os.path.expanduser(dcfg.get("data_dir", "") or os.environ.get(
      "MMJAX_DATA_DIR", "~/.cache/mmjax/datasets"))


def load_dataset(dcfg) -> Dataset:
  """Loads (building it the first time) the dataset `dcfg` names."""
  name = dcfg.name
  if name not in DATASETS:
    raise UserError(f"dataset.name: unknown dataset '{name}' "
                    f"(known: {', '.join(DATASETS)})")
  module, fn = DATASETS[name].split(":")
  loader = getattr(importlib.import_module(module), fn)
  try:
    return loader(dcfg, data_dir(dcfg))
  except UserError:
    raise
  except (ValueError, OSError) as e:
    raise UserError(f"dataset {name}: {e}") from e
