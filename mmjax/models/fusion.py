"""Fusion of modality tokens. Attention runs across the modalities of one
sample ([B, M, D] tokens), never across the samples of a batch."""

import flax.linen as nn
import jax.numpy as jnp


class SelfAttentionFusion(nn.Module):
  """Multi-head self-attention over the M modality tokens, with a residual.

  tokens [B, M, D], present [B, M] (0 = missing modality: masked as a key,
  and its own token stays zero). Returns [B, M, D].
  """
  num_heads: int = 8
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, tokens, present, *, train: bool):
    del train
    mask = nn.make_attention_mask(jnp.ones_like(present), present > 0)
    att = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dtype=self.dtype, name="attention")(
            tokens, tokens, mask=mask)
    return (tokens + att) * present[..., None].astype(tokens.dtype)


class CrossModalFusion(nn.Module):
  """Reference recipe 001: for each modality, attention with that modality
  as the query and the other present modalities as keys/values (its own
  module per modality), with a residual; then self-attention over the
  tokens. [B, M, D] -> same.

  A modality whose sample has no other modality present gets no cross term
  (its attention has no keys), so the output never depends on the tokens
  of absent modalities.
  """
  num_heads: int = 8
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, tokens, present, *, train: bool):
    m = tokens.shape[1]
    tokens = tokens * present[..., None].astype(tokens.dtype)
    out = []
    for i in range(m):
      others = present.at[:, i].set(0.0)
      mask = nn.make_attention_mask(present[:, i:i + 1] * 0 + 1, others > 0)
      att = nn.MultiHeadDotProductAttention(
          num_heads=self.num_heads, dtype=self.dtype, name=f"cross{i}")(
              tokens[:, i:i + 1], tokens, mask=mask)
      # With every key masked the softmax would average all of them.
      has_keys = (others > 0).any(-1).astype(att.dtype)[:, None, None]
      out.append(tokens[:, i:i + 1] + att * has_keys)
    tokens = jnp.concatenate(out, axis=1) * present[..., None]
    return SelfAttentionFusion(self.num_heads, self.dtype, name="self")(
        tokens, present, train=train)


class ConcatFusion(nn.Module):
  """No interaction: the tokens pass through (an ablation baseline). Takes
  the fusions' common fields, and uses none of them."""
  num_heads: int = 8
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, tokens, present, *, train: bool):
    del train
    return tokens * present[..., None]


FUSIONS = {"self_attention": SelfAttentionFusion,
           "cross_modal": CrossModalFusion,
           "concat": ConcatFusion}
