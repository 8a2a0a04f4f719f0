"""Random W1 inputs (the fixed W1 shapes of benchmarks/README.md, `optimized`).

One padded numpy batch in mmjax's batch format (mmjax/models/multimodal.py,
mmjax/data/pipeline.py), shared by w1_mmjax.py and w1_torch.py so that both
sides see the same graphs:

  crystal: 32 nodes x 3 features; every node has 12 outgoing edges to 12
           distinct other nodes (384 directed edges per graph).
  kspace:  8 x 8 periodic grid, 4 neighbours (256 directed edges) x 64 features.
  scalar [B,10], decomp [B,64], modality_mask [B,4] (all present),
  label [B] in {0,1}, sample_mask [B] (all real).
"""

import numpy as np

BATCH = 64
NUM_CLASSES = 2
CRYSTAL_NODES, CRYSTAL_FEATS, CRYSTAL_OUT_DEG = 32, 3, 12
GRID = 8
KSPACE_NODES, KSPACE_FEATS = GRID * GRID, 64
SCALAR_FEATS, DECOMP_FEATS = 10, 64


def crystal_edges(rng):
  """12 outgoing edges per node, to distinct other nodes: senders, receivers."""
  n, k = CRYSTAL_NODES, CRYSTAL_OUT_DEG
  senders, receivers = [], []
  for i in range(n):
    others = np.delete(np.arange(n), i)
    dst = rng.choice(others, size=k, replace=False)
    senders.append(np.full(k, i))
    receivers.append(dst)
  return (np.concatenate(senders).astype(np.int32),
          np.concatenate(receivers).astype(np.int32))


def kspace_edges():
  """8 x 8 periodic grid, edges to the 4 neighbours (256 directed edges)."""
  senders, receivers = [], []
  for r in range(GRID):
    for c in range(GRID):
      i = r * GRID + c
      for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        j = ((r + dr) % GRID) * GRID + (c + dc) % GRID
        senders.append(i)
        receivers.append(j)
  return np.asarray(senders, np.int32), np.asarray(receivers, np.int32)


def make_batch(batch_size=BATCH, seed=0):
  """Returns a dict of numpy arrays in mmjax's padded batch format."""
  rng = np.random.default_rng(seed)
  b = batch_size
  cs, cr = zip(*(crystal_edges(rng) for _ in range(b)))
  ks, kr = kspace_edges()
  batch = {
      "crystal_nodes": rng.standard_normal(
          (b, CRYSTAL_NODES, CRYSTAL_FEATS)).astype(np.float32),
      "crystal_senders": np.stack(cs),
      "crystal_receivers": np.stack(cr),
      "crystal_node_mask": np.ones((b, CRYSTAL_NODES), np.float32),
      "crystal_edge_mask": np.ones((b, CRYSTAL_NODES * CRYSTAL_OUT_DEG),
                                   np.float32),
      "kspace_nodes": rng.standard_normal(
          (b, KSPACE_NODES, KSPACE_FEATS)).astype(np.float32),
      "kspace_senders": np.tile(ks, (b, 1)),
      "kspace_receivers": np.tile(kr, (b, 1)),
      "kspace_node_mask": np.ones((b, KSPACE_NODES), np.float32),
      "kspace_edge_mask": np.ones((b, ks.shape[0]), np.float32),
      "scalar": rng.standard_normal((b, SCALAR_FEATS)).astype(np.float32),
      "decomp": rng.standard_normal((b, DECOMP_FEATS)).astype(np.float32),
      "modality_mask": np.ones((b, 4), np.float32),
      "label": rng.integers(0, NUM_CLASSES, size=b).astype(np.int32),
      "sample_mask": np.ones((b,), np.float32),
  }
  assert batch["crystal_senders"].shape == (b, 384)
  assert batch["kspace_senders"].shape == (b, 256)
  return batch


def to_pyg(batch):
  """Padded batch -> batched PyG tensors (numpy): per graph modality
  x [B*N, F], edge_index [2, B*E] (global node ids), batch vector [B*N]."""
  out = {}
  for m in ("crystal", "kspace"):
    nodes = batch[f"{m}_nodes"]
    b, n, f = nodes.shape
    off = (np.arange(b, dtype=np.int64) * n)[:, None]
    s = (batch[f"{m}_senders"].astype(np.int64) + off).reshape(-1)
    r = (batch[f"{m}_receivers"].astype(np.int64) + off).reshape(-1)
    out[f"{m}_x"] = nodes.reshape(b * n, f)
    out[f"{m}_edge_index"] = np.stack([s, r])   # PyG: row 0 source, row 1 target
    out[f"{m}_batch"] = np.repeat(np.arange(b, dtype=np.int64), n)
  out["scalar"] = batch["scalar"]
  out["decomp"] = batch["decomp"]
  out["modality_mask"] = batch["modality_mask"]
  out["label"] = batch["label"].astype(np.int64)
  return out
