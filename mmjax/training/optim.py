"""The optax chain of a recipe: clipping, AdamW with a schedule, and a guard
that skips non-finite updates."""

import optax

from mmjax.training.schedules import build_schedule


def build_optimizer(cfg, steps_per_epoch):
  """Returns (optax.GradientTransformation, schedule)."""
  o = cfg.optimizer
  schedule = build_schedule(cfg, steps_per_epoch)
  tx = optax.chain(
      optax.clip_by_global_norm(o.grad_clip) if o.grad_clip else
      optax.identity(),
      optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps,
                  weight_decay=o.weight_decay))
  if o.get("skip_nonfinite", True):
    # The trainer stops the run after `max_nonfinite` consecutive skips;
    # optax itself must never let a non-finite update through.
    tx = optax.apply_if_finite(tx, max_consecutive_errors=2**30)
  return tx, schedule
