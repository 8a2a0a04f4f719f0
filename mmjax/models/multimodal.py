"""The one model assembly of mmjax: an encoder per modality, a fusion, a head.

A recipe chooses encoders, fusion and head in its config; nothing here knows
about a particular dataset beyond the batch-key conventions:
  graph modality `g`:  g_nodes [B,N,F], g_senders/g_receivers [B,E],
                       g_node_mask [B,N], g_edge_mask [B,E]
  vector modality `v`: v [B,F]
  modality_mask [B,M] in the order of the config's encoders.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmjax.models import fusion as fusion_lib
from mmjax.models.gcn import GCNEncoder
from mmjax.models.mlp import MLP


def _encode(name, spec, batch, dtype, train):
  kind = spec["type"]
  if kind == "gcn":
    enc = GCNEncoder(widths=tuple(spec["widths"]),
                     dropout=spec.get("dropout", 0.0), dtype=dtype,
                     aggregation=spec.get("aggregation", "segment"),
                     out_features=spec.get("out_features", None),
                     name=f"{name}_encoder")
    return enc(batch[f"{name}_nodes"], batch[f"{name}_senders"],
               batch[f"{name}_receivers"], batch[f"{name}_node_mask"],
               batch[f"{name}_edge_mask"], train=train)
  if kind == "mlp":
    enc = MLP(widths=tuple(spec["widths"]), dropout=spec.get("dropout", 0.0),
              batch_norm=spec.get("batch_norm", False), dtype=dtype,
              name=f"{name}_encoder")
    return enc(batch[name].astype(dtype), train=train)
  raise ValueError(f"model.encoders.{name}.type: unknown encoder '{kind}' "
                   "(known: gcn, mlp)")


def _add_noise(batch, encoders, rng, std):
  """Gaussian feature noise on every modality's input features."""
  out = dict(batch)
  for i, (name, spec) in enumerate(encoders):
    key = f"{name}_nodes" if spec["type"] == "gcn" else name
    x = batch[key]
    out[key] = x + std * jax.random.normal(jax.random.fold_in(rng, i),
                                           x.shape, x.dtype)
  return out


class MultiModalModel(nn.Module):
  """Returns {'logits': [B, C], 'features': [B, M*D] fused embedding}.

  `mixup` (optional): (perm [B] int, lam [] float) mixes every sample i with
  sample perm[i]: vector modalities at the input, graph modalities on their
  encoder's embedding (manifold mixup: graphs of different sizes have no
  input-level average). Each modality is mixed exactly once.
  `noise` (optional): (rng, std) adds Gaussian noise of that std to every
  input feature (test-time augmentation).
  """
  encoders: tuple  # ((name, spec dict), ...) in modality_mask order
  token_dim: int
  fusion: str
  num_heads: int
  head_widths: tuple
  head_dropout: float
  num_outputs: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, batch, *, train: bool, mixup=None, noise=None):
    if noise is not None:
      batch = _add_noise(batch, self.encoders, *noise)
    mix = lambda x: x if mixup is None else (
        mixup[1] * x + (1 - mixup[1]) * x[mixup[0]])
    tokens = []
    for name, spec in self.encoders:
      if spec["type"] == "gcn":
        emb = mix(_encode(name, spec, batch, self.dtype, train))
      else:
        emb = _encode(name, spec, {name: mix(batch[name])}, self.dtype, train)
      tokens.append(nn.Dense(self.token_dim, dtype=self.dtype,
                             name=f"{name}_token")(emb))
    tokens = jnp.stack(tokens, axis=1)  # [B, M, D]
    present = batch["modality_mask"].astype(tokens.dtype)
    tokens = tokens * present[..., None]
    fused = fusion_lib.FUSIONS[self.fusion](
        **({} if self.fusion == "concat" else
           {"num_heads": self.num_heads, "dtype": self.dtype}),
        name="fusion")(tokens, present, train=train)
    features = fused.reshape(fused.shape[0], -1)
    logits = MLP(widths=tuple(self.head_widths) + (self.num_outputs,),
                 dropout=self.head_dropout, batch_norm=True,
                 final_activation=False, dtype=self.dtype,
                 name="head")(features, train=train)
    return {"logits": logits.astype(jnp.float32),
            "features": features.astype(jnp.float32)}


def build_model(cfg) -> MultiModalModel:
  """Builds the model from `config.model` (an ml_collections ConfigDict)."""
  missing = [m for m in cfg.modalities if m not in cfg.encoders]
  if missing:
    raise ValueError(f"model.encoders: no encoder for modality {missing[0]}")
  encoders = tuple((m, dict(cfg.encoders[m])) for m in cfg.modalities)
  if cfg.fusion not in fusion_lib.FUSIONS:
    raise ValueError(f"model.fusion: unknown '{cfg.fusion}' "
                     f"(known: {', '.join(fusion_lib.FUSIONS)})")
  return MultiModalModel(
      encoders=encoders, token_dim=cfg.token_dim, fusion=cfg.fusion,
      num_heads=cfg.num_heads, head_widths=tuple(cfg.head_widths),
      head_dropout=cfg.head_dropout, num_outputs=cfg.num_outputs,
      dtype=jnp.dtype(cfg.get("dtype", "float32")))
