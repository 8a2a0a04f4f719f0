"""Orbax checkpoints of a run: the train state, the best weights so far, and
the host-side bookkeeping (early stopping, epoch history) as JSON.

Orbax writes each checkpoint into a temporary folder and renames it when it
is complete, so a checkpoint interrupted mid-write is never restored.
"""

import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from mmjax.errors import UserError
from mmjax.training.optim import param_path


class Checkpointer:
  """Saves and restores {state, best, meta} under `<workdir>/checkpoints`."""

  def __init__(self, workdir, max_to_keep=2):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            enable_async_checkpointing=False))

  def latest_step(self):
    return self.manager.latest_step()

  def save(self, step, state, best, meta):
    """Writes checkpoint `step`; a failed write (full disk, lost
    permissions) raises UserError and leaves the last complete one."""
    try:
      self.manager.save(
          int(step),
          args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  best=ocp.args.StandardSave(best),
                                  meta=ocp.args.JsonSave(meta)),
          force=True)
      self.manager.wait_until_finished()
    except (OSError, RuntimeError, ValueError) as e:
      raise UserError(
          f"{self.directory}: cannot write checkpoint {step} "
          f"({_first_line(e)}); the last complete checkpoint "
          f"({self.latest_step()}) is kept") from e

  def restore(self, step, state_like, best_like):
    """Restores into the structure (and shardings) of the given templates.

    Raises UserError: 'does not fit this config's model' when the stored
    arrays' paths or shapes differ from the templates' (naming the first
    difference), 'cannot be read' when its files are missing or damaged.
    """
    where = f"{self.directory}: checkpoint {step}"
    for item, like in (("state", state_like), ("best", best_like)):
      path = os.path.join(self.directory, str(step), item)
      try:
        stored = ocp.StandardCheckpointer().metadata(path).item_metadata
        stored = {param_path(p): tuple(m.shape) for p, m in
                  jax.tree_util.tree_leaves_with_path(dict(stored))}
      except Exception as e:  # pylint: disable=broad-except
        raise UserError(f"{where} cannot be read ({_first_line(e)}); delete "
                        "it to resume from the one before, or use a new "
                        "--workdir") from e
      diff = _first_mismatch(stored, like, item)
      if diff:
        raise UserError(f"{where} does not fit this config's model ({diff}); "
                        "use a new --workdir") from None
    abstract = lambda t: jax.tree.map(ocp.utils.to_shape_dtype_struct, t)
    try:
      got = self.manager.restore(
          int(step),
          args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract(state_like)),
              best=ocp.args.StandardRestore(abstract(best_like)),
              meta=ocp.args.JsonRestore()))
    except Exception as e:  # pylint: disable=broad-except
      raise UserError(f"{where} cannot be read ({_first_line(e)}); delete "
                      "it to resume from the one before, or use a new "
                      "--workdir") from e
    return got.state, got.best, got.meta

  def close(self):
    self.manager.close()


def _first_mismatch(stored, like, item):
  """The first array path whose presence or shape differs, as words."""
  want = {param_path(p): tuple(np.shape(x)) for p, x in
          jax.tree_util.tree_leaves_with_path(like)}
  # Parameters first: their paths name the layer that changed.
  for key in sorted(set(stored) | set(want), key=lambda k: ("opt_state" in k,
                                                            k)):
    if key not in stored:
      return f"{item}/{key} is not in the checkpoint"
    if key not in want:
      return f"{item}/{key} is in the checkpoint, not in the model"
    if stored[key] != want[key]:
      return (f"{item}/{key} has shape {stored[key]} there, {want[key]} "
              "in the model")
  return None


def _first_line(e):
  text = str(e).strip()
  first = text.splitlines()[0][:200] if text else ""
  return f"{type(e).__name__}: {first}"


def final_params(workdir, item="state"):
  """The parameters in the run's last checkpoint, as a nested numpy dict:
  of the last train state (item='state') or of the best weights ('best').

  Restores onto this process's first device, whatever topology wrote it.
  Returns (params, step).
  """
  variables, step = final_variables(workdir, item)
  return variables["params"], step


def final_variables(workdir, item="best"):
  """Every tree of `item` in the run's last checkpoint (params and
  batch_stats, stacked over the members [K, ...]) as nested numpy dicts,
  restored onto this process's first device. Returns (variables, step)."""
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  mngr = ocp.CheckpointManager(directory)
  step = mngr.latest_step()
  mngr.close()
  path = os.path.join(directory, str(step), item)
  ckptr = ocp.StandardCheckpointer()
  meta = ckptr.metadata(path).item_metadata
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
      dict(meta))
  state = ckptr.restore(path, target)
  return jax.tree.map(np.asarray, dict(state)), step
