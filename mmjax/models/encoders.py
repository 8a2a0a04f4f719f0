"""Encoder registry: `config.model.encoders.<modality>.type` -> an encoder.

Each entry says which modality kind it reads (mmjax.data.modalities) and
where mixup and test-time noise act on it: on its `input` (the kind's input
features) or on its `embedding` (manifold mixup; inputs that have no
meaningful average, e.g. graphs of different sizes or token ids). A new
encoder is a function decorated with `register_encoder`; nothing else
changes.

A registered builder takes (spec: dict of the config entry, dtype, name) and
returns encode(batch, modality, train, rows) -> embedding [B, D], to be
called inside the parent module's compact __call__; `rows` [B] are the rows
that batch statistics may use (None: all).
"""

import dataclasses
from typing import Callable

from mmjax.models.conv3d import CNNTransformer3d
from mmjax.models.conv3d import ResidualCNNTransformer3d
from mmjax.models.gat import GATEncoder
from mmjax.models.gcn import GCNEncoder
from mmjax.models.kmer import kmer_patch_indices
from mmjax.models.kmer import num_features as kmer_num_features
from mmjax.models.mlp import MLP
from mmjax.models.plaquette import PlaquetteEncoder
from mmjax.models.resattn import ResidualAttentionEncoder
from mmjax.models.transformer import SequenceTransformer

PLACES = ("input", "embedding")


@dataclasses.dataclass(frozen=True)
class EncoderInfo:
  build: Callable
  kind: str    # the modality kind it reads
  mixup: str   # "input" | "embedding"
  noise: str   # "input" | "embedding"


ENCODERS: dict[str, EncoderInfo] = {}


def register_encoder(name, *, kind, mixup, noise):
  """Registers `build(spec, dtype, name)` under the config type `name`."""
  assert mixup in PLACES and noise in PLACES, (mixup, noise)

  def register(build):
    ENCODERS[name] = EncoderInfo(build, kind, mixup, noise)
    return build

  return register


def encoder_info(modality, spec) -> EncoderInfo:
  kind = spec.get("type")
  if kind not in ENCODERS:
    raise ValueError(f"model.encoders.{modality}.type: unknown encoder "
                     f"'{kind}' (known: {', '.join(sorted(ENCODERS))})")
  return ENCODERS[kind]


@register_encoder("gcn", kind="graph", mixup="embedding", noise="input")
def gcn(spec, dtype, name):
  """GCN stack with mean+max pooling (models/gcn.py): [B, 2 widths[-1]] or
  [B, out_features]."""
  enc = GCNEncoder(widths=tuple(spec["widths"]),
                   dropout=spec.get("dropout", 0.0), dtype=dtype,
                   aggregation=spec.get("aggregation", "segment"),
                   out_features=spec.get("out_features", None), name=name)

  def encode(batch, m, train, rows):
    del rows  # No batch statistics.
    return enc(batch[f"{m}_nodes"], batch[f"{m}_senders"],
               batch[f"{m}_receivers"], batch[f"{m}_node_mask"],
               batch[f"{m}_edge_mask"], train=train)

  return encode


@register_encoder("mlp", kind="vector", mixup="input", noise="input")
def mlp(spec, dtype, name):
  """Dense blocks on a feature vector: [B, F] -> [B, widths[-1]]."""
  enc = MLP(widths=tuple(spec["widths"]), dropout=spec.get("dropout", 0.0),
            batch_norm=spec.get("batch_norm", False), dtype=dtype, name=name)
  return lambda batch, m, train, rows: enc(batch[m].astype(dtype),
                                           train=train, rows=rows)


@register_encoder("transformer", kind="sequence", mixup="embedding",
                  noise="input")
