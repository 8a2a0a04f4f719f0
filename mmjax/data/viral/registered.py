"""The `viral` dataset as a registered dataset (mmjax.data.datasets).

Each example: `genome` int32 [t] base tokens (TOKENS: A=0, C=1, G=2, T=3,
N=4), `label` int32, `id`, `group`, `kind` and `viral_group` (str: the
group, or 'cellular' for a bacterial fragment). One modality,
`genome`, of kind 'sequence' with shape (T,): the pipeline pads token ids
with 0 and marks real steps in `genome_mask` (modalities.SequenceKind), so
a padded step reads as A and only the mask tells it apart; every stored
sequence of a config has the same length, so nothing is padded unless
`dataset.budgets.genome.length` is raised.

Config keys (dataset.*):
  variant      'viral_viability' (default) | 'viral_vs_cellular'
  split_seed   viral_viability: splits.group_split of the 6 groups, 70/15/15
               of the examples (docs/viral.md: which groups land where)
  test_group   viral_viability: '' (default: split_seed decides) or a
               group name: that group is test, the next one in sorted
               order (cyclically) val, the other four train
               (leave-one-genome-out)
  fold         viral_vs_cellular: which of the 4 folds (examples.FOLDS) is
               test (default 0); the next fold (cyclically) is val, the
               other two train. Each fold holds bacterial and viral
               genomes, so val and test AUROC are defined.
  length       viral_vs_cellular: fragment length, one of 300, 500, 1000,
               3000 (default 500)
  kinds        viral_viability: label-1 kinds to keep, e.g. ('lof_stop',
               'lof_frameshift', 'lof_start') or ('shuffle',), for
               reporting each kind against the intact windows; default all
  size         > 0: build and read a smaller dataset (per_group /
               per_genome of examples.make) kept apart in
               <data_dir>/viral_size<size> (tests)
  limit        > 0: keep at most this many examples per split, a seeded
               random subset of the full build (smoke runs)
  stop_flags   True: `genome` is int32 [t, 2], base ids and, per position,
               features.stop_flags under the example's translation table
               (bit 0: a stop codon starts here on the forward strand,
               bit 1: on the reverse strand), the genetic code each
               genome uses, which the longest-ORF rule also reads
Splits are computed on all examples before `kinds` filters label 1, so
the same genomes land in the same split whatever kinds are kept.

Each source also exposes per-example arrays `ids`, `labels`, `kinds`,
`groups`; the spec's metric_groups (METRIC_GROUPS) ask for metrics per
kind and per genome beside the pooled ones.
"""

import logging
import os

import numpy as np

from mmjax.data import splits as splits_lib
from mmjax.data import tfds_build
from mmjax.data.datasets import Dataset
from mmjax.data.datasets import DatasetSpec
from mmjax.data.modalities import Modality
from mmjax.data.viral import examples as examples_lib
from mmjax.data.viral import features as features_lib

TOKENS = "ACGTN"
MODALITY = "genome"
CLASS_NAMES = {"viral_viability": ("coding-intact", "lof-or-shuffle"),
               "viral_vs_cellular": ("cellular", "viral")}
DEFAULT_LENGTH = 500
_LOOKUP = np.full(256, 255, np.uint8)
for _i, _b in enumerate(TOKENS):
  _LOOKUP[ord(_b)] = _i
  _LOOKUP[ord(_b.lower())] = _i


def encode(seq):
  """int32 [len(seq)] token ids (TOKENS) of a str over ACGTN (either
  case); ValueError on any other letter."""
  ids = _LOOKUP[np.frombuffer(seq.encode("ascii", "replace"), np.uint8)]
  if np.any(ids == 255):
    bad = int(np.flatnonzero(ids == 255)[0])
    raise ValueError(f"letter {seq[bad]!r} at position {bad + 1} is not one "
                     f"of {TOKENS}")
  return ids.astype(np.int32)


# Metrics beside the pooled ones (datasets.DatasetSpec.metric_groups):
# viral_viability: each label-1 kind against the intact windows, and each
# genome group; viral_vs_cellular: each viral group against the split's
# bacterial fragments (example key 'viral_group': the group of a viral
# fragment, 'cellular' for every bacterial one).
METRIC_GROUPS = {"viral_viability": (("kind", "intact"), ("group", None)),
                 "viral_vs_cellular": (("viral_group", "cellular"),)}


def sequence_spec(length, class_names, metric_groups=(), stop_flags=False):
  """One `genome` modality of int32 token ids [T] (with stop flags: [T,
  2]); classification."""
  shape = (int(length), 2) if stop_flags else (int(length),)
  return DatasetSpec(
      modalities={MODALITY: Modality("sequence", shape, "int32")},
      task="classification", num_outputs=len(class_names),
      class_names=tuple(class_names), metric_groups=tuple(metric_groups))



