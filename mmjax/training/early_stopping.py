"""Early stopping of one member on any validation metric.

`config.early_stopping`: metric (a key of the task's metrics, or 'loss'),
mode ('min' or 'max'), patience (epochs without an improvement larger than
min_delta), restore_best (evaluate the best epoch's weights at the end).
"""

import math

MODES = ("min", "max")


class EarlyStopping:
  """Tracks one member's best value; `update(value)` once per epoch.

  The state is a JSON-able dict (`state`), saved in checkpoints, so a
  resumed run stops exactly where an uninterrupted one does.
  """

  def __init__(self, mode="min", patience=10, min_delta=0.0, state=None):
    if mode not in MODES:
      raise ValueError(f"early_stopping.mode: '{mode}' is not min or max")
    self.sign = 1.0 if mode == "min" else -1.0
    self.patience = int(patience)
    self.min_delta = float(min_delta)
    self.state = dict(state) if state else {
        "best": None, "best_step": 0, "best_epoch": 0, "bad_epochs": 0,
        "stopped": False}

  @property
  def stopped(self):
    return self.state["stopped"]

  def update(self, value, step, epoch):
    """Returns (improved, stop): whether `value` is the best so far (by more
    than min_delta), and whether this member should stop now. A NaN value
    never improves."""
    s = self.state
    if s["stopped"]:
      return False, True
    value = float(value)
    improved = math.isfinite(value) and (
        s["best"] is None or
        self.sign * value < self.sign * s["best"] - self.min_delta)
    if improved:
      s.update(best=value, best_step=int(step), best_epoch=int(epoch),
               bad_epochs=0)
    else:
      s["bad_epochs"] += 1
      s["stopped"] = s["bad_epochs"] >= self.patience
    return improved, s["stopped"]


def for_members(es_cfg, k, states=None):
  """K stoppers from `config.early_stopping` (and their saved states)."""
  states = states or [None] * k
  return [EarlyStopping(es_cfg.get("mode", "min"), es_cfg.patience,
                        es_cfg.min_delta, st) for st in states]