def transformer(spec, dtype, name):
  """Pre-LN transformer over a masked sequence, mean+max pooled:
  [B, T, F] (or token ids [B, T]) -> [B, 2 width]."""
  enc = SequenceTransformer(
      width=spec["width"], depth=spec["depth"], num_heads=spec["num_heads"],
      mlp_ratio=spec.get("mlp_ratio", 4), dropout=spec.get("dropout", 0.0),
      vocab_size=spec.get("vocab_size", 0), dtype=dtype, name=name)
  return lambda batch, m, train, rows: enc(batch[m], batch[f"{m}_mask"],
                                           train=train)


@register_encoder("residual_attention", kind="sequence", mixup="embedding",
                  noise="input")
def residual_attention(spec, dtype, name):
  """Reference recipe 004's sequence model (models/resattn.py): Dense
  embedding (+ sinusoidal positions unless `positions` is False), `depth`
  pre-norm residual blocks of BatchNorm, self-attention and a GELU MLP,
  block i with dropout `dropouts[i]` (default 0.1 (i + 1): increasing with
  depth), a final BatchNorm, mean pooled over the real steps:
  [B, T, F] -> [B, width]. BatchNorm statistics use the real steps of
  `rows` only."""
  depth = spec["depth"]
  dropouts = spec.get("dropouts", None)
  if dropouts is None:
    dropouts = tuple(round(0.1 * (i + 1), 10) for i in range(depth))
  enc = ResidualAttentionEncoder(
      width=spec["width"], depth=depth, num_heads=spec["num_heads"],
      mlp_ratio=spec.get("mlp_ratio", 4),
      dropouts=tuple(float(p) for p in dropouts),
      positions=spec.get("positions", True), dtype=dtype, name=name)
  return lambda batch, m, train, rows: enc(batch[m], batch[f"{m}_mask"],
                                           train=train, rows=rows)


@register_encoder("kmer_transformer", kind="sequence", mixup="embedding",
                  noise="embedding")
def kmer_transformer(spec, dtype, name):
  """Reference recipe 003's genome transformer (models/kmer.py): base ids
  [B, L] -> k-mer patch tokens [B, L / patch, patch * sum(4^k)] -> a pre-LN
  transformer with sinusoidal positions, mean+max pooled: [B, 2 width].
  `scale_embedding` (default True): the token embedding times sqrt(width)
  (models/transformer.py says why). `stop_flags` (default False): the
  modality is [B, L, 2], base ids and per-position stop-codon flags
  (dataset.stop_flags), each flag one more token feature per position."""
  ks, patch = tuple(spec.get("ks", (3, 4))), spec.get("patch", 3)
  flags = bool(spec.get("stop_flags", False))
  enc = SequenceTransformer(
      width=spec["width"], depth=spec["depth"], num_heads=spec["num_heads"],
      mlp_ratio=spec.get("mlp_ratio", 4), dropout=spec.get("dropout", 0.0),
      scale_embedding=spec.get("scale_embedding", True),
      multi_hot=kmer_num_features(ks, patch, flags), dtype=dtype, name=name)

  def encode(batch, m, train, rows):
    del rows  # No batch statistics.
    x = batch[m]
    if (x.ndim == 3) != flags:
      raise ValueError(f"model.encoders.{m}.stop_flags is {flags} but the "
                       f"dataset's {m} has shape {x.shape[1:]} (set "
                       "dataset.stop_flags and the encoder's together)")
    bases, bits = (x[..., 0], x[..., 1]) if flags else (x, None)
    idx, mask = kmer_patch_indices(bases, batch[f"{m}_mask"], ks, patch,
                                   bits)
    return enc(idx, mask, train=train)

  return encode


@register_encoder("cnn3d_transformer", kind="grid", mixup="input",
                  noise="input")
