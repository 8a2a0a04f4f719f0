"""Classification, binary or multi-class: outputs are logits [B, C]."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmjax.tasks.loss_terms import weighted_sum
from mmjax.training import losses
from mmjax.training import metrics as metrics_lib


class ClassificationTask:
  """Labels int [N] in [0, C); targets one-hot [B, C], smoothed on request.

  Loss terms: `focal` (loss.gamma, optional loss.focal_alpha >= 0) and
  `cross_entropy`. Members combine by averaging their logits.

  With loss.confidence_weight > 0 the outputs carry a confidence logit as
  column C (models.multimodal's confidence head), trained by that weight
  times the binary cross-entropy against whether the classifier's argmax is
  right, and scored by metrics.confidence_metrics.
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
    main = weighted_sum(
        loss_cfg.terms, {"focal": focal, "cross_entropy": losses.cross_entropy},
        self.name)
    self.confidence_weight = float(loss_cfg.get("confidence_weight", 0.0))
    c, w = self.num_classes, self.confidence_weight
    if not w:
      self.loss = main
    else:
      def loss(outputs, targets):
        logits = outputs[:, :c]
        right = jax.lax.stop_gradient(
            (logits.argmax(-1) == targets.argmax(-1)).astype(jnp.float32))
        return main(logits, targets) + w * optax.sigmoid_binary_cross_entropy(
            outputs[:, c], right)
      self.loss = loss

  def targets(self, labels, smoothing=0.0):
    """labels int [B] -> [B, C] (PyTorch's label-smoothing convention)."""
    return losses.soft_targets(labels, self.num_classes, smoothing)

  def train_metric_fn(self, outputs, labels):
    """Per-sample correctness [B] (1.0 = argmax equals the label)."""
    return (outputs[:, :self.num_classes].argmax(-1) == labels).astype(
        jnp.float32)

  def metrics(self, outputs, labels, loss=None):
    outputs = np.asarray(outputs)
    out = metrics_lib.classification_metrics(
        outputs[:, :self.num_classes], labels, loss)
    if self.confidence_weight:
      out.update(metrics_lib.confidence_metrics(
          outputs[:, :self.num_classes], outputs[:, self.num_classes],
          labels))
    return out

  def combine(self, outputs):
    """Members' logits [K, N, C] -> the ensemble's [N, C] (mean logit)."""
    return np.asarray(outputs).mean(0)

  def strata(self, labels, num_bins=None):
    """k-fold strata: the classes themselves."""
    del num_bins
    return np.asarray(labels)
