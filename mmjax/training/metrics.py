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


COVERAGES = (0.5, 0.8)


def accuracy_at_coverage(correct, score, coverage):
  """Accuracy on the `coverage` fraction of samples with the highest
  `score` (ties broken by order): selective prediction."""
  n = max(int(round(coverage * len(correct))), 1)
  keep = np.argsort(-np.asarray(score, np.float64), kind="stable")[:n]
  return float(np.asarray(correct)[keep].mean())


def expected_calibration_error(prob, correct, bins=15):
  """ECE: sum over equal-width probability bins of the bin's share of
  samples times |its accuracy - its mean probability| (Guo et al. 2017;
  15 bins)."""
  prob, correct = np.asarray(prob, np.float64), np.asarray(correct, float)
  which = np.minimum((prob * bins).astype(int), bins - 1)
  ece = 0.0
  for b in range(bins):
    sel = which == b
    if sel.any():
      ece += sel.mean() * abs(correct[sel].mean() - prob[sel].mean())
  return float(ece)


def confidence_metrics(logits, confidence_logit, labels):
  """Selective accuracy and calibration of a classifier (logits [N, C]) and
  of its confidence head (confidence_logit [N], is the argmax right?):
  accuracy at 50% and 80% coverage ranked by the head and, for comparison,
  by the classifier's top probability; ECE of both."""
  logits = np.asarray(logits, np.float64)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  correct = probs.argmax(-1) == np.asarray(labels)
  conf = 1.0 / (1.0 + np.exp(-np.asarray(confidence_logit, np.float64)))
  top = probs.max(-1)
  out = {"ece": expected_calibration_error(top, correct),
         "confidence_ece": expected_calibration_error(conf, correct)}
  for c in COVERAGES:
    pct = int(round(100 * c))
    out[f"accuracy_at_{pct}"] = accuracy_at_coverage(correct, conf, c)
    out[f"top_prob_accuracy_at_{pct}"] = accuracy_at_coverage(correct, top, c)
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
