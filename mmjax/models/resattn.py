"""Reference recipe 004's sequence model: pre-norm residual blocks of
BatchNorm, multi-head self-attention and a GELU MLP, with dropout that
grows with depth, mean pooled over the real steps."""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmjax.models.mlp import BatchNorm
from mmjax.models.transformer import sinusoidal_positions


def masked_mean(h, mask):
  """Mean over the real steps: h [B, T, W], mask [B, T] -> [B, W] (a row
  without real steps pools to zeros)."""
  m = mask[..., None].astype(h.dtype)
  return (h * m).sum(axis=1) / jnp.maximum(m.sum(axis=1), 1.0)


class ResidualAttentionBlock(nn.Module):
  """BatchNorm -> self-attention and BatchNorm -> GELU MLP, each a residual
  branch ending in dropout. x [B, T, W], mask [B, T] (1 = real step;
  padded steps are never keys), rows_bt [B, T] (the (row, step) vectors
  that BatchNorm statistics use) -> [B, T, W].

  BatchNorm is torch.nn.BatchNorm1d over the channels, as the reference
  applies it to [B, W, T]: statistics over rows and steps."""
  num_heads: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, mask, rows_bt, *, train: bool):
    att_mask = nn.make_attention_mask(mask > 0, mask > 0)
    h = BatchNorm(dtype=self.dtype, name="bn_att")(x, train=train,
                                                   rows=rows_bt)
    h = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dtype=self.dtype,
        # Mixed precision: the attention softmax stays fp32 under bf16.
        force_fp32_for_softmax=True,
        kernel_init=nn.initializers.xavier_uniform(), name="attention")(
            h, h, mask=att_mask)
    x = x + nn.Dropout(self.dropout, deterministic=not train)(h)
    h = BatchNorm(dtype=self.dtype, name="bn_mlp")(x, train=train,
                                                   rows=rows_bt)
    h = nn.Dense(self.mlp_ratio * x.shape[-1], dtype=self.dtype,
                 kernel_init=nn.initializers.xavier_uniform(), name="mlp_in")(h)
    h = nn.gelu(h, approximate=False)
    h = nn.Dense(x.shape[-1], dtype=self.dtype,
                 kernel_init=nn.initializers.xavier_uniform(),
                 name="mlp_out")(h)
    return x + nn.Dropout(self.dropout, deterministic=not train)(h)


class ResidualAttentionEncoder(nn.Module):
  """Embeds features [B, T, F] with a Dense (plus sinusoidal positions when
  `positions`), runs `depth` ResidualAttentionBlocks, block i with dropout
  `dropouts[i]`, then a final BatchNorm and the mean over the real steps:
  [B, width].

  BatchNorm statistics (every block's and the final one) use the real
  steps of the rows that count only: the (row, step) weights are
  mask [B, T] times `rows` [B] (None: every row)."""
  width: int
  depth: int
  num_heads: int
  mlp_ratio: int = 4
  dropouts: Sequence[float] = ()
  positions: bool = True
  dtype: Any = jnp.float32

  def __post_init__(self):
    if len(self.dropouts) != self.depth:
      raise ValueError(f"ResidualAttentionEncoder: dropouts has "
                       f"{len(self.dropouts)} rates for depth {self.depth} "
                       "(one per block)")
    super().__post_init__()

  @nn.compact
  def __call__(self, x, mask, *, train: bool, rows=None):
    """x [B, T, F] float, mask [B, T] (1 = real step), rows [B] or None ->
    [B, width]."""
    mask = mask.astype(jnp.float32)
    rows_bt = mask if rows is None else (
        mask * rows.astype(jnp.float32)[:, None])
    h = nn.Dense(self.width, dtype=self.dtype, name="embed")(
        x.astype(self.dtype))
    if self.positions:
      h = h + sinusoidal_positions(h.shape[1], self.width).astype(h.dtype)
    h = h * mask[..., None].astype(h.dtype)
    for i, p in enumerate(self.dropouts):
      h = ResidualAttentionBlock(self.num_heads, self.mlp_ratio, float(p),
                                 self.dtype, name=f"block{i}")(
                                     h, mask, rows_bt, train=train)
    h = BatchNorm(dtype=self.dtype, name="bn_out")(h, train=train,
                                                   rows=rows_bt)
    return masked_mean(h, mask)
