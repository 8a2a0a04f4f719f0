"""TFDS builder for a user folder of CIF files (topological vs trivial).

Folder layout (see docs/cif_folder.md):

  <dir>/labels.csv   header `id,label[,split]` (`cif_labels`)
  <dir>/<id>.cif     one crystal structure per row of labels.csv (required)
  <dir>/<id>.npz     optional extra modalities (`npz_modalities`)

Every example is `cif_material.read_material` of one row, in the format of
`mmjax.data.materials.schema`; rows without a given split are split by
`splits.stratified_split` on their labels (`cif_labels.assign_splits`).

Any problem with a file raises a one-line `ValueError` that starts with the
file's path, so a bad material in a large folder is easy to find.

Usage:

  sources = load_cif_folder("/data/my_cifs", data_dir="/data/tfds")
  ex = sources["train"][0]          # dict of numpy arrays, schema format
"""

import dataclasses
import hashlib
import inspect
import os
from typing import Any

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from mmjax.data.materials import schema
from mmjax.data.materials.cif_graphs import DEFAULT_CUTOFF
from mmjax.data.materials.cif_labels import LABELS_FILE
from mmjax.data.materials.cif_labels import SPLITS
from mmjax.data.materials.cif_labels import assign_splits
from mmjax.data.materials.cif_labels import read_labels
from mmjax.data.materials.cif_material import material_paths
from mmjax.data.materials.cif_material import read_material

# Bump whenever read_material's output changes, so datasets built by an older
# featurizer are not silently reused (it is part of the build fingerprint).
_FEATURIZER_VERSION = "1"


def folder_fingerprint(path: str, cutoff: float, seed: int) -> str:
  """Hex digest identifying a build: folder, its files' stats, settings.

  Covers the absolute path, name/size/mtime of labels.csv and every .cif and
  .npz in the folder, cutoff, seed and the featurizer version: editing any of
  them gives a new dataset directory instead of reusing a stale one.
  """
  folder = os.path.realpath(path)
  if not os.path.isdir(folder):
    raise ValueError(f"{path}: not a directory")
  h = hashlib.sha256()
  h.update(f"v{_FEATURIZER_VERSION}|{folder}|{float(cutoff)!r}|{int(seed)}"
           .encode())
  with os.scandir(folder) as it:
    entries = sorted((e for e in it if e.is_file() and (
        e.name == LABELS_FILE or e.name.endswith((".cif", ".npz")))),
                     key=lambda e: e.name)
  for e in entries:
    st = e.stat()
    h.update(f"|{e.name}|{st.st_size}|{st.st_mtime_ns}".encode())
  return h.hexdigest()[:16]


@dataclasses.dataclass(eq=False)
class CifFolderConfig(tfds.core.BuilderConfig):
  """Which folder to read and how; `name` should come from `make_config`.

  Attributes:
    path: the dataset folder (labels.csv + CIFs [+ npz]).
    cutoff: crystal-graph neighbour cutoff, Angstrom.
    seed: seed of the stratified split (unused if labels.csv has `split`).
  """
  path: str = ""
  cutoff: float = DEFAULT_CUTOFF
  seed: int = 0


def make_config(path: str, cutoff: float = DEFAULT_CUTOFF,
                seed: int = 0) -> CifFolderConfig:
  """Config whose name (hence build dir) is the folder's fingerprint."""
  name = "h" + folder_fingerprint(path, cutoff, seed)
  return CifFolderConfig(
      name=name, path=os.path.realpath(path), cutoff=float(cutoff),
      seed=int(seed),
      description=f"{os.path.realpath(path)}, cutoff {cutoff} A, seed {seed}")


