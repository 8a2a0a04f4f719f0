"""Learning-rate schedules built from optax pieces, indexed by optimizer step,
and schedules of other hyperparameters (label smoothing, weight decay)."""

import jax.numpy as jnp
import optax


def warmup_cosine(base_lr, warmup_epochs, num_epochs, steps_per_epoch,
                  eta_min=0.0, per_epoch=True):
  """Reference recipe 000's schedule: linear warmup then cosine annealing.

  Per epoch e (as in the reference recipe, the lr is constant inside an epoch):
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
  """Reference recipe 001's schedule: linear warmup from min_lr, then cosine cycles of
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


def _restart_position(k, t_0, t_mult):
  """Epochs since the last restart and the current cycle's length, both int
  arrays shaped like `k` (epochs since the end of warmup, >= 0)."""
  if t_mult == 1:
    return k % t_0, jnp.full_like(k, t_0)
  # Cycle c starts at t_0 * (t_mult**c - 1) / (t_mult - 1); counting in ints
  # keeps the restart epochs exact where a log() would round.
  starts, length = [0], t_0
  while starts[-1] + length < 2**31 - 1:  # The int32 step range.
    starts.append(starts[-1] + length)
    length *= t_mult
  lengths = [min(t_0 * t_mult**c, 2**31 - 1) for c in range(len(starts))]
  c = jnp.searchsorted(jnp.asarray(starts), k, side="right") - 1
  return k - jnp.asarray(starts)[c], jnp.asarray(lengths)[c]


def warmup_cosine_restarts(base_lr, warmup_epochs, t_0, t_mult, eta_min,
                           steps_per_epoch, warmup_start_factor=None):
  """Linear warmup, then cosine annealing with warm restarts (SGDR).

  The lr of epoch e (constant inside the epoch; step // steps_per_epoch = e)
  is torch's per-epoch
    SequentialLR([LinearLR(start_factor=s, end_factor=1, total_iters=W),
                  CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)],
                 milestones=[W])
  with W = warmup_epochs and s = warmup_start_factor (default 1 / W):
    e < W:  base * (s + (1 - s) * e / W)
    else:   eta_min + (base - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
  where k = e - W counts epochs since warmup: the first cycle (T_cur = 0,
  the full base lr) starts at epoch W and lasts t_0 epochs, each later one
  t_mult times the previous. W = 0: no warmup. eta_min is absolute here;
  parameter groups (optimizer.lr_mults) scale the whole curve, eta_min too.
  Returns step -> lr (float32).
  """
  warm, spe = int(warmup_epochs), max(int(steps_per_epoch), 1)
  s = (1.0 / max(warm, 1) if warmup_start_factor is None
       else warmup_start_factor)

  def by_epoch(e):
    e = jnp.asarray(e, jnp.int32)
    t_cur, t_i = _restart_position(jnp.maximum(e - warm, 0), t_0, t_mult)
    cos = eta_min + (base_lr - eta_min) * 0.5 * (
        1 + jnp.cos(jnp.pi * t_cur / t_i))
    if not warm:
      return cos
    return jnp.where(e < warm, base_lr * (s + (1 - s) * e / warm), cos)

  return lambda step: by_epoch(jnp.asarray(step) // spe)


def _integer(s, key, low):
  v = s.get(key)
  if isinstance(v, bool) or not isinstance(v, int) or v < low:
    raise ValueError(f"schedule.{key}: must be an integer >= {low}, got {v!r}")
  return v


def _restarts_from_config(cfg, steps_per_epoch):
  s = cfg.schedule
  warm = _integer(s, "warmup_epochs", 0)
  t_0, t_mult = _integer(s, "t_0", 1), _integer(s, "t_mult", 1)
  eta_min = s.get("eta_min", 0.0)
  if not isinstance(eta_min, (int, float)) or eta_min < 0:
    raise ValueError(f"schedule.eta_min: must be a number >= 0, got "
                     f"{eta_min!r}")
  start = s.get("warmup_start_factor", None)
  if start is not None and not (isinstance(start, (int, float))
                                and 0 < start <= 1):
    raise ValueError("schedule.warmup_start_factor: must be in (0, 1], got "
                     f"{start!r}")
  return warmup_cosine_restarts(cfg.learning_rate, warm, t_0, t_mult,
                                float(eta_min), steps_per_epoch, start)


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
  if s.name == "warmup_cosine_restarts":
    return _restarts_from_config(cfg, steps_per_epoch)
  if s.name == "constant":
    return optax.constant_schedule(cfg.learning_rate)
  raise ValueError(f"schedule.name: unknown schedule '{s.name}' (known: "
                   "warmup_cosine, cyclic_cosine, warmup_cosine_restarts, "
                   "constant)")


VALUE_SHAPES = ("linear", "cosine")


def build_value_schedule(spec, num_epochs, steps_per_epoch, name="value"):
  """A hyperparameter other than the lr (label smoothing, weight decay) as a
  function of the optimizer step.

  spec: a number (constant; returned as a schedule of that python float) or
    a dict / ConfigDict `dict(start=0.15, end=0.045, shape="linear")`.
    By epoch e = step // steps_per_epoch, constant inside an epoch, with
    f = min(e / (num_epochs - 1), 1) (f = 0 for a single epoch):
      linear:  start + (end - start) * f
      cosine:  end + (start - end) * (1 + cos(pi * f)) / 2
    so epoch 0 uses `start` and the last epoch (num_epochs - 1) uses `end`.
  name: the config key, for the error messages.
  Returns step -> value (float32 for a spec).
  """
  if isinstance(spec, (int, float)) and not isinstance(spec, bool):
    return optax.constant_schedule(spec)
  if not hasattr(spec, "keys"):
    raise ValueError(f"{name}: must be a number or dict(start=, end=, "
                     f"shape=), got {spec!r}")
  unknown = sorted(set(spec.keys()) - {"start", "end", "shape"})
  if unknown:
    raise ValueError(f"{name}: unknown keys {unknown} (known: start, end, "
                     "shape)")
  for key in ("start", "end"):
    v = spec.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
      raise ValueError(f"{name}.{key}: must be a number, got {v!r}")
  shape = spec.get("shape", "linear")
  if shape not in VALUE_SHAPES:
    raise ValueError(f"{name}.shape: unknown shape '{shape}' (known: "
                     f"{', '.join(VALUE_SHAPES)})")
  start, end = float(spec["start"]), float(spec["end"])
  last, spe = max(int(num_epochs) - 1, 1), max(int(steps_per_epoch), 1)

  def by_epoch(e):
    f = jnp.minimum(jnp.asarray(e, jnp.float32) / last, 1.0)
    if shape == "linear":
      return start + (end - start) * f
    return end + (start - end) * 0.5 * (1 + jnp.cos(jnp.pi * f))

  return lambda step: by_epoch(jnp.asarray(step) // spe)
