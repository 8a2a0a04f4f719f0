"""Padding examples to fixed budgets and serving batches.

Every batch of a run has the same shapes (graphs padded to node/edge budgets,
the last eval batch padded with `sample_mask` 0), so the train step compiles
once. The order of training batches is a function of (seed, epoch) only, so a
resumed run sees exactly the batches an uninterrupted run would.
"""

import functools
import threading
import queue

import numpy as np

from mmjax.data import schema


def pad_graph(nodes, senders, receivers, max_nodes, max_edges, where, name):
  """Pads one graph to the budgets.

  Returns nodes [max_nodes, F], senders/receivers [max_edges] int32,
  node_mask [max_nodes], edge_mask [max_edges]. Padded edges point at node 0
  with edge_mask 0 (the GCN weighs messages by the mask).
  Raises ValueError naming `where` if the graph exceeds a budget.
  """
  n, e = len(nodes), len(senders)
  if n > max_nodes or e > max_edges:
    raise ValueError(
        f"{where}: {name} graph has {n} nodes / {e} edges, over the budget "
        f"{max_nodes} / {max_edges} (raise dataset.budgets.{name})")
  out_nodes = np.zeros((max_nodes, nodes.shape[1]), np.float32)
  out_nodes[:n] = nodes
  s = np.zeros((max_edges,), np.int32)
  r = np.zeros((max_edges,), np.int32)
  s[:e], r[:e] = senders, receivers
  node_mask = np.zeros((max_nodes,), np.float32)
  node_mask[:n] = 1
  edge_mask = np.zeros((max_edges,), np.float32)
  edge_mask[:e] = 1
  return out_nodes, s, r, node_mask, edge_mask


def pad_example(ex, budgets):
  """One schema example -> dict of fixed-shape arrays (no batch axis)."""
  where = _name(ex)
  out = {}
  for m in schema.GRAPH_MODALITIES:
    b = budgets[m]
    (out[f"{m}_nodes"], out[f"{m}_senders"], out[f"{m}_receivers"],
     out[f"{m}_node_mask"], out[f"{m}_edge_mask"]) = pad_graph(
         np.asarray(ex[f"{m}_nodes"], np.float32), ex[f"{m}_senders"],
         ex[f"{m}_receivers"], b["nodes"], b["edges"], where, m)
  for m in schema.VECTOR_MODALITIES:
    out[m] = np.asarray(ex[m], np.float32)
  out["modality_mask"] = np.asarray(ex["modality_mask"], np.float32)
  out["label"] = np.asarray(ex["label"], np.int32)
  return out


def _name(ex):
  i = ex.get("id", "?")
  return f"example {i.decode() if isinstance(i, bytes) else i}"


class PaddedSplit:
  """A split held in memory as stacked padded arrays, {key: [N, ...]}.

  Loading pads each example once; batches are then fancy indexing.
  """

  def __init__(self, source, budgets, desc="split"):
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    n = len(source)
    if n == 0:
      raise ValueError(f"{desc}: the split is empty")
    first = pad_example(source[0], budgets)
    self.arrays = {k: np.empty((n,) + v.shape, v.dtype) for k, v in
                   first.items()}
    for i in tqdm(range(n), desc=f"loading {desc}", leave=False,
                  mininterval=2.0, disable=n < 2000):
      ex = first if i == 0 else pad_example(source[i], budgets)
      for k, v in ex.items():
        self.arrays[k][i] = v
    self.size = n

  def keep_subset(self, n, seed):
    """Keeps a fixed random subset of n examples (in their original order)."""
    keep = np.sort(np.random.default_rng([seed, 0x5B5E7]).permutation(
        self.size)[:n])
    self.arrays = {k: v[keep] for k, v in self.arrays.items()}
    self.size = n

  @property
  def labels(self):
    return self.arrays["label"]

  def take(self, idx):
    """Batch of the examples `idx` [B] (entries -1 are padding)."""
    return take_rows(self.arrays, idx)


def take_rows(arrays, idx, xp=np):
  """Batch {key: [B, ...]} of rows `idx` [B] of `arrays` {key: [N, ...]},
  with `sample_mask` [B] 0 where idx is -1 (padding; row 0 stands in).

  xp=np on host arrays; xp=jax.numpy inside a jitted step on arrays kept on
  the device (a device-resident split), where it is a gather.
  """
  valid = idx >= 0
  safe = xp.where(valid, idx, 0)
  batch = {k: v[safe] for k, v in arrays.items()}
  batch["sample_mask"] = valid.astype(xp.float32)
  return batch


@functools.lru_cache(maxsize=4)
def _epoch_order(seed, epoch, n):
  order = np.random.default_rng([seed, epoch, 0xDA7A]).permutation(n)
  order.setflags(write=False)  # shared by every step of the epoch
  return order


def epoch_order(seed, epoch, n):
  """The permutation of training example indices for `epoch` (read-only;
  computed once per epoch, not once per step)."""
  return _epoch_order(int(seed), int(epoch), int(n))


def train_batch_indices(seed, step, n, batch_size):
  """Indices [batch_size] of the global `step` (full batches, drop-last)."""
  steps_per_epoch = n // batch_size
  epoch, k = divmod(step, steps_per_epoch)
  return epoch_order(seed, epoch, n)[k * batch_size:(k + 1) * batch_size]


def eval_batch_indices(n, batch_size):
  """All of 0..n-1 in order, the last batch padded with -1."""
  steps = -(-n // batch_size)
  idx = np.full((steps * batch_size,), -1, np.int64)
  idx[:n] = np.arange(n)
  return idx.reshape(steps, batch_size)


def prefetch(iterable, size=2):
  """Runs `iterable` in a background thread, `size` items ahead, so host-side
  batching and device transfer overlap with the device's step."""
  q = queue.Queue(maxsize=size)
  sentinel = object()
  errors = []

  def worker():
    try:
      for item in iterable:
        q.put(item)
    except BaseException as e:  # pylint: disable=broad-except
      errors.append(e)
    q.put(sentinel)

  t = threading.Thread(target=worker, daemon=True)
  t.start()
  while True:
    item = q.get()
    if item is sentinel:
      if errors:
        raise errors[0]
      return
    yield item
