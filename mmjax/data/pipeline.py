"""Padding examples to fixed budgets and serving batches.

Every batch of a run has the same shapes (each modality padded as its kind
says, `mmjax.data.modalities`; the last eval batch padded with `sample_mask`
0), so the train step compiles
once. The order of training batches is a function of (seed, epoch) only, so a
resumed run sees exactly the batches an uninterrupted run would.
"""

import functools
import threading
import queue

import numpy as np

from mmjax.data import modalities


LABEL_DTYPES = {"classification": np.int32, "regression": np.float32}


def pad_example(ex, spec, budgets):
  """One example -> dict of fixed-shape arrays (no batch axis), padded by
  the kinds `spec` (datasets.DatasetSpec) declares for its modalities.

  A dataset without `modality_mask` has every modality present.
  """
  where = _name(ex)
  out = {}
  for name, mod in spec.modalities.items():
    out.update(modalities.kind_of(mod).pad(ex, name, mod, budgets.get(name),
                                           where))
  if "modality_mask" in ex:
    out["modality_mask"] = np.asarray(ex["modality_mask"], np.float32)
  else:
    out["modality_mask"] = np.ones((len(spec.modalities),), np.float32)
  out["label"] = np.asarray(ex["label"], LABEL_DTYPES[spec.task])
  return out


def _text(v):
  return v.decode() if isinstance(v, bytes) else str(v)


def _name(ex):
  i = ex.get("id", "?")
  return f"example {i.decode() if isinstance(i, bytes) else i}"


class PaddedSplit:
  """A split held in memory as stacked padded arrays, {key: [N, ...]}.

  Loading pads each example once; batches are then fancy indexing.
  `groups` {key: str [N]} holds the values of the spec's metric-group keys
  (host-side only: they never enter a batch).
  """

  def __init__(self, source, spec, budgets, desc="split"):
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    n = len(source)
    if n == 0:
      raise ValueError(f"{desc}: the split is empty")
    raw0 = source[0]
    first = pad_example(raw0, spec, budgets)
    self.arrays = {k: np.empty((n,) + v.shape, v.dtype) for k, v in
                   first.items()}
    keys = [k for k, _ in spec.metric_groups]
    groups = {k: [] for k in keys}
    for i in tqdm(range(n), desc=f"loading {desc}", leave=False,
                  mininterval=2.0, disable=n < 2000):
      raw = raw0 if i == 0 else source[i]
      ex = first if i == 0 else pad_example(raw, spec, budgets)
      for k, v in ex.items():
        self.arrays[k][i] = v
      for k in keys:
        groups[k].append(_text(raw[k]))
    self.groups = {k: np.asarray(v) for k, v in groups.items()}
    self.size = n

  def keep_subset(self, n, seed):
    """Keeps a fixed random subset of n examples (in their original order)."""
    keep = np.sort(np.random.default_rng([seed, 0x5B5E7]).permutation(
        self.size)[:n])
    self.arrays = {k: v[keep] for k, v in self.arrays.items()}
    self.groups = {k: v[keep] for k, v in self.groups.items()}
    self.size = n

  def subset(self, n, seed):
    """A new split of a fixed random subset of min(n, size) examples (in
    their original order), sharing nothing mutable with this one."""
    keep = np.sort(np.random.default_rng([seed, 0x7E57]).permutation(
        self.size)[:n])
    out = object.__new__(PaddedSplit)
    out.arrays = {k: v[keep] for k, v in self.arrays.items()}
    out.groups = {k: v[keep] for k, v in self.groups.items()}
    out.size = len(keep)
    return out

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
  batching and device transfer overlap with the device's step.

  Closing the returned generator (or dropping it) stops the thread, which
  then releases `iterable` and what it holds (a trainer, its device-resident
  split): a loop that ends early, e.g. on early stopping, leaks nothing.
  """
  q = queue.Queue(maxsize=size)
  stop = threading.Event()
  sentinel = object()
  errors = []

  def put(item):
    while not stop.is_set():
      try:
        q.put(item, timeout=0.05)
        return True
      except queue.Full:
        continue
    return False

  def worker(it):
    try:
      for item in it:
        if not put(item):
          break
    except BaseException as e:  # pylint: disable=broad-except
      errors.append(e)
    finally:
      close = getattr(it, "close", None)
      if close is not None:
        close()
    put(sentinel)

  t = threading.Thread(target=worker, args=(iter(iterable),), daemon=True)
  del iterable
  t.start()
  try:
    while True:
      item = q.get()
      if item is sentinel:
        if errors:
          raise errors[0]
        return
      yield item
  finally:
    stop.set()
    t.join()
