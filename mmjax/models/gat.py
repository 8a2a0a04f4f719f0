"""Graph attention (GAT) on padded graph batches (reference recipe 002's
ligand graphs).

Batches are the padded arrays of mmjax.data.modalities' graph kind:
nodes [B, N, F], senders/receivers [B, E] (local to the graph), node_mask
[B, N], edge_mask [B, E] and optionally edge features [B, E, G]. Padded
edges (mask 0) and padded nodes take no part in any softmax or sum, so a
graph's output equals PyG's on the graph alone.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models.gcn import masked_mean_max

_GLOROT = nn.initializers.xavier_uniform()
# PyG's glorot on an attention vector [1, heads, C]: fans heads and C.
_GLOROT_ATT = nn.initializers.xavier_uniform(in_axis=-2, out_axis=-1)


def _segment_softmax(logits, valid, segments, num_segments):
  """Softmax of logits [E, H] over the edges of each segment, valid [E]
  only; invalid edges get weight 0, a segment without valid edges none."""
  neg = jnp.where(valid[:, None], logits, -jnp.inf)
  top = jax.ops.segment_max(neg, segments, num_segments)
  # Shifting by a constant per segment leaves the softmax unchanged; empty
  # segments (max -inf) shift by 0 so that no inf reaches exp or its grad.
  top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))
  z = jnp.where(valid[:, None], logits - top[segments], 0.0)
  ex = jnp.where(valid[:, None], jnp.exp(z), 0.0)
  den = jax.ops.segment_sum(ex, segments, num_segments)
  return ex / jnp.where(den > 0, den, 1.0)[segments]


class GATConv(nn.Module):
  """PyG's `GATConv(in, features, heads, concat, negative_slope, dropout,
  add_self_loops=True, edge_dim, fill_value='mean', bias=True)` on a padded
  batch.

  For a receiver i and each incoming edge j -> i (after dropping explicit
  self loops and adding one loop per real node):
    a_ij = softmax_j(leaky_relu(att_src . W x_j + att_dst . W x_i
                                [+ att_edge . W_e e_ji]))   per head,
    out_i = sum_j a_ij W x_j, heads concatenated [H C] or averaged [C],
    plus a bias. A self loop's edge feature is the mean of the node's
    incoming edge features (0 without any).
  Parameters: `lin` [F, H C], `att_src`/`att_dst` [H, C], with edge
  features `lin_edge` [G, H C] and `att_edge` [H, C], `bias` [H C] or [C].
  Attention dropout (PyG's `dropout`) acts on a_ij in training.

  Returns [B, N, H C] (concat) or [B, N, C]; padded nodes are 0.
  """
  features: int
  heads: int = 1
  concat: bool = True
  negative_slope: float = 0.2
  dropout: float = 0.0
  add_self_loops: bool = True
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, nodes, senders, receivers, node_mask, edge_mask,
               edges=None, *, train: bool):
    b, n, _ = nodes.shape
    h, c = self.heads, self.features
    senders, receivers = jnp.asarray(senders), jnp.asarray(receivers)
    real = jnp.asarray(node_mask) > 0
    rows = jnp.arange(b)[:, None]
    # Padded nodes' features never enter a message (inf * 0 would be NaN).
    nodes = jnp.where(real[..., None], nodes, 0).astype(self.dtype)
    x = nn.Dense(h * c, use_bias=False, kernel_init=_GLOROT, dtype=self.dtype,
                 name="lin")(nodes).reshape(b * n, h, c)
    att_src = self.param("att_src", _GLOROT_ATT, (h, c))
    att_dst = self.param("att_dst", _GLOROT_ATT, (h, c))
    xf = x.astype(jnp.float32)
    a_src = (xf * att_src).sum(-1)  # [B N, H]
    a_dst = (xf * att_dst).sum(-1)

    valid = ((jnp.asarray(edge_mask) > 0) & real[rows, senders] & real[rows, receivers])
    if self.add_self_loops:
      valid &= senders != receivers
    offsets = (jnp.arange(b, dtype=senders.dtype) * n)[:, None]
    src = (senders + offsets).reshape(-1)
    dst = (receivers + offsets).reshape(-1)
    valid = valid.reshape(-1)
    if edges is not None:
      edges = edges.reshape(b * senders.shape[1], -1).astype(jnp.float32)
      edges = jnp.where(valid[:, None], edges, 0.0)
    if self.add_self_loops:
      loops = jnp.arange(b * n, dtype=src.dtype)
      if edges is not None:
        count = jax.ops.segment_sum(valid.astype(jnp.float32), dst, b * n)
        total = jax.ops.segment_sum(edges, dst, b * n)
        edges = jnp.concatenate(
            [edges, total / jnp.maximum(count, 1.0)[:, None]])
      src = jnp.concatenate([src, loops])
      dst = jnp.concatenate([dst, loops])
      valid = jnp.concatenate([valid, real.reshape(-1)])

    logits = a_src[src] + a_dst[dst]  # [E', H]
    if edges is not None:
      e = nn.Dense(h * c, use_bias=False, kernel_init=_GLOROT,
                   dtype=self.dtype, name="lin_edge")(edges.astype(self.dtype))
      att_edge = self.param("att_edge", _GLOROT_ATT, (h, c))
      logits = logits + (e.astype(jnp.float32).reshape(-1, h, c) *
                         att_edge).sum(-1)
    logits = nn.leaky_relu(logits, self.negative_slope)
    alpha = _segment_softmax(logits, valid, dst, b * n)
    alpha = nn.Dropout(self.dropout, deterministic=not train)(alpha)
    msgs = alpha.astype(self.dtype)[..., None] * x[src]
    out = jax.ops.segment_sum(msgs, dst, b * n)  # [B N, H, C]
    out = out.reshape(b * n, h * c) if self.concat else out.mean(1)
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (out.shape[-1],))
      out = out + bias.astype(out.dtype)
    return jnp.where(real.reshape(-1, 1), out, 0).reshape(b, n, -1)


def _per_layer(value, num_layers, what):
  if isinstance(value, (int, bool)):
    return (value,) * num_layers
  value = tuple(value)
  if len(value) != num_layers:
    raise ValueError(f"gat {what}: {len(value)} entries for {num_layers} "
                     "layers")
  return value


class GATEncoder(nn.Module):
  """GATConv layers, each followed by ELU and dropout, then mean and max
  pooling over the real nodes.

  `heads` and `concat` are one value for every layer or one per layer;
  layer i outputs widths[i] * heads[i] features when concat[i], widths[i]
  otherwise. `attention_dropout` is GATConv's dropout on the attention
  weights, `dropout` the one on node features after each layer.

  Returns [B, 2 out], out the last layer's features.
  """
  widths: Sequence[int]
  heads: Any = 1
  concat: Any = True
  dropout: float = 0.0
  attention_dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, nodes, senders, receivers, node_mask, edge_mask,
               edges=None, *, train: bool):
    heads = _per_layer(self.heads, len(self.widths), "heads")
    concat = _per_layer(self.concat, len(self.widths), "concat")
    h = nodes
    for i, width in enumerate(self.widths):
      h = GATConv(width, heads[i], concat[i], dropout=self.attention_dropout,
                  dtype=self.dtype, name=f"conv{i}")(
                      h, senders, receivers, node_mask, edge_mask, edges,
                      train=train)
      h = nn.elu(h)
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return masked_mean_max(h, node_mask)