class ViralSource:
  """Random-access view of some stored viral examples, tokenised at
  access.

  Attributes:
    ids, kinds, groups: str arrays [len(self)]; labels int32 [len(self)].
  """

  def __init__(self, source, rows, ids, labels, kinds, groups,
               stop_flags=False):
    self._source = source
    self._rows = np.asarray(rows, np.int64)
    self.ids, self.labels, self.kinds, self.groups = ids, labels, kinds, groups
    self._stop_flags = stop_flags

  def __len__(self):
    return len(self._rows)

  def __getitem__(self, i):
    rec = self._source[int(self._rows[i])]
    group = str(self.groups[i])
    seq = tfds_build.text(rec["sequence"])
    tokens = encode(seq)
    if self._stop_flags:
      tokens = np.stack([tokens, features_lib.stop_flags(
          seq, int(rec["table"]))], -1)
    return {MODALITY: tokens,
            "label": np.int32(self.labels[i]), "id": str(self.ids[i]),
            "group": group, "kind": str(self.kinds[i]),
            "viral_group": "cellular" if self.kinds[i] == "cellular"
                           else group}

  def __getitems__(self, idx):
    return [self[i] for i in idx]


def read_index(source):
  """{ids, labels, kinds, groups, lengths, rows} arrays [N] of a stored
  source, sorted by id whatever order TFDS stored the records in."""
  return tfds_build.read_index(source, {
      "labels": ("label", np.int32), "kinds": ("kind", str),
      "groups": ("group", str), "lengths": ("length", np.int64)})


def _viability_parts(index, dcfg):
  test_group = dcfg.get("test_group", "") or ""
  if test_group:
    keys = sorted(set(index["groups"].tolist()))
    if test_group not in keys:
      raise ValueError(f"dataset.test_group: '{test_group}' is not a group "
                       f"(known: {', '.join(keys)})")
    parts = examples_lib.leave_group_out(index["groups"],
                                         keys.index(test_group))
  else:
    parts = splits_lib.group_split(index["groups"], dcfg.split_seed,
                                   splits_lib.FRACTIONS)
  kinds = dcfg.get("kinds", None)
  if kinds:
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in examples_lib.KINDS[1:]]
    if unknown:
      raise ValueError(f"dataset.kinds: '{unknown[0]}' is not a label-1 "
                       f"kind (known: {', '.join(examples_lib.KINDS[1:])})")
    keep = (index["labels"] == 0) | np.isin(index["kinds"], kinds)
    parts = [p[keep[p]] for p in parts]
  return parts


def _fragment_parts(index, dcfg):
  if dcfg.get("kinds", None):
    raise ValueError("dataset.kinds: only viral_viability has kinds to "
                     "choose")
  length = int(dcfg.get("length", DEFAULT_LENGTH) or DEFAULT_LENGTH)
  have = sorted(set(index["lengths"].tolist()))
  if length not in have:
    raise ValueError(f"dataset.length: {length} is not a fragment length "
                     f"of viral_vs_cellular (known: "
                     f"{', '.join(map(str, have))})")
  fold = dcfg.get("fold", None)
  fold = 0 if fold is None else int(fold)
  k = len(examples_lib.FOLDS)
  if not 0 <= fold < k:
    raise ValueError(f"dataset.fold: {fold} is outside [0, {k})")
  folds = examples_lib.group_folds(
      [{"group": g, "label": l} for g, l in zip(index["groups"],
                                                index["labels"])], k)
  at = index["lengths"] == length
  test, val = fold, (fold + 1) % k
  return [np.flatnonzero(at & (folds != test) & (folds != val)),
          np.flatnonzero(at & (folds == val)),
          np.flatnonzero(at & (folds == test))]


def load_viral(dcfg, data_dir):
  """Builds (first time) and loads `viral/<dataset.variant>`; splits at
  load time by genome group."""
  from mmjax.data.viral import builder as builder_lib  # pylint: disable=g-import-not-at-top
  variant = dcfg.get("variant", "viral_viability") or "viral_viability"
  size = int(dcfg.get("size", 0) or 0)
  if size:
    data_dir = os.path.join(data_dir, f"viral_size{size}")
  builder = builder_lib.build(variant, data_dir, size=size or None)
  source = builder.as_data_source()[builder_lib.SPLIT]
  if int(builder.info.metadata.get("size", 0) or 0):
    logging.warning("viral/%s in %s is a build of size %d, not the "
                    "default", variant, data_dir, size)
  index = read_index(source)
  if variant == "viral_viability":
    parts = _viability_parts(index, dcfg)
  else:
    parts = _fragment_parts(index, dcfg)
  for name, idx in zip(splits_lib.SPLITS, parts):
    if not len(idx):
      raise ValueError(f"viral/{variant}: the {name} split is empty")
  limit = int(dcfg.get("limit", 0) or 0)
  if limit:
    rng = np.random.default_rng([dcfg.split_seed, 0x11F])
    parts = [np.sort(rng.permutation(p)[:limit]) for p in parts]
  length = max(int(index["lengths"][p].max()) for p in parts)
  stop_flags = bool(dcfg.get("stop_flags", False))
  sources = {
      s: ViralSource(source, index["rows"][idx], index["ids"][idx],
                     index["labels"][idx], index["kinds"][idx],
                     index["groups"][idx], stop_flags)
      for s, idx in zip(splits_lib.SPLITS, parts)}
  return Dataset(sources, sequence_spec(length, CLASS_NAMES[variant],
                                        METRIC_GROUPS[variant], stop_flags))
