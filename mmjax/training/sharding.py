"""Data parallelism over every device of every host: one mesh axis `data`
that the batch is split along; parameters and optimizer state replicated.

This is what pmap compiles to, written as jit with shardings.
"""

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P


def make_mesh(member_parallel=1):
  """A (member, data) mesh over all devices.

  The batch is split along `data`; stacked ensemble members along `member`
  (member_parallel devices; 1 = every device holds every member). Auto axis
  types: the jraph segment sums in the model are left to the compiler.
  """
  n = jax.device_count()
  if n % member_parallel:
    from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError(f"member_parallel={member_parallel} does not divide the "
                    f"{n} devices")
  auto = jax.sharding.AxisType.Auto
  return jax.make_mesh((member_parallel, n // member_parallel),
                       ("member", "data"), axis_types=(auto, auto))


def replicated(mesh):
  return NamedSharding(mesh, P())


def batch_sharding(mesh):
  return NamedSharding(mesh, P("data"))


def member_sharding(mesh):
  """Leading member axis split over `member`, replicated over `data`."""
  return NamedSharding(mesh, P("member"))


def check_batch_size(batch_size, mesh, key="batch_size"):
  n = mesh.shape["data"]
  if batch_size % n:
    from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError(f"{key}={batch_size} is not divisible by the {n} devices")


def put_batch(batch, mesh):
  """Host numpy batch (this process's share) -> global arrays sharded on
  `data`. With one process the share is the whole batch."""
  sharding = batch_sharding(mesh)
  if jax.process_count() == 1:
    return jax.device_put(batch, sharding)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), batch)


def put_replicated(tree, mesh):
  """Host numpy arrays that every process holds in full -> global arrays
  replicated on every device (e.g. a device-resident split)."""
  rep = replicated(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(x.shape, rep, lambda i: x[i]),
      tree)


def put_indices(idx, mesh):
  """A global batch's example indices [B] (every process computes all of
  them) -> int32 global array sharded on `data`, each process putting its
  own rows: what a step on a device-resident split is fed."""
  return put_batch(idx[process_slice(len(idx))].astype(np.int32), mesh)


def process_slice(batch_size):
  """The rows of a global batch that this process feeds."""
  per = batch_size // jax.process_count()
  start = jax.process_index() * per
  return slice(start, start + per)


def to_host(x):
  """Fetches a (possibly sharded, possibly multi-host) array to numpy."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    x = multihost_utils.process_allgather(x, tiled=True)
  return np.asarray(jax.device_get(x))
