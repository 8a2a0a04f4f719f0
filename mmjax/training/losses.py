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


def focal_loss(logits, targets, gamma=2.0):
  """Seed 000's focal loss per sample: ce = CE(logits, y); (1 - e^-ce)^g ce.

  logits [B, C]; targets [B, C] (one-hot or soft). Returns [B].
  """
  ce = optax.softmax_cross_entropy(logits, targets)
  pt = jnp.exp(-ce)
  return (1.0 - pt) ** gamma * ce


def cross_entropy(logits, targets):
  """Per-sample softmax cross-entropy [B]."""
  return optax.softmax_cross_entropy(logits, targets)


def feature_diversity(features, mask, mode="seed"):
  """-log(mean over features of the per-feature std over the batch + 1e-8).

  Seed 000's regulariser against feature collapse; the std is the unbiased
  one (torch.std), computed over the real samples only. features [B, F].

  mode="seed" is the seed's formula verbatim. It has no lower bound: the
  model lowers it by scaling its features up, without limit (measured: the
  fused features' std reached e^13 and accuracy fell; README). mode=
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


DIVERSITY_MODES = ("seed", "normalized")
PER_SAMPLE = {"focal": focal_loss, "cross_entropy": cross_entropy}