def cnn3d_transformer(spec, dtype, name):
  """AdvancedTransformerCNN (reference recipe 002, models/conv3d.py): a
  multi-scale 3D CNN with channel and spatial attention, its D/4 feature
  map as tokens of a pre-LN transformer, mean pooled:
  [B, D, H, W, C] -> [B, width]."""
  enc = CNNTransformer3d(
      branch_channels=spec.get("branch_channels", 32),
      stage_channels=spec.get("stage_channels", 256),
      channel_attention=spec.get("channel_attention", True),
      spatial_attention=spec.get("spatial_attention", True),
      reduction=spec.get("reduction", 16),
      spatial_kernel=spec.get("spatial_kernel", 7),
      width=spec.get("width", 256), depth=spec.get("depth", 4),
      num_heads=spec.get("num_heads", 8), mlp_ratio=spec.get("mlp_ratio", 4),
      dropout=spec.get("dropout", 0.0), dtype=dtype, name=name)
  return lambda batch, m, train, rows: enc(batch[m], train=train, rows=rows)


@register_encoder("residual_cnn3d", kind="grid", mixup="input", noise="input")
def residual_cnn3d(spec, dtype, name):
  """ResidualTransformerCNN (reference recipe 002, models/conv3d.py): a
  residual 3D CNN per channel component (`components`: channel counts;
  default one of all channels) and a transformer across the components'
  tokens: [B, D, H, W, C] -> [B, K width]."""
  comps = spec.get("components", None)
  enc = ResidualCNNTransformer3d(
      components=tuple(comps) if comps else None,
      widths=tuple(spec.get("widths", (32, 64, 128))),
      strides=tuple(spec.get("strides", (1, 2, 2))),
      width=spec.get("width", 128), depth=spec.get("depth", 2),
      num_heads=spec.get("num_heads", 4), mlp_ratio=spec.get("mlp_ratio", 4),
      dropout=spec.get("dropout", 0.0), dtype=dtype, name=name)
  return lambda batch, m, train, rows: enc(batch[m], train=train, rows=rows)


@register_encoder("gat", kind="graph", mixup="embedding", noise="input")
def gat(spec, dtype, name):
  """GAT stack with ELU and mean+max pooling (models/gat.py): [B, 2 out],
  out = widths[-1] (x heads[-1] when the last layer concatenates).
  `edge_features`: the attention also reads batch[f"{m}_edges"]."""
  enc = GATEncoder(widths=tuple(spec["widths"]), heads=spec.get("heads", 1),
                   concat=spec.get("concat", True),
                   dropout=spec.get("dropout", 0.0),
                   attention_dropout=spec.get("attention_dropout", 0.0),
                   dtype=dtype, name=name)

  def encode(batch, m, train, rows):
    del rows  # No batch statistics.
    edges = batch[f"{m}_edges"] if spec.get("edge_features", False) else None
    return enc(batch[f"{m}_nodes"], batch[f"{m}_senders"],
               batch[f"{m}_receivers"], batch[f"{m}_node_mask"],
               batch[f"{m}_edge_mask"], edges, train=train)

  return encode


@register_encoder("plaquette", kind="graph", mixup="embedding", noise="input")
def plaquette(spec, dtype, name):
  """A shared GELU MLP on every plaquette of the k-space mesh of unit
  vectors, pooled (models/plaquette.py; materials_tb's `kspace` only):
  nodes [B, 64, 64] -> [B, widths[-1]]. `inputs` "invariants" (default:
  per triangle the triple product and the pairwise dot products) or
  "coordinates" (the 4 corners); `neighbourhood` "plaquette" (default) or
  "node" (each mesh point alone, with inputs "coordinates"); `pooling`
  "sum" (default), "mean" or "max"; `flat_zero` (default True): phi minus
  its value on a flat plaquette."""
  enc = PlaquetteEncoder(
      widths=tuple(spec.get("widths", (64, 64))),
      inputs=spec.get("inputs", "invariants"),
      neighbourhood=spec.get("neighbourhood", "plaquette"),
      pooling=spec.get("pooling", "sum"),
      flat_zero=bool(spec.get("flat_zero", True)), dtype=dtype, name=name)

  def encode(batch, m, train, rows):
    del train, rows  # No dropout, no batch statistics.
    return enc(batch[f"{m}_nodes"])

  return encode
