"""Learning-rate schedules built from optax pieces, indexed by optimizer step."""

import optax


def warmup_cosine(base_lr, warmup_epochs, num_epochs, steps_per_epoch,
                  eta_min=0.0, per_epoch=True):
  """Seed 000's schedule: linear warmup then cosine annealing.

  Per epoch e (as in the seed, the lr is constant inside an epoch):
    e < W:  base * (e + 1) / W
    else:   eta_min + (base - eta_min) * (1 + cos(pi * (e - W) / (E - W))) / 2
  With per_epoch=False the same curve is followed step by step.
  """
  warm = max(int(warmup_epochs), 1)
  decay = max(int(num_epochs) - warm, 1)
  by_epoch = optax.join_schedules(
      [optax.linear_schedule(base_lr / warm, base_lr, transition_steps=warm - 1)
       if warm > 1 else optax.constant_schedule(base_lr),
       optax.cosine_decay_schedule(base_lr, decay_steps=decay,
                                   alpha=eta_min / base_lr)],
      boundaries=[warm])
  spe = max(int(steps_per_epoch), 1)
  if per_epoch:
    return lambda step: by_epoch(step // spe)
  return lambda step: by_epoch(step / spe)


def cyclic_cosine(base_lr, warmup_epochs, cycle_epochs, num_epochs,
                  steps_per_epoch, min_lr=0.0, decay=0.8):
  """Seed 001's schedule: linear warmup from min_lr, then cosine cycles of
  `cycle_epochs` whose peak is `decay` times the previous peak."""
  spe = max(int(steps_per_epoch), 1)
  warm = int(warmup_epochs)
  n_cycles = max(1, -(-(int(num_epochs) - warm) // int(cycle_epochs)))
  pieces = [optax.linear_schedule(min_lr, base_lr, max(warm, 1))] if warm else []
  for c in range(n_cycles):
    peak = base_lr * decay ** c
    pieces.append(optax.cosine_decay_schedule(
        peak, decay_steps=cycle_epochs, alpha=min_lr / peak if peak else 0.0))
  bounds = [warm + c * cycle_epochs for c in range(n_cycles)]
  if not warm:
    bounds = bounds[1:]
  by_epoch = optax.join_schedules(pieces, bounds)
  return lambda step: by_epoch(step // spe)


def build_schedule(cfg, steps_per_epoch):
  """`config.schedule` -> optax schedule (a function of the step)."""
  s = cfg.schedule
  if s.name == "warmup_cosine":
    return warmup_cosine(cfg.learning_rate, s.warmup_epochs, cfg.num_epochs,
                         steps_per_epoch, s.get("eta_min", 0.0),
                         s.get("per_epoch", True))
  if s.name == "cyclic_cosine":
    return cyclic_cosine(cfg.learning_rate, s.warmup_epochs, s.cycle_epochs,
                         cfg.num_epochs, steps_per_epoch, s.get("min_lr", 0.0),
                         s.get("cycle_decay", 0.8))
  if s.name == "constant":
    return optax.constant_schedule(cfg.learning_rate)
  raise ValueError(f"schedule.name: unknown schedule '{s.name}' "
                   "(known: warmup_cosine, cyclic_cosine, constant)")
