"""The example format every mmjax materials builder produces.

One example is a flat dict of numpy arrays (what a TFDS data source returns).
Graphs are stored unpadded; `mmjax.data.pipeline` pads them to fixed budgets.

Keys, dtypes and shapes (n_c, e_c, n_k, e_k vary per example):
  crystal_nodes      float32 [n_c, 3]   real-space site features
  crystal_senders    int32   [e_c]      directed edges, both directions stored,
  crystal_receivers  int32   [e_c]      no self loops (the GCN adds them)
  kspace_nodes       float32 [n_k, 64]  per-k-point features
  kspace_senders     int32   [e_k]
  kspace_receivers   int32   [e_k]
  scalar             float32 [10]
  decomp             float32 [64]
  modality_mask      float32 [4]        1 = modality present, 0 = missing, in
                                        the order of MODALITIES; a missing graph
                                        is stored with 1 zero node and no edges,
                                        a missing vector as zeros
  label              int64   []         0 = trivial, 1 = topological
  id                 str                material identifier
"""

import numpy as np

MODALITIES = ("crystal", "kspace", "scalar", "decomp")
GRAPH_MODALITIES = ("crystal", "kspace")
VECTOR_MODALITIES = ("scalar", "decomp")

NODE_FEATURES = {"crystal": 3, "kspace": 64}
VECTOR_FEATURES = {"scalar": 10, "decomp": 64}
NUM_CLASSES = 2
CLASS_NAMES = ("trivial", "topological")


def tfds_features():
  """The `tfds.features.FeaturesDict` matching the format above."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  t = tfds.features.Tensor
  feats = {}
  for m in GRAPH_MODALITIES:
    feats[f"{m}_nodes"] = t(shape=(None, NODE_FEATURES[m]), dtype=np.float32)
    feats[f"{m}_senders"] = t(shape=(None,), dtype=np.int32)
    feats[f"{m}_receivers"] = t(shape=(None,), dtype=np.int32)
  for m in VECTOR_MODALITIES:
    feats[m] = t(shape=(VECTOR_FEATURES[m],), dtype=np.float32)
  feats["modality_mask"] = t(shape=(len(MODALITIES),), dtype=np.float32)
  feats["label"] = tfds.features.ClassLabel(names=CLASS_NAMES)
  feats["id"] = tfds.features.Text()
  return tfds.features.FeaturesDict(feats)


def validate_example(ex, where):
  """Raises ValueError naming `where` if `ex` does not follow the format."""
  for m in GRAPH_MODALITIES:
    nodes = np.asarray(ex[f"{m}_nodes"])
    if nodes.ndim != 2 or nodes.shape[1] != NODE_FEATURES[m] or not len(nodes):
      raise ValueError(f"{where}: {m}_nodes has shape {nodes.shape}, "
                       f"expected [n>=1, {NODE_FEATURES[m]}]")
    s, r = np.asarray(ex[f"{m}_senders"]), np.asarray(ex[f"{m}_receivers"])
    if s.shape != r.shape or s.ndim != 1:
      raise ValueError(f"{where}: {m} senders/receivers shapes {s.shape} and "
                       f"{r.shape} differ")
    if len(s) and (min(s.min(), r.min()) < 0 or max(s.max(), r.max()) >= len(nodes)):
      raise ValueError(f"{where}: {m} edge index outside [0, {len(nodes)})")
    if not np.all(np.isfinite(nodes)):
      raise ValueError(f"{where}: {m}_nodes has non-finite values")
  for m in VECTOR_MODALITIES:
    v = np.asarray(ex[m])
    if v.shape != (VECTOR_FEATURES[m],) or not np.all(np.isfinite(v)):
      raise ValueError(f"{where}: {m} must be {VECTOR_FEATURES[m]} finite values, "
                       f"got shape {v.shape}")
