"""The optax chain of a recipe: clipping, AdamW with a schedule, and a guard
that skips non-finite updates.

Optional config keys (absent: the chain of the recipes that predate them,
with the same optimizer state and numerics):
  optimizer.lr_mults: ((regex, mult), ...) parameter groups whose lr is
    mult x the schedule; see `lr_mult_tree` and `check_lr_mults`.
  optimizer.weight_decay: a number, or a spec such as
    dict(start=0.01, end=0.10, shape="linear") scheduled by epoch
    (schedules.build_value_schedule).
"""

import math
import numbers
import re

import jax
import optax

from mmjax.training.schedules import build_schedule
from mmjax.training.schedules import build_value_schedule


def build_optimizer(cfg, steps_per_epoch):
  """Returns (optax.GradientTransformation, schedule); `schedule` is the base
  lr as a function of the step (a group's lr is its multiplier times it)."""
  o = cfg.optimizer
  schedule = build_schedule(cfg, steps_per_epoch)
  weight_decay = o.weight_decay
  if not isinstance(weight_decay, numbers.Number):
    # optax's decay, like torch's, is scaled by the (group's) lr; its step
    # counter lives in the optimizer state and skips what the lr's skips.
    weight_decay = build_value_schedule(weight_decay, cfg.num_epochs,
                                        steps_per_epoch,
                                        "optimizer.weight_decay")
  lr_mults = parse_lr_mults(o.get("lr_mults", ()))
  if lr_mults:
    adamw = _grouped_adamw(o, schedule, weight_decay, lr_mults)
  else:
    adamw = optax.adamw(schedule, b1=o.b1, b2=o.b2, eps=o.eps,
                        weight_decay=weight_decay)
  tx = optax.chain(
      optax.clip_by_global_norm(o.grad_clip) if o.grad_clip else
      optax.identity(),
      adamw)
  if o.get("skip_nonfinite", True):
    # The trainer stops the run after `max_nonfinite` consecutive skips;
    # optax itself must never let a non-finite update through.
    tx = optax.apply_if_finite(tx, max_consecutive_errors=2**30)
  return tx, schedule


def parse_lr_mults(lr_mults):
  """`optimizer.lr_mults` -> [(compiled regex, float multiplier), ...].

  Raises ValueError naming the key and entry for anything else than pairs of
  a valid regex and a finite multiplier >= 0.
  """
  if isinstance(lr_mults, (str, bytes)) or not hasattr(lr_mults, "__len__"):
    raise ValueError("optimizer.lr_mults: must be a tuple of (regex, "
                     f"multiplier) pairs, got {lr_mults!r}")
  parsed = []
  for i, entry in enumerate(lr_mults):
    if (isinstance(entry, (str, bytes)) or not hasattr(entry, "__len__")
        or len(entry) != 2 or not isinstance(entry[0], str)
        or isinstance(entry[1], bool)
        or not isinstance(entry[1], numbers.Real)):
      raise ValueError(f"optimizer.lr_mults: entry {i} must be (regex, "
                       f"multiplier), got {entry!r}")
    pattern, mult = entry
    if not math.isfinite(mult) or mult < 0:
      raise ValueError(f"optimizer.lr_mults: entry {i} multiplier must be "
                       f"finite and >= 0, got {mult!r}")
    try:
      parsed.append((re.compile(pattern), float(mult)))
    except re.error as e:
      raise ValueError(f"optimizer.lr_mults: entry {i} pattern '{pattern}' "
                       f"is not a regex ({e})") from None
  return parsed


def param_path(key_path):
  """A jax key path -> 'encoder/conv0/kernel' (dict keys, attributes and
  sequence indices joined by '/')."""
  parts = []
  for k in key_path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return "/".join(parts)


def lr_mult_tree(parsed, params):
  """The lr multiplier of every parameter: a tree like `params` of floats.

  parsed: `parse_lr_mults(optimizer.lr_mults)`. A parameter's path
  (`param_path`, relative to the tree given to tx.init, i.e. without a
  leading 'params/') takes the multiplier of the first pattern that matches
  it whole (re.fullmatch, as in big_vision: 'encoder/.*', not 'encoder'),
  and 1.0 when none does. A pattern that matches no parameter raises
  ValueError: it is a typo or a renamed module, never intended.
  """
  used = [False] * len(parsed)

  def mult_of(key_path, _):
    path = param_path(key_path)
    hits = [i for i, (pattern, _) in enumerate(parsed)
            if pattern.fullmatch(path)]
    for i in hits:
      used[i] = True
    return parsed[hits[0]][1] if hits else 1.0

  tree = jax.tree_util.tree_map_with_path(mult_of, params)
  for (pattern, _), hit in zip(parsed, used):
    if not hit:
      raise ValueError(f"optimizer.lr_mults: pattern '{pattern.pattern}' "
                       "matches no parameter")
  return tree


def check_lr_mults(cfg, params):
  """Raises ValueError when `optimizer.lr_mults` is malformed or one of its
  patterns matches no parameter of `params` (the tree given to tx.init).

  tx.init raises the same error; this lets the trainer report it before
  compiling. Returns {parameter path: lr multiplier}, for logging.
  """
  tree = lr_mult_tree(parse_lr_mults(cfg.optimizer.get("lr_mults", ())),
                      params)
  return {param_path(k): m
          for k, m in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _group_label(mult):
  # Orbax names checkpoint entries by their tree path joined with '.', so
  # the label carries no '.'.
  return "x" + repr(float(mult)).replace(".", "p")


def _grouped_adamw(o, schedule, weight_decay, lr_mults):
  """One AdamW per distinct multiplier m (and 1.0 for the unmatched), with
  learning rate m * schedule(step): torch.optim.AdamW with a param group of
  lr base * m whose scheduler scales every group by the same factor."""
  mults = sorted({m for _, m in lr_mults} | {1.0})

  def adamw(m):
    lr = schedule if m == 1.0 else (lambda step: m * schedule(step))
    return optax.adamw(lr, b1=o.b1, b2=o.b2, eps=o.eps,
                       weight_decay=weight_decay)

  def labels(params):
    return jax.tree.map(_group_label, lr_mult_tree(lr_mults, params))

  return optax.multi_transform({_group_label(m): adamw(m) for m in mults},
                               labels)
