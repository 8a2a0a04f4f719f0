"""The one model assembly of mmjax: an encoder per modality, a fusion, a head.

A recipe chooses encoders (by registered type, mmjax.models.encoders),
fusion and head in its config; nothing here knows a dataset or a modality
kind: each encoder reads its modality's batch keys (mmjax.data.modalities)
and says where mixup and test-time noise act on it. `modality_mask` [B, M]
is in the order of the config's `model.modalities`.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data import modalities as modalities_lib
from mmjax.models import fusion as fusion_lib
from mmjax.models.encoders import encoder_info
from mmjax.models.mlp import MLP


class MultiModalModel(nn.Module):
  """Returns {'logits': [B, C], 'features': [B, M*D] fused embedding}.

  'logits' are the head's C outputs: class logits, or a regression task's
  predictions.
  `mixup` (optional): (perm [B] int, lam [] float) mixes every sample i with
  sample perm[i], each modality once, at its encoder's input or embedding
  as the encoder declares.
  `noise` (optional): (rng, std) adds Gaussian noise of that std to each
  modality's input features or embedding, likewise (test-time
  augmentation).
  `rows` (optional) [B]: the rows BatchNorm statistics come from in training
  (default: all).
  Regression outputs are the head's times `output_scale` plus
  `output_offset` (fixed, not trained; `build_model` sets them to the
  training targets' sd and mean with `model.standardize_outputs`), so a
  fresh model predicts near the targets' mean in their units, however far
  from 0 that is.
  `head_norm` 'batch' (BatchNorm, default) or 'layer' normalises the head's
  hidden layers; `head_activation` 'relu' or 'gelu'.
  `confidence_widths` (optional): a confidence head, an MLP on the fused
  embedding (gradients stopped, so it never changes the classifier) whose
  one logit (is the classifier right?) is appended to 'logits' as column C
  (mmjax.tasks.classification trains and scores it).
  """
  encoders: tuple  # ((name, spec dict), ...) in modality_mask order
  token_dim: int
  fusion: str
  num_heads: int
  head_widths: tuple
  head_dropout: float
  num_outputs: int
  dtype: Any = jnp.float32
  output_offset: float = 0.0
  output_scale: float = 1.0
  head_norm: str = "batch"
  head_activation: str = "relu"
  confidence_widths: tuple = ()

  @nn.compact
  def __call__(self, batch, *, train: bool, mixup=None, noise=None,
               rows=None):
    mix = lambda x: x if mixup is None else (
        mixup[1] * x + (1 - mixup[1]) * x[mixup[0]])
    tokens = []
    for i, (name, spec) in enumerate(self.encoders):
      info = encoder_info(name, spec)
      keys = modalities_lib.KINDS[info.kind].input_keys(name)
      inputs = dict(batch)
      if noise is not None and info.noise == "input":
        for j, k in enumerate(keys):
          inputs[k] = _noisy(batch[k], noise, i, j)
      if info.mixup == "input":
        for k in keys:
          inputs[k] = mix(inputs[k])
      encode = info.build(spec, self.dtype, f"{name}_encoder")
      emb = encode(inputs, name, train, rows)
      if info.mixup == "embedding":
        emb = mix(emb)
      if noise is not None and info.noise == "embedding":
        emb = _noisy(emb, noise, i, len(keys))
      tokens.append(nn.Dense(self.token_dim, dtype=self.dtype,
                             name=f"{name}_token")(emb))
    tokens = jnp.stack(tokens, axis=1)  # [B, M, D]
    present = batch["modality_mask"].astype(tokens.dtype)
    tokens = tokens * present[..., None]
    fused = fusion_lib.FUSIONS[self.fusion](
        num_heads=self.num_heads, dtype=self.dtype, name="fusion")(
            tokens, present, train=train)
    features = fused.reshape(fused.shape[0], -1)
    head = dict(dropout=self.head_dropout,
                batch_norm=self.head_norm == "batch",
                layer_norm=self.head_norm == "layer",
                activation=self.head_activation, final_activation=False,
                dtype=self.dtype)
    logits = MLP(widths=tuple(self.head_widths) + (self.num_outputs,),
                 name="head", **head)(features, train=train, rows=rows)
    logits = logits.astype(jnp.float32)
    if self.confidence_widths:
      confidence = MLP(widths=tuple(self.confidence_widths) + (1,),
                       name="confidence", **head)(
                           jax.lax.stop_gradient(features), train=train,
                           rows=rows)
      logits = jnp.concatenate([logits, confidence.astype(jnp.float32)], -1)
    if self.output_scale != 1.0 or self.output_offset != 0.0:
      logits = logits * self.output_scale + self.output_offset
    return {"logits": logits,
            "features": features.astype(jnp.float32)}


def _noisy(x, noise, i, j):
  """x plus Gaussian noise of std noise[1]; modality i's j-th key draws
  its own stream (j = 0: the stream of its first input key)."""
  rng, std = noise
  rng = jax.random.fold_in(rng, i)
  if j:
    rng = jax.random.fold_in(rng, j)
  return x + std * jax.random.normal(rng, x.shape, x.dtype)


def build_model(cfg, spec=None, targets=None) -> MultiModalModel:
  """Builds the model from `config.model` (an ml_collections ConfigDict).

  With `model.standardize_outputs` (regression), `targets` [N] (the
  training split's labels) set the outputs' offset and scale to their mean
  and standard deviation (without `targets`, a config check, they stay 0
  and 1).

  With the dataset's `spec` (datasets.DatasetSpec), checks that the model's
  modalities are the dataset's, in its order, and that each encoder reads
  its modality's kind. Raises ValueError naming the key.
  """
  missing = [m for m in cfg.modalities if m not in cfg.encoders]
  if missing:
    raise ValueError(f"model.encoders: no encoder for modality {missing[0]}")
  encoders = tuple((m, dict(cfg.encoders[m])) for m in cfg.modalities)
  for m, e in encoders:
    encoder_info(m, e)
  if spec is not None:
    if tuple(cfg.modalities) != tuple(spec.modalities):
      raise ValueError(f"model.modalities: {tuple(cfg.modalities)} are not "
                       f"the dataset's {tuple(spec.modalities)}")
    for m, e in encoders:
      kind, reads = spec.modalities[m].kind, encoder_info(m, e).kind
      if kind != reads:
        raise ValueError(f"model.encoders.{m}.type: '{e['type']}' reads "
                         f"{reads} modalities, the dataset's {m} is a {kind}")
  if cfg.get("head_norm", "batch") not in ("batch", "layer"):
    raise ValueError(f"model.head_norm: '{cfg.head_norm}' is not batch or "
                     "layer")
  if cfg.fusion not in fusion_lib.FUSIONS:
    raise ValueError(f"model.fusion: unknown '{cfg.fusion}' "
                     f"(known: {', '.join(fusion_lib.FUSIONS)})")
  offset, scale = 0.0, 1.0
  if cfg.get("standardize_outputs", False) and targets is not None:
    t = np.asarray(targets, np.float64)
    offset, scale = float(t.mean()), float(t.std()) or 1.0
  return MultiModalModel(
      output_offset=offset, output_scale=scale,
      encoders=encoders, token_dim=cfg.token_dim, fusion=cfg.fusion,
      num_heads=cfg.num_heads, head_widths=tuple(cfg.head_widths),
      head_dropout=cfg.head_dropout, num_outputs=cfg.num_outputs,
      head_norm=cfg.get("head_norm", "batch"),
      head_activation=cfg.get("head_activation", "relu"),
      confidence_widths=tuple(cfg.get("confidence_widths", ()) or ()),
      dtype=jnp.dtype(cfg.get("dtype", "float32")))
