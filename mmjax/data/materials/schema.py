"""The example format every mmjax materials builder produces.

One example is a flat dict of numpy arrays (what a TFDS data source returns).
Graphs are stored unpadded; `mmjax.data.pipeline` pads them to fixed budgets.

Keys, dtypes and shapes (n_c, e_c, n_k, e_k vary per example):
  crystal_nodes      float32 [n_c, 3]   real-space site features
  crystal_senders    int32   [e_c]      directed edges, both directions stored,
  crystal_receivers  int32   [e_c]      no self loops (GCNConv adds them;
                                        `validate_example` rejects them)
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


def check_edges(senders, receivers, num_nodes, modality, where):
  """Raises ValueError naming `where` unless the edges fit the format.

  Senders and receivers must be 1-D of one shape, index nodes in
  [0, num_nodes), and hold no self loop: GCNConv adds one to every node
  itself and would count an explicit one twice.

  Args:
    senders, receivers: int [e] edge endpoints.
    num_nodes: rows of the modality's node array.
    modality: graph modality name (for the message).
    where: the example or file, first in the message.
  """
  s, r = np.asarray(senders), np.asarray(receivers)
  if s.shape != r.shape or s.ndim != 1:
    raise ValueError(f"{where}: {modality} senders/receivers shapes {s.shape} "
                     f"and {r.shape} differ")
  if len(s) and (min(s.min(), r.min()) < 0
                 or max(s.max(), r.max()) >= num_nodes):
    raise ValueError(f"{where}: {modality} edge index outside "
                     f"[0, {num_nodes})")
  loops = np.flatnonzero(s == r)
  if len(loops):
    e = loops[0]
    raise ValueError(f"{where}: {modality} edge {e} is a self loop (node "
                     f"{s[e]} -> {r[e]}); GCNConv adds its own")


def validate_example(ex, where):
  """Raises ValueError naming `where` if `ex` does not follow the format."""
  for m in GRAPH_MODALITIES:
    nodes = np.asarray(ex[f"{m}_nodes"])
    if nodes.ndim != 2 or nodes.shape[1] != NODE_FEATURES[m] or not len(nodes):
      raise ValueError(f"{where}: {m}_nodes has shape {nodes.shape}, "
                       f"expected [n>=1, {NODE_FEATURES[m]}]")
    check_edges(ex[f"{m}_senders"], ex[f"{m}_receivers"], len(nodes), m,
                where)
    if not np.all(np.isfinite(nodes)):
      raise ValueError(f"{where}: {m}_nodes has non-finite values")
  for m in VECTOR_MODALITIES:
    v = np.asarray(ex[m])
    if v.shape != (VECTOR_FEATURES[m],) or not np.all(np.isfinite(v)):
      raise ValueError(f"{where}: {m} must be {VECTOR_FEATURES[m]} finite "
                       f"values, got shape {v.shape}")


def placeholder(modality):
  """Arrays standing in for a missing modality (1 zero node, or zeros).

  Returns:
    dict key -> array: `<m>_nodes` [1, F], `<m>_senders` / `<m>_receivers`
    [0] for a graph modality; `<m>` [F] for a vector modality.
  """
  if modality in GRAPH_MODALITIES:
    return {f"{modality}_nodes": np.zeros((1, NODE_FEATURES[modality]),
                                          np.float32),
            f"{modality}_senders": np.zeros((0,), np.int32),
            f"{modality}_receivers": np.zeros((0,), np.int32)}
  return {modality: np.zeros((VECTOR_FEATURES[modality],), np.float32)}
