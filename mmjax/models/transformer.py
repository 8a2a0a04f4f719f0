"""A transformer encoder for sequence modalities."""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from mmjax.models import positions
from mmjax.models.gcn import masked_mean_max


def sinusoidal_positions(length, width):
  """The fixed sine/cosine position code of "Attention is all you need":
  [length, width] (width even; positions.sinusoidal)."""
  return jnp.asarray(positions.sinusoidal(length, width))


class TransformerBlock(nn.Module):
  """Pre-LayerNorm self-attention and GELU MLP, each with a residual.
  x [B, T, W], mask [B, T] (1 = real step; padded steps are never keys)."""
  num_heads: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, mask, *, train: bool):
    att_mask = nn.make_attention_mask(mask > 0, mask > 0)
    h = nn.LayerNorm(dtype=self.dtype, name="ln_att")(x)
    h = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dtype=self.dtype,
        # Mixed precision: the attention softmax stays fp32 under bf16.
        force_fp32_for_softmax=True,
        kernel_init=nn.initializers.xavier_uniform(), name="attention")(
            h, h, mask=att_mask)
    x = x + nn.Dropout(self.dropout, deterministic=not train)(h)
    h = nn.LayerNorm(dtype=self.dtype, name="ln_mlp")(x)
    h = nn.Dense(self.mlp_ratio * x.shape[-1], dtype=self.dtype,
                 kernel_init=nn.initializers.xavier_uniform(), name="mlp_in")(h)
    h = nn.gelu(h, approximate=False)
    h = nn.Dense(x.shape[-1], dtype=self.dtype,
                 kernel_init=nn.initializers.xavier_uniform(),
                 name="mlp_out")(h)
    return x + nn.Dropout(self.dropout, deterministic=not train)(h)


class MultiHotDense(nn.Module):
  """nn.Dense on multi-hot rows given as the indices of their ones:
  idx [B, T, J] int32 into [0, features_in) (-1: none) -> [B, T, features].
  The same parameters (kernel [features_in, features], bias) and outputs as
  nn.Dense on the multi-hot matrix, at the cost of J row gathers instead of
  a features_in-long dot product per output."""
  features_in: int
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, idx):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (self.features_in, self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,),
                      jnp.float32)
    rows = jnp.take(kernel.astype(self.dtype), jnp.maximum(idx, 0), axis=0)
    rows = rows * (idx >= 0)[..., None].astype(self.dtype)
    return rows.sum(-2) + bias.astype(self.dtype)


class SequenceTransformer(nn.Module):
  """Embeds a sequence (Dense on features [B, T, F], or an embedding table
  for token ids [B, T] when vocab_size > 0), adds sinusoidal positions, runs
  `depth` blocks and pools mean and max over the real steps: [B, 2 width].

  `multi_hot` > 0: x is multi-hot features [B, T, multi_hot] given as the
  indices of their ones [B, T, J] (MultiHotDense; the same parameters as
  the Dense on the features).

  `scale_embedding` multiplies the embedding by sqrt(width) before the
  positions are added, as "Attention is all you need" does: sparse inputs
  (one-hot k-mers) embed with entries under 0.1 at init, against
  positions of about 0.7, and would start almost blind to their content.
  """
  width: int
  depth: int
  num_heads: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  vocab_size: int = 0
  dtype: Any = jnp.float32
  scale_embedding: bool = False
  multi_hot: int = 0

  @nn.compact
  def __call__(self, x, mask, *, train: bool):
    if self.multi_hot:
      h = MultiHotDense(self.multi_hot, self.width, dtype=self.dtype,
                        name="embed")(x)
    elif self.vocab_size:
      h = nn.Embed(self.vocab_size, self.width, dtype=self.dtype,
                   name="embed")(x)
    else:
      h = nn.Dense(self.width, dtype=self.dtype, name="embed")(
          x.astype(self.dtype))
    if self.scale_embedding:
      h = h * jnp.asarray(np.sqrt(self.width), h.dtype)
    h = h + sinusoidal_positions(h.shape[1], self.width).astype(h.dtype)
    h = h * mask[..., None].astype(h.dtype)
    for i in range(self.depth):
      h = TransformerBlock(self.num_heads, self.mlp_ratio, self.dropout,
                           self.dtype, name=f"block{i}")(h, mask, train=train)
    h = nn.LayerNorm(dtype=self.dtype, name="ln_out")(h)
    return masked_mean_max(h, mask)
