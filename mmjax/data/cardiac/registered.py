"""The `cardiac` dataset as a registered dataset (mmjax.data.datasets).

Each example: `trajectory` float32 [80, F] (the window, t in (0, 10] tau;
F = 15 nodes in network.NODES order, or 13 with genes_only), `position`
float32 [1] (the spatial hazard position p; 0.5 for protocol examples),
`label` int32 (index into network.FATES), `id` and `kind` ('protocol' |
'spatial'). Two modalities: `trajectory` of kind 'sequence' with shape
(80, F) (every example has all 80 steps, so `trajectory_mask` is all
ones) and `position` of kind 'vector' with shape (1,).

Config keys (dataset.*):
  scale        1 | 2 | 3 (default 3): the builder config scale<scale>
               (6,500 / 9,750 / 13,000 examples)
  split_seed   trajectories.split: stratified by (kind, label), 65/25/10
               train / val / test, every stratum in proportion within one
               example
  size         > 0: build and read a smaller dataset (per_type = size,
               spatial = size // 2) kept apart in
               <data_dir>/cardiac_size<size> (tests); its levels are
               the scales shrunk in proportion (reduced_scales)
  limit        > 0: keep at most this many examples per split, a seeded
               random subset of the full build (smoke runs)
  train_scale  0 (default) | 1 | 2 | 3: > 0 keeps only the training
               examples of that scale (levels <= train_scale); val and
               test stay the full split's. The progressive-scaling
               driver's scales in turn: every scale validated and tested
               on the same examples.
  genes_only   False (default) | True: drop the 2 input-signal columns
               (Wnt, BMP; NODES 0 and 1), leaving the 13 integrated
               nodes. The full window is the whole Markov state at every
               step, so ceiling.py's committor is the Bayes posterior of
               the default; without the signals a switch that has
               happened is only seen through its noisy relays, and the
               committor ceiling becomes an upper bound.

Each source also exposes per-example arrays `ids`, `labels`, `kinds`,
`positions` and `levels` (the smallest scale holding the example,
trajectories.scale_levels: members with `members.subset` s train on the
rows of level <= s, the progressive-scaling driver's nested scales); the spec's metric_groups (METRIC_GROUPS) ask for metrics per
kind beside the pooled ones (the kinds' class priors differ: balanced
protocol examples, natural spatial ones).
"""

import logging
import os

import numpy as np

from mmjax.data import splits as splits_lib
from mmjax.data import tfds_build
from mmjax.data.cardiac import network
from mmjax.data.cardiac import trajectories
from mmjax.data.datasets import Dataset
from mmjax.data.datasets import DatasetSpec
from mmjax.data.modalities import Modality

TRAJECTORY = "trajectory"
POSITION = "position"
DEFAULT_SCALE = 3
METRIC_GROUPS = (("kind", None),)
# The columns that genes_only keeps: every node but the 2 inputs.
GENE_COLUMNS = np.array([i for i in range(len(network.NODES))
                         if i not in network.INPUT_INDICES])


def spec(num_features, window=trajectories.WINDOW):
  """The `trajectory` [window, num_features] and `position` [1]
  modalities; classification into network.FATES."""
  return DatasetSpec(
      modalities={TRAJECTORY: Modality("sequence",
                                        (int(window), int(num_features)),
                                        "float32"),
                  POSITION: Modality("vector", (1,), "float32")},
      task="classification", num_outputs=len(network.FATES),
      class_names=tuple(network.FATES), metric_groups=METRIC_GROUPS)



class CardiacSource:
  """Random-access view of some stored cardiac examples.

  Attributes:
    ids, kinds: str arrays [len(self)]; labels int32 [len(self)];
    positions float32 [len(self)]; levels int32 [len(self)] (the smallest
    scale holding each example).
  """

  def __init__(self, source, rows, ids, labels, kinds, positions,
               columns=None, levels=None):
    self._source = source
    self._rows = np.asarray(rows, np.int64)
    self._columns = columns
    self.ids, self.labels, self.kinds = ids, labels, kinds
    self.positions = positions
    self.levels = levels

  def __len__(self):
    return len(self._rows)

  def __getitem__(self, i):
    rec = self._source[int(self._rows[i])]
    x = np.asarray(rec["x"], np.float32)
    if self._columns is not None:
      x = x[:, self._columns]
    return {TRAJECTORY: x,
            POSITION: np.asarray([self.positions[i]], np.float32),
            "label": np.int32(self.labels[i]), "id": str(self.ids[i]),
            "kind": str(self.kinds[i])}

  def __getitems__(self, idx):
    return [self[i] for i in idx]


