"""Tasks: what a recipe predicts, how it is scored, and how members combine.

A task owns everything that depends on the kind of target, so the model,
the train step and the trainer stay task-agnostic (scenic's classification
and regression base models play this part there):

  targets(labels, smoothing)     labels [B] -> targets [B, C]
  loss(outputs, targets)         outputs [B, C] -> weighted sum of the
                                 config's named loss terms, per sample [B]
  train_metric                   the metric the train step computes on the
                                 device, per sample (name, fn)
  metrics(outputs, labels)       host-side metrics of one split
  combine(outputs)               [K, N, C] members -> [N, C] ensemble
  strata(labels)                 int [N] groups for stratified k-fold
  main_metric, main_mode         what progress and model selection show

`config.task` names the task; `config.loss.terms` weighs its loss terms.
"""

from mmjax.tasks.classification import ClassificationTask
from mmjax.tasks.regression import RegressionTask

TASKS = {"classification": ClassificationTask, "regression": RegressionTask}


def build_task(config):
  """The task of a run from `config.task`, `config.loss` and
  `config.model.num_outputs`; raises ValueError naming a bad key."""
  name = config.get("task", "classification")
  if name not in TASKS:
    raise ValueError(f"task: unknown task '{name}' "
                     f"(known: {', '.join(TASKS)})")
  return TASKS[name](config.loss, config.model.num_outputs)
