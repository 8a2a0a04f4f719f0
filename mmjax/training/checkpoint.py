"""Orbax checkpoints of a run: the train state, the best weights so far, and
the host-side bookkeeping (early stopping, epoch history) as JSON.

Orbax writes each checkpoint into a temporary folder and renames it when it
is complete, so a checkpoint interrupted mid-write is never restored.
"""

import os

import jax
import orbax.checkpoint as ocp

from mmjax.errors import UserError


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
      first = (str(e).strip().splitlines() or [""])[0][:200]
      raise UserError(
          f"{self.directory}: cannot write checkpoint {step} "
          f"({type(e).__name__}: {first}); the last complete checkpoint "
          f"({self.latest_step()}) is kept") from e

  def restore(self, step, state_like, best_like):
    """Restores into the structure (and shardings) of the given templates."""
    abstract = lambda t: jax.tree.map(ocp.utils.to_shape_dtype_struct, t)
    got = self.manager.restore(
        int(step),
        args=ocp.args.Composite(state=ocp.args.StandardRestore(
            abstract(state_like)),
                                best=ocp.args.StandardRestore(
                                    abstract(best_like)),
                                meta=ocp.args.JsonRestore()))
    return got.state, got.best, got.meta

  def close(self):
    self.manager.close()
