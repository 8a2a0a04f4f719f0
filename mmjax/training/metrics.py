"""Task-generic evaluation metrics, computed in numpy on gathered outputs."""

import numpy as np
from sklearn import metrics as skm


def classification_metrics(logits, labels, loss=None):
  """logits [N, C], labels [N] -> accuracy, precision, recall, f1, roc_auc.

  Binary tasks report the positive class (1); more classes are macro-averaged.
  """
  logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
  preds = logits.argmax(-1)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  binary = logits.shape[-1] == 2
  avg = "binary" if binary else "macro"
  out = {
      "accuracy": float((preds == labels).mean()),
      "precision": float(skm.precision_score(labels, preds, average=avg,
                                             zero_division=0)),
      "recall": float(skm.recall_score(labels, preds, average=avg,
                                       zero_division=0)),
      "f1": float(skm.f1_score(labels, preds, average=avg, zero_division=0)),
  }
  try:
    out["roc_auc"] = float(
        skm.roc_auc_score(labels, probs[:, 1]) if binary else
        skm.roc_auc_score(labels, probs, multi_class="ovr"))
  except ValueError:  # One class only in this split: AUC is undefined.
    out["roc_auc"] = float("nan")
  if loss is not None:
    out["loss"] = float(loss)
  return out


def regression_metrics(preds, targets, loss=None):
  """preds, targets [N] -> r2, mae, rmse, pearson."""
  p, t = np.asarray(preds, np.float64).ravel(), np.asarray(targets,
                                                           np.float64).ravel()
  out = {
      "r2": float(skm.r2_score(t, p)),
      "mae": float(np.abs(p - t).mean()),
      "rmse": float(np.sqrt(((p - t) ** 2).mean())),
      "pearson": float(np.corrcoef(p, t)[0, 1]) if p.std() > 0 else 0.0,
  }
  if loss is not None:
    out["loss"] = float(loss)
  return out


# The metric that early stopping and progress bars watch, per task.
MAIN_METRIC = {"classification": "accuracy", "regression": "r2"}
