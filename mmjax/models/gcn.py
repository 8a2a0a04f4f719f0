"""Graph convolutions on padded jraph GraphsTuples.

Batches arrive as dense padded arrays, one graph per row:
  nodes [B, N, F], senders/receivers [B, E] (indices local to the graph),
  node_mask [B, N], edge_mask [B, E].
`as_graphs_tuple` flattens such a batch into one jraph.GraphsTuple of B*N nodes
so that every layer is a single segment sum whose shapes never change.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph


def as_graphs_tuple(nodes, senders, receivers, edge_mask):
  """Flattens a padded batch [B, N, F] into one jraph.GraphsTuple.

  Padded edges keep their (masked) indices; the mask travels as the edge
  feature and weighs every message, so they never reach a real node's sum.
  """
  b, n, _ = nodes.shape
  offsets = (jnp.arange(b, dtype=senders.dtype) * n)[:, None]
  e = senders.shape[1]
  return jraph.GraphsTuple(
      nodes=nodes.reshape(b * n, -1),
      edges=edge_mask.reshape(b * e).astype(nodes.dtype),
      senders=(senders + offsets).reshape(-1),
      receivers=(receivers + offsets).reshape(-1),
      n_node=jnp.full((b,), n, jnp.int32),
      n_edge=jnp.full((b,), e, jnp.int32),
      globals=None)


class GCNConv(nn.Module):
  """Kipf-Welling graph convolution with the semantics of PyG's `GCNConv`.

  out = D^-1/2 (A + I) D^-1/2 (x W) + b, with D the weighted in-degree plus
  one (self loop). Edge weights come from `graph.edges` (the padding mask).
  jraph.GraphConvolution has no edge weights, so padded edges would change
  the degrees there; this layer normalises with the mask instead.
  Inputs must hold no self-loop edges (the builders drop them): PyG keeps an
  explicit loop's weight instead of adding 1, this layer always adds 1.
  """
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, graph: jraph.GraphsTuple) -> jnp.ndarray:
    x = nn.Dense(self.features, use_bias=False, dtype=self.dtype,
                 kernel_init=nn.initializers.glorot_uniform(),
                 name="lin")(graph.nodes)
    num_nodes = x.shape[0]
    w = graph.edges.astype(x.dtype)
    deg = jraph.segment_sum(w, graph.receivers, num_nodes) + 1.0
    inv_sqrt = jax.lax.rsqrt(deg)
    norm = inv_sqrt[graph.senders] * w * inv_sqrt[graph.receivers]
    msgs = x[graph.senders] * norm[:, None]
    agg = jraph.segment_sum(msgs, graph.receivers, num_nodes)
    agg = agg + x * (inv_sqrt * inv_sqrt)[:, None]
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return agg + bias.astype(x.dtype)


def masked_mean_max(h, node_mask):
  """Mean and max over the real nodes of each graph.

  Args:
    h: [B, N, F] node embeddings.
    node_mask: [B, N], 1 for real nodes.
  Returns:
    [B, 2F]: concat(mean, max). A graph without real nodes pools to zeros.
  """
  m = node_mask[..., None].astype(h.dtype)
  count = jnp.maximum(m.sum(axis=1), 1.0)
  mean = (h * m).sum(axis=1) / count
  neg = jnp.finfo(h.dtype).min
  mx = jnp.where(m > 0, h, neg).max(axis=1)
  mx = jnp.where(m.sum(axis=1) > 0, mx, 0.0)
  return jnp.concatenate([mean, mx], axis=-1)


def dense_normalized_adjacency(senders, receivers, edge_mask, num_nodes):
  """D^-1/2 (A + I) D^-1/2 per graph, as [B, N, N] (row = receiver).

  The same operator as GCNConv's segment sums, for small graphs where one
  batched matmul per layer is cheaper than a gather and a scatter.
  """
  b = senders.shape[0]
  rows = jnp.arange(b)[:, None]
  adj = jnp.zeros((b, num_nodes, num_nodes), edge_mask.dtype)
  adj = adj.at[rows, receivers, senders].add(edge_mask)
  adj = adj + jnp.eye(num_nodes, dtype=adj.dtype)
  inv_sqrt = jax.lax.rsqrt(adj.sum(-1))
  return inv_sqrt[:, :, None] * adj * inv_sqrt[:, None, :]


class DenseGCNConv(nn.Module):
  """GCNConv on a precomputed normalised adjacency: x [B, N, F] -> [B, N, out].

  Same parameters (`lin` kernel, `bias`) and result as GCNConv."""
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, adj):
    x = nn.Dense(self.features, use_bias=False, dtype=self.dtype,
                 kernel_init=nn.initializers.glorot_uniform(), name="lin")(x)
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    return jnp.einsum("bij,bjf->bif", adj.astype(x.dtype), x) + bias.astype(
        x.dtype)


class GCNEncoder(nn.Module):
  """A GCN stack with ReLU, dropout, a residual on the last layer and mean+max
  pooling (reference recipe 000's crystal/k-space encoders).

  Input: the padded batch fields of one graph modality. Output [B, 2*widths[-1]]
  (optionally projected to `out_features`). `aggregation` picks segment sums
  over a jraph.GraphsTuple ("segment") or a dense per-graph adjacency
  ("dense"); both compute the same function with the same parameters.
  """
  widths: Sequence[int]
  aggregation: str = "segment"
  dropout: float = 0.0
  out_features: int | None = None
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, nodes, senders, receivers, node_mask, edge_mask, *,
               train: bool):
    b, n, _ = nodes.shape
    if self.aggregation == "dense":
      adj = dense_normalized_adjacency(senders, receivers, edge_mask, n)
      h = nodes.astype(self.dtype)
      conv = lambda i, width, h: DenseGCNConv(
          width, dtype=self.dtype, name=f"conv{i}")(h, adj)
    elif self.aggregation == "segment":
      graph = as_graphs_tuple(nodes.astype(self.dtype), senders, receivers,
                              edge_mask)
      h = graph.nodes
      conv = lambda i, width, h: GCNConv(
          width, dtype=self.dtype, name=f"conv{i}")(graph._replace(nodes=h))
    else:
      raise ValueError(f"gcn aggregation: unknown '{self.aggregation}' "
                       "(known: segment, dense)")
    for i, width in enumerate(self.widths):
      out = conv(i, width, h)
      last = i == len(self.widths) - 1
      if last and h.shape[-1] == width:
        out = out + h  # The reference recipe's residual on the last layer.
      h = nn.relu(out)
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    pooled = masked_mean_max(h.reshape(b, n, -1), node_mask)
    if self.out_features:
      pooled = nn.Dense(self.out_features, dtype=self.dtype,
                        name="proj")(pooled)
    return pooled
