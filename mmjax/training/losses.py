"""Losses. Every per-sample loss is averaged with `sample_mask` ([B], 1 for
real samples, 0 for batch padding), never over padded rows."""

import jax
import jax.numpy as jnp
import optax


def masked_mean(values, mask):
  """Mean of `values` [B] over the samples where mask [B] is 1."""
  mask = mask.astype(values.dtype)
  return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def soft_targets(labels, num_classes, label_smoothing=0.0):
  """[B] int labels -> [B, C] smoothed one-hot (PyTorch's convention)."""
  onehot = jax.nn.one_hot(labels, num_classes)
  return optax.smooth_labels(onehot, label_smoothing)


def focal_loss(logits, targets, gamma=2.0, alpha=None):
  """The reference recipes' focal loss per sample: ce = CE(logits, y);
  alpha_t (1 - e^-ce)^gamma ce.

  logits [B, C]; targets [B, C] (one-hot or soft). Returns [B].
  alpha (optional, in [0, 1]): RetinaNet's class weight. With C = 2 the
  positive class (1) weighs alpha and class 0 weighs 1 - alpha (alpha_t is
  the target-weighted mix for soft targets); with C > 2 every class weighs
  alpha. None: no weight (the materials recipes' form).
  """
  ce = optax.softmax_cross_entropy(logits, targets)
  pt = jnp.exp(-ce)
  loss = (1.0 - pt) ** gamma * ce
  if alpha is None:
    return loss
  if logits.shape[-1] == 2:
    return (targets[:, 1] * alpha + targets[:, 0] * (1.0 - alpha)) * loss
  return alpha * loss


def cross_entropy(logits, targets):
  """Per-sample softmax cross-entropy [B]."""
  return optax.softmax_cross_entropy(logits, targets)


def feature_diversity(features, mask, mode="seed"):
  """-log(mean over features of the per-feature std over the batch + 1e-8).

  Reference recipe 000's regulariser against feature collapse; the std is
  the unbiased one (torch.std), computed over the real samples only.
  features [B, F].

  mode="seed" is the reference recipe's formula verbatim. It has no lower
  bound: the model lowers it by scaling its features up, without limit
  (docs/results/optimized.md shows what that does to training). mode=
  "normalized" first standardises each sample's feature vector (zero mean,
  unit variance over F), so only differences between samples count:
  collapse (all samples alike) is still penalised, scale is not rewarded.
  """
  if mode == "normalized":
    mu = features.mean(-1, keepdims=True)
    features = (features - mu) * jax.lax.rsqrt(
        features.var(-1, keepdims=True) + 1e-6)
  elif mode != "seed":
    raise ValueError(f"loss.diversity_mode: unknown '{mode}' "
                     "(known: seed, normalized)")
  m = mask.astype(features.dtype)[:, None]
  n = jnp.maximum(m.sum(), 2.0)
  mean = (features * m).sum(0) / n
  var = (((features - mean) ** 2) * m).sum(0) / (n - 1.0)
  return -jnp.log(jnp.sqrt(var).mean() + 1e-8)


def squared_error(preds, targets):
  """Per-sample squared error summed over outputs: preds, targets [B, D]
  -> [B] (torch's MSELoss when D = 1)."""
  return ((preds - targets) ** 2).sum(-1)


def absolute_error(preds, targets):
  """Per-sample absolute error summed over outputs [B, D] -> [B] (L1Loss)."""
  return jnp.abs(preds - targets).sum(-1)


def huber(preds, targets, delta=1.0):
  """Per-sample Huber loss summed over outputs [B, D] -> [B], torch's
  HuberLoss: 0.5 r^2 for |r| <= delta, else delta (|r| - 0.5 delta)."""
  return optax.huber_loss(preds, targets, delta=delta).sum(-1)


DIVERSITY_MODES = ("seed", "normalized")
