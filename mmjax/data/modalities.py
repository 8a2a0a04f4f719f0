"""Modality kinds: how one example's modality is padded to fixed shapes.

A dataset declares each modality as a `Modality(kind, shape)`; the pipeline
pads every example by that declaration, so a run's batches all have one
shape and its step compiles once. Batch keys per kind (B = batch):

  graph     m_nodes [B, N, F], m_senders / m_receivers int32 [B, E],
            m_node_mask [B, N], m_edge_mask [B, E]; shape = (F,) node
            features, or (F, G) with edge features m_edges [B, E, G];
            N / E from `dataset.budgets.m.nodes / .edges`.
            Example keys: m_nodes [n, F], m_senders / m_receivers [e]
            (and m_edges [e, G]).
  vector    m [B, F]; shape = (F,).
  sequence  m [B, T, F] (or int32 token ids [B, T] with shape (T,)) and
            m_mask [B, T] (1 = a real step); shape = (T, F) or (T,), T the
            longest sequence; `dataset.budgets.m.length` may lower T.
            Example key: m [t <= T, F] (or [t]).
  grid      m [B, D, H, W, C]; shape = (D, H, W, C), every example exactly.

A new kind is a class with `pad` and `input_keys` added to KINDS.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Modality:
  kind: str          # a key of KINDS
  shape: tuple       # per example, see the module docstring
  dtype: str = "float32"


class GraphKind:
  """Graphs padded to node/edge budgets; padded edges point at node 0 with
  edge mask 0 (message passing weighs messages by the mask)."""

  @staticmethod
  def pad(ex, name, mod, budget, where):
    if not budget or "nodes" not in budget or "edges" not in budget:
      raise ValueError(f"dataset.budgets.{name}: a graph modality needs "
                       "dict(nodes=..., edges=...)")
    nodes, s, r, nm, em = pad_graph(
        np.asarray(ex[f"{name}_nodes"], np.float32), ex[f"{name}_senders"],
        ex[f"{name}_receivers"], budget["nodes"], budget["edges"], where,
        name)
    out = {f"{name}_nodes": nodes, f"{name}_senders": s,
           f"{name}_receivers": r, f"{name}_node_mask": nm,
           f"{name}_edge_mask": em}
    if len(mod.shape) == 2:
      edges = np.asarray(ex[f"{name}_edges"], np.float32)
      if edges.shape != (len(ex[f"{name}_senders"]), mod.shape[1]):
        raise ValueError(f"{where}: {name}_edges has shape {edges.shape}, "
                         f"expected [{len(ex[f'{name}_senders'])}, "
                         f"{mod.shape[1]}]")
      out[f"{name}_edges"] = np.zeros((len(s), mod.shape[1]), np.float32)
      out[f"{name}_edges"][:len(edges)] = edges
    return out

  @staticmethod
  def input_keys(name):
    return (f"{name}_nodes",)


class VectorKind:
  """Fixed-length feature vectors: every example has exactly the declared
  shape."""

  @staticmethod
  def pad(ex, name, mod, budget, where):
    del budget
    x = np.asarray(ex[name], mod.dtype)
    if x.shape != tuple(mod.shape):
      raise ValueError(f"{where}: {name} has shape {x.shape}, expected "
                       f"{tuple(mod.shape)}")
    return {name: x}

  @staticmethod
  def input_keys(name):
    return (name,)


class SequenceKind:
  """Variable-length sequences padded to T steps with a length mask."""

  @staticmethod
  def pad(ex, name, mod, budget, where):
    t_max = int((budget or {}).get("length", mod.shape[0]))
    x = np.asarray(ex[name], mod.dtype)
    if x.ndim != len(mod.shape) or x.shape[1:] != tuple(mod.shape[1:]):
      raise ValueError(f"{where}: {name} has shape {x.shape}, expected "
                       f"[t, {', '.join(map(str, mod.shape[1:]))}]"
                       if len(mod.shape) > 1 else
                       f"{where}: {name} has shape {x.shape}, expected [t]")
    if not 1 <= len(x) <= t_max:
      raise ValueError(f"{where}: {name} has {len(x)} steps, outside "
                       f"[1, {t_max}] (raise dataset.budgets.{name}.length)")
    out = np.zeros((t_max,) + x.shape[1:], mod.dtype)
    out[:len(x)] = x
    mask = np.zeros((t_max,), np.float32)
    mask[:len(x)] = 1
    return {name: out, f"{name}_mask": mask}

  @staticmethod
  def input_keys(name):
    return (name,)


class GridKind(VectorKind):
  """Dense grids (voxels, images) [D, H, W, C] of one fixed shape: padded
  and checked as vectors are."""


KINDS = {"graph": GraphKind, "vector": VectorKind, "sequence": SequenceKind,
         "grid": GridKind}


def kind_of(mod: Modality):
  if mod.kind not in KINDS:
    raise ValueError(f"modality kind '{mod.kind}' is unknown "
                     f"(known: {', '.join(KINDS)})")
  return KINDS[mod.kind]


def pad_graph(nodes, senders, receivers, max_nodes, max_edges, where, name):
  """Pads one graph to the budgets.

  Returns nodes [max_nodes, F], senders/receivers [max_edges] int32,
  node_mask [max_nodes], edge_mask [max_edges]. Padded edges point at node 0
  with edge_mask 0 (the GCN weighs messages by the mask).
  Raises ValueError naming `where` if the graph exceeds a budget.
  """
  n, e = len(nodes), len(senders)
  if n > max_nodes or e > max_edges:
    raise ValueError(
        f"{where}: {name} graph has {n} nodes / {e} edges, over the budget "
        f"{max_nodes} / {max_edges} (raise dataset.budgets.{name})")
  out_nodes = np.zeros((max_nodes, nodes.shape[1]), np.float32)
  out_nodes[:n] = nodes
  s = np.zeros((max_edges,), np.int32)
  r = np.zeros((max_edges,), np.int32)
  s[:e], r[:e] = senders, receivers
  node_mask = np.zeros((max_nodes,), np.float32)
  node_mask[:n] = 1
  edge_mask = np.zeros((max_edges,), np.float32)
  edge_mask[:e] = 1
  return out_nodes, s, r, node_mask, edge_mask
