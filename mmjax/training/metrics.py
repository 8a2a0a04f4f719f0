"""Task-generic evaluation metrics, computed in numpy on gathered outputs."""

import numpy as np
from scipy import stats
from sklearn import metrics as skm


def classification_metrics(logits, labels, loss=None):
  """logits [N, C], labels [N] -> accuracy, balanced_accuracy, precision,
  recall, f1, roc_auc (and loss if given).

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
      "balanced_accuracy": _balanced_accuracy(labels, preds),
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


def _balanced_accuracy(labels, preds):
  """Mean over the classes present in `labels` of their recall."""
  recalls = [float((preds[labels == c] == c).mean()) for c in np.unique(labels)]
  return float(np.mean(recalls)) if recalls else float("nan")


def regression_metrics(preds, targets, loss=None):
  """preds [N] or [N, 1], targets [N] -> r2 (1 - SSE/SST), pearson,
  spearman, mae, rmse (and loss if given), in the targets' units.

  With D > 1 outputs the metrics pool every output's values.
  """
  p = np.asarray(preds, np.float64).ravel()
  t = np.asarray(targets, np.float64).ravel()
  err = p - t
  sst = ((t - t.mean()) ** 2).sum()
  varies = p.std() > 0 and t.std() > 0
  out = {
      "r2": float(1.0 - (err ** 2).sum() / sst) if sst > 0 else float("nan"),
      "pearson": float(np.corrcoef(p, t)[0, 1]) if varies else float("nan"),
      "spearman": (float(stats.spearmanr(p, t).statistic) if varies
                   else float("nan")),
      "mae": float(np.abs(err).mean()),
      "rmse": float(np.sqrt((err ** 2).mean())),
  }
  if loss is not None:
    out["loss"] = float(loss)
  return out