class CifFolder(tfds.core.GeneratorBasedBuilder):
  """`cif_folder`: crystal graphs from a user folder of CIF files.

  Build with a `CifFolderConfig` (see `make_config`), e.g.
    CifFolder(config=make_config(path), data_dir=d, file_format="array_record")
  Files are written under <data_dir>/cif_folder/<config name>/<version>.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    """This module's file (TFDS looks for a checksums file next to it).

    Overridden because TFDS's own version resolves package modules through
    `importlib_resources`, which etils needs for that but which is not a
    dependency here; for a module on disk the plain file path is the same.
    """
    return epath.Path(inspect.getfile(cls))

  def _info(self) -> tfds.core.DatasetInfo:
    # Built directly (not dataset_info_from_configs) because that one reads
    # metadata files next to the module, which this builder does not ship.
    cfg = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=("Topological vs trivial materials read from a CIF "
                     f"folder: {cfg.description if cfg else ''}"),
        features=schema.tfds_features(),
        metadata=tfds.core.MetadataDict(
            path=cfg.path if cfg else "", cutoff=cfg.cutoff if cfg else None,
            seed=cfg.seed if cfg else None,
            featurizer_version=_FEATURIZER_VERSION),
    )

  def _split_generators(self, dl_manager):
    """One generator per non-empty split (TFDS cannot write empty splits)."""
    del dl_manager  # files are local; nothing to download
    cfg = self.builder_config
    if cfg is None or not cfg.path:
      raise ValueError("cif_folder: needs a CifFolderConfig with a path; use "
                       "make_config(path) or load_cif_folder(path, data_dir)")
    rows = read_labels(cfg.path)
    # Fail before writing anything if a listed CIF is absent.
    for r in rows:
      cif, _ = material_paths(cfg.path, r.id)
      if not os.path.isfile(cif):
        raise ValueError(f"{cif}: file not found (listed as id {r.id!r} in "
                         f"{os.path.join(cfg.path, LABELS_FILE)})")
    splits = assign_splits(rows, cfg.seed)
    return {s: self._generate_examples(splits[s]) for s in SPLITS if splits[s]}

  def _generate_examples(self, rows):
    """Yields (id, example) for the given labels.csv rows."""
    cfg = self.builder_config
    for r in rows:
      cif, npz = material_paths(cfg.path, r.id)
      yield r.id, read_material(cif, npz, r.label, cfg.cutoff, r.id)


class CifFolderSource:
  """Random-access view of one split returning schema example dicts.

  Wraps a TFDS data source (which returns `id` as bytes and `label` as int)
  so that items match `read_material` exactly. `source` None = empty split.
  """

  def __init__(self, source, split: str):
    self._source = source
    self.split = split

  def __len__(self) -> int:
    return 0 if self._source is None else len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    i = int(index)
    n = len(self)
    if not -n <= i < n:
      raise IndexError(f"index {index} out of range for split {self.split!r} "
                       f"of size {n}")
    return self._to_schema(self._source[i % n])

  def __getitems__(self, indices) -> list[dict[str, Any]]:
    """Batched read (used by grain); same results as __getitem__."""
    return [self[i] for i in indices]

  def __repr__(self) -> str:
    return f"CifFolderSource(split={self.split!r}, len={len(self)})"

  @staticmethod
  def _to_schema(record: dict[str, Any]) -> dict[str, Any]:
    ex = dict(record)
    ex["label"] = np.asarray(ex["label"], np.int64)
    if isinstance(ex["id"], bytes):
      ex["id"] = ex["id"].decode("utf-8")
    return ex


def load_cif_folder(path: str, data_dir: str, cutoff: float = DEFAULT_CUTOFF,
                    seed: int = 0) -> dict[str, CifFolderSource]:
  """Builds (if not built yet) and opens the dataset of a CIF folder.

  Args:
    path: the folder with labels.csv and the CIF (and npz) files.
    data_dir: TFDS data dir; the build lands in
      <data_dir>/cif_folder/h<fingerprint>/1.0.0, the fingerprint covering the
      folder's path, file stats, cutoff and seed.
    cutoff: crystal-graph neighbour cutoff, Angstrom.
    seed: stratified split seed (ignored if labels.csv has a split column).

  Returns:
    {"train": ..., "val": ..., "test": ...}; each supports len() and
    source[i] -> example dict. A split with no materials has length 0.

  Raises:
    ValueError: naming the offending file (see `read_labels`,
      `read_material`); nothing is left half-written.
  """
  builder = CifFolder(config=make_config(path, cutoff, seed),
                      data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  sources = builder.as_data_source()
  return {s: CifFolderSource(sources.get(s), s) for s in SPLITS}
