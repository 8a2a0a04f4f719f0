"""Regression of D continuous targets: outputs are predictions [B, D]."""

import functools

import jax.numpy as jnp
import numpy as np

from mmjax.data import splits
from mmjax.tasks.loss_terms import weighted_sum
from mmjax.training import losses
from mmjax.training import metrics as metrics_lib


class RegressionTask:
  """Targets float [N] (D = 1) or [N, D], in the data's units.

  Loss terms: `mse`, `mae`, `huber` (loss.huber_delta, default 1.0), each
  per sample summed over the D outputs. Members combine by averaging their
  predictions.
  """
  name = "regression"
  main_metric, main_mode = "r2", "max"
  train_metric = "mae"
  label_dtype = np.float32

  def __init__(self, loss_cfg, num_outputs):
    self.num_outputs = int(num_outputs)
    if self.num_outputs < 1:
      raise ValueError(f"model.num_outputs: regression needs >= 1 output, "
                       f"got {num_outputs}")
    huber = functools.partial(losses.huber,
                              delta=loss_cfg.get("huber_delta", 1.0))
    self.loss = weighted_sum(
        loss_cfg.terms, {"mse": losses.squared_error,
                         "mae": losses.absolute_error, "huber": huber},
        self.name)

  def targets(self, labels, smoothing=0.0):
    """labels [B] or [B, D] -> [B, D] float32 (smoothing does not apply)."""
    del smoothing
    t = jnp.asarray(labels, jnp.float32)
    return t.reshape(t.shape[0], self.num_outputs)

  def train_metric_fn(self, outputs, labels):
    """Per-sample absolute error [B], averaged over the D outputs."""
    return jnp.abs(outputs - self.targets(labels)).mean(-1)

  def metrics(self, outputs, labels, loss=None):
    return metrics_lib.regression_metrics(outputs, labels, loss)

  def combine(self, outputs):
    """Members' predictions [K, N, D] -> the ensemble's [N, D] (mean)."""
    return np.asarray(outputs).mean(0)

  def strata(self, labels, num_bins=5):
    """k-fold strata: quantile bins of the (first) target, so every fold
    spans the range of the target."""
    y = np.asarray(labels, np.float64).reshape(len(labels), -1)[:, 0]
    return splits.quantile_strata(y, num_bins)
