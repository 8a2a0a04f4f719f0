"""A task's loss: a weighted sum of named per-sample terms from the config.

  config.loss.terms = {"mse": 1.0, "mae": 0.5, "huber": 0.3}

Each term maps (outputs [B, C], targets [B, C]) -> [B]; the sum is averaged
over real samples by the train step (`losses.masked_mean`).
"""

from typing import Callable, Mapping


def weighted_sum(terms: Mapping[str, float], known: Mapping[str, Callable],
                 task: str) -> Callable:
  """(outputs, targets) -> per-sample [B] sum of weight x term.

  A weight of exactly 1.0 is not multiplied in, so a one-term loss computes
  bitwise what the term alone does.
  """
  if not terms:
    raise ValueError(f"loss.terms: give at least one {task} loss term "
                     f"(known: {', '.join(known)})")
  for name, w in terms.items():
    if name not in known:
      raise ValueError(f"loss.terms.{name}: not a {task} loss term "
                       f"(known: {', '.join(known)})")
    if not isinstance(w, (int, float)) or w < 0:
      raise ValueError(f"loss.terms.{name}: the weight must be a number "
                       f">= 0, got {w!r}")
  chosen = [(known[n], float(w)) for n, w in terms.items() if w]

  def loss(outputs, targets):
    total = None
    for fn, w in chosen:
      v = fn(outputs, targets)
      v = v if w == 1.0 else w * v
      total = v if total is None else total + v
    return total

  return loss
