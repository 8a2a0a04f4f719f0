"""Classification, binary or multi-class: outputs are logits [B, C]."""

import functools

import jax.numpy as jnp
import numpy as np

from mmjax.tasks.loss_terms import weighted_sum
from mmjax.training import losses
from mmjax.training import metrics as metrics_lib


class ClassificationTask:
  """Labels int [N] in [0, C); targets one-hot [B, C], smoothed on request.

  Loss terms: `focal` (loss.gamma, optional loss.focal_alpha >= 0) and
  `cross_entropy`. Members combine by averaging their logits.
  """
  name = "classification"
  main_metric, main_mode = "accuracy", "max"
  train_metric = "accuracy"
  label_dtype = np.int32

  def __init__(self, loss_cfg, num_outputs):
    self.num_classes = int(num_outputs)
    if self.num_classes < 2:
      raise ValueError(f"model.num_outputs: classification needs >= 2 "
                       f"classes, got {num_outputs}")
    alpha = loss_cfg.get("focal_alpha", -1.0)
    focal = functools.partial(losses.focal_loss, gamma=loss_cfg.get(
        "gamma", 2.0), alpha=None if alpha < 0 else alpha)
    self.loss = weighted_sum(
        loss_cfg.terms, {"focal": focal, "cross_entropy": losses.cross_entropy},
        self.name)

  def targets(self, labels, smoothing=0.0):
    """labels int [B] -> [B, C] (PyTorch's label-smoothing convention)."""
    return losses.soft_targets(labels, self.num_classes, smoothing)

  def train_metric_fn(self, outputs, labels):
    """Per-sample correctness [B] (1.0 = argmax equals the label)."""
    return (outputs.argmax(-1) == labels).astype(jnp.float32)

  def metrics(self, outputs, labels, loss=None):
    return metrics_lib.classification_metrics(outputs, labels, loss)

  def combine(self, outputs):
    """Members' logits [K, N, C] -> the ensemble's [N, C] (mean logit)."""
    return np.asarray(outputs).mean(0)

  def strata(self, labels, num_bins=None):
    """k-fold strata: the classes themselves."""
    del num_bins
    return np.asarray(labels)