def read_index(source):
  """{ids, labels, kinds, positions, index, rows} arrays [N] of a stored source,
  sorted by id (trajectories.make's order: protocol then spatial, each by
  draw index) whatever order TFDS stored the records in."""
  return tfds_build.read_index(source, {
      "labels": ("label", np.int32), "kinds": ("kind", str),
      "positions": ("position", np.float32), "index": ("index", np.int64)})


def _int(dcfg, key, default, low):
  v = dcfg.get(key, default)
  v = default if v is None else v
  if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
    raise ValueError(f"dataset.{key}: {v!r} is not an integer >= {low}")
  return int(v)


def _options(dcfg):
  """(scale, split_seed, size, limit, genes_only, train_scale) from dcfg;
  ValueError naming the first bad key and its value."""
  scale = dcfg.get("scale", DEFAULT_SCALE)
  scale = DEFAULT_SCALE if scale is None else scale
  if (isinstance(scale, bool) or not isinstance(scale, (int, np.integer))
      or scale not in trajectories.SCALES):
    raise ValueError(f"dataset.scale: {scale!r} is not a scale (known: "
                     f"{', '.join(map(str, sorted(trajectories.SCALES)))})")
  split_seed = _int(dcfg, "split_seed", 0, 0)
  size = _int(dcfg, "size", 0, 0)
  limit = _int(dcfg, "limit", 0, 0)
  genes_only = dcfg.get("genes_only", False)
  if not isinstance(genes_only, (bool, np.bool_)):
    raise ValueError(f"dataset.genes_only: {genes_only!r} is not True or "
                     "False")
  train_scale = _int(dcfg, "train_scale", 0, 0)
  if train_scale > scale:
    raise ValueError(f"dataset.train_scale: {train_scale} is larger than "
                     f"dataset.scale {scale}")
  return int(scale), split_seed, size, limit, bool(genes_only), train_scale


def prepared_builder(scale, data_dir, size=0):
  """The `cardiac/scale<scale>` builder load_cardiac reads, built if
  absent; a size > 0 build lives in <data_dir>/cardiac_size<size>."""
  from mmjax.data.cardiac import builder as builder_lib  # pylint: disable=g-import-not-at-top
  if size:
    data_dir = os.path.join(data_dir, f"cardiac_size{size}")
  return builder_lib.build(f"scale{scale}", data_dir, size=size or None)


def load_cardiac(dcfg, data_dir):
  """Builds (first time) and loads `cardiac/scale<dataset.scale>`; splits
  at load time, stratified by (kind, label)."""
  from mmjax.data.cardiac import builder as builder_lib  # pylint: disable=g-import-not-at-top
  scale, split_seed, size, limit, genes_only, train_scale = _options(dcfg)
  builder = prepared_builder(scale, data_dir, size)
  source = builder.as_data_source()[builder_lib.SPLIT]
  if int(builder.info.metadata.get("size", 0) or 0):
    logging.warning("cardiac/scale%d in %s is a reduced build (size %d)",
                    scale, data_dir, size)
  index = read_index(source)
  parts = trajectories.split(index["labels"], split_seed,
                             kind=index["kinds"])
  parts = [parts[s] for s in splits_lib.SPLITS]
  for name, idx in zip(splits_lib.SPLITS, parts):
    if not len(idx):
      raise ValueError(f"cardiac/scale{scale}: the {name} split is empty")
  if limit:
    rng = np.random.default_rng([split_seed, 0x11F])
    parts = [np.sort(rng.permutation(p)[:limit]) for p in parts]
  columns = GENE_COLUMNS if genes_only else None
  levels = trajectories.scale_levels(
      index["labels"], index["kinds"], index["index"],
      trajectories.reduced_scales(size, size // 2) if size else None)
  if train_scale:
    parts[0] = parts[0][levels[parts[0]] <= train_scale]
  sources = {
      s: CardiacSource(source, index["rows"][idx], index["ids"][idx],
                       index["labels"][idx], index["kinds"][idx],
                       index["positions"][idx], columns, levels[idx])
      for s, idx in zip(splits_lib.SPLITS, parts)}
  num_features = len(GENE_COLUMNS) if genes_only else len(network.NODES)
  return Dataset(sources, spec(num_features))
