"""Dense encoders and heads."""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class BatchNorm(nn.Module):
  """BatchNorm with PyTorch's bookkeeping, over the batch and every spatial
  axis (torch.nn.BatchNorm1d for x [B, F], BatchNorm3d for [B, D, H, W, C]).

  Normalises with the biased batch variance in training, like every
  BatchNorm, but tracks the UNBIASED one in `var` as torch does
  (flax.linen.BatchNorm tracks the biased one, so eval outputs would drift
  from the reference recipes' models). x [B, ..., F]; momentum is torch's
  (0.1 = weight of the new batch). Statistics are over the global batch
  under jit, or, with `rows` [B] (1 = counts), over those rows (all their
  positions) only: a k-fold member's statistics never see its held-out
  fold. `rows` may also weigh each position: shape x.shape[:-1] (e.g.
  [B, T] for x [B, T, F]: the real steps of the rows that count), the
  count n then being rows.sum().
  """
  momentum: float = 0.1
  epsilon: float = 1e-5
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, rows=None):
    f = x.shape[-1]
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (f,),
                            jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, (f,), jnp.float32)
    scale = self.param("scale", nn.initializers.ones, (f,))
    bias = self.param("bias", nn.initializers.zeros, (f,))
    axes = tuple(range(x.ndim - 1))
    if train:
      xf = x.astype(jnp.float32)
      per_row = int(np.prod(x.shape[1:-1]))  # positions per row
      if rows is None:
        n = x.shape[0] * per_row
        mean, var = xf.mean(axes), xf.var(axes)
        denom = max(n - 1, 1)
      else:
        w = rows.astype(jnp.float32)
        if w.ndim > 1 and w.shape == x.shape[:-1]:  # a weight per position
          w = w[..., None]
          n = w.sum()
        else:  # [B]: every position of a counted row
          w = w.reshape((-1,) + (1,) * (x.ndim - 1))
          n = w.sum() * per_row
        mean = (xf * w).sum(axes) / jnp.maximum(n, 1.0)
        var = (((xf - mean) ** 2) * w).sum(axes) / jnp.maximum(n, 1.0)
        denom = jnp.maximum(n - 1.0, 1.0)
      if not self.is_initializing():
        m = self.momentum
        ra_mean.value = (1 - m) * ra_mean.value + m * mean
        ra_var.value = (1 - m) * ra_var.value + m * var * n / denom
    else:
      mean, var = ra_mean.value, ra_var.value
    y = (x.astype(jnp.float32) - mean) * jax.lax.rsqrt(var + self.epsilon)
    return (y * scale + bias).astype(self.dtype)


ACTIVATIONS = {"relu": nn.relu, "gelu": lambda x: nn.gelu(x, approximate=False)}


class MLP(nn.Module):
  """Dense -> [BatchNorm | LayerNorm] -> activation -> Dropout per hidden
  width.

  `final_activation=False` leaves the last layer linear (a head); True makes
  every layer a block (an encoder). Input [B, F] -> output [B, widths[-1]].
  BatchNorm follows PyTorch's defaults (momentum 0.1, eps 1e-5); LayerNorm
  (`layer_norm`, reference recipe 003's heads) uses eps 1e-5 as torch does.
  `activation`: 'relu' or 'gelu' (exact, torch's default).
  """
  widths: Sequence[int]
  dropout: float = 0.0
  batch_norm: bool = False
  final_activation: bool = True
  dtype: jnp.dtype = jnp.float32
  layer_norm: bool = False
  activation: str = "relu"

  @nn.compact
  def __call__(self, x, *, train: bool, rows=None):
    """`rows` [B] (optional): the rows BatchNorm takes statistics from."""
    for i, width in enumerate(self.widths):
      x = nn.Dense(width, dtype=self.dtype, name=f"dense{i}")(x)
      if i == len(self.widths) - 1 and not self.final_activation:
        break
      if self.batch_norm:
        x = BatchNorm(dtype=self.dtype, name=f"bn{i}")(x, train=train,
                                                       rows=rows)
      if self.layer_norm:
        x = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name=f"ln{i}")(x)
      x = ACTIVATIONS[self.activation](x)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return x
