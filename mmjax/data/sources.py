"""Dataset registry: `config.dataset` -> random-access sources per split."""

import os

from mmjax.errors import UserError


def data_dir(dcfg):
  return os.path.expanduser(dcfg.data_dir or os.environ.get(
      "MMJAX_DATA_DIR", "~/.cache/mmjax/datasets"))


def load_sources(dcfg):
  """Returns {'train': src, 'val': src, 'test': src}; src[i] is one example
  (see mmjax.data.schema). Builds the TFDS dataset the first time."""
  name = dcfg.name
  try:
    if name == "materials_tb":
      from mmjax.data.materials_tb import load_materials_tb  # pylint: disable=g-import-not-at-top
      return load_materials_tb(dcfg.variant, data_dir(dcfg))
    if name == "cif_folder":
      if not dcfg.path:
        raise UserError("dataset.path: give the folder of CIF files and "
                        "labels.csv (--config.dataset.path=DIR)")
      from mmjax.data.cif_folder import load_cif_folder  # pylint: disable=g-import-not-at-top
      return load_cif_folder(os.path.expanduser(dcfg.path), data_dir(dcfg),
                             cutoff=dcfg.cutoff, seed=dcfg.split_seed)
  except UserError:
    raise
  except (ValueError, OSError) as e:
    raise UserError(f"dataset {name}: {e}") from e
  raise UserError(f"dataset.name: unknown dataset '{name}' "
                  "(known: materials_tb, cif_folder)")
