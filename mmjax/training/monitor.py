"""The overfitting monitor: how much better training scores than
validation, compared like with like.

Each epoch a fixed subset of the training split is scored in eval mode (no
dropout, no mixup, against its true labels), exactly as validation is, so
the gap measures generalisation and not the difference between train and
eval mode. A member is scored on the rows it trains on (outside its
k-fold fold, within its data subset).
"""

import numpy as np

from mmjax.training import evaluation


class OverfittingMonitor:
  """`config.monitor`: train_subset (rows scored), gap_notice and
  gap_warning (thresholds on the gap of the task's main metric)."""

  def __init__(self, evaluator, subset, members, cfg):
    """`members`: the member table (fold, subset [K])."""
    self.evaluator = evaluator
    self.subset = subset
    self.members = members
    self.notice, self.warning = cfg.gap_notice, cfg.gap_warning

  def check(self, params, batch_stats, val, active):
    """Scores the subset with these weights; `val`: validation metrics
    averaged over the members, `active` [K]: members still training.

    Returns (the log row: train metrics, `gap` of the main metric and
    `loss_gap` = val - train loss, averaged over active members; the
    progress message)."""
    task = self.evaluator.task
    per = self.evaluator.member_metrics(self.subset, params, batch_stats,
                                        members=self.members)
    on = [i for i, a in enumerate(active) if a] or [0]
    train = {k: float(np.mean([per[i][k] for i in on])) for k in per[0]}
    main = task.main_metric
    gap = evaluation.gap(train[main], val[main], task.main_mode)
    row = {**train, "gap": gap, "loss_gap": val["loss"] - train["loss"]}
    msg = f" | train (eval mode) {main} {train[main]:.4f}"
    if gap > self.warning:
      msg += f"  WARNING: train/val {main} gap {gap:.3f} (overfitting?)"
    elif gap > self.notice:
      msg += f"  note: train/val {main} gap {gap:.3f}"
    return row, msg


def gap_report(rows, notice, warning):
  """results.json's `overfitting` section from a run's metrics log rows
  (logs.read_metrics): the thresholds, and every epoch whose train/val gap
  (the monitor's `train_eval` rows) passed the notice or the warning one.
  Read from the log, so a resumed run reports its whole history."""
  epochs = []
  for r in rows:
    if r.get("split") != "train_eval" or "gap" not in r:
      continue
    gap = float(r["gap"])
    if gap > notice:
      epochs.append({"epoch": int(r["epoch"]) + 1, "gap": gap,
                     "level": "warning" if gap > warning else "notice"})
  return {"gap_notice": float(notice), "gap_warning": float(warning),
          "epochs": epochs,
          "warnings": sum(e["level"] == "warning" for e in epochs)}
