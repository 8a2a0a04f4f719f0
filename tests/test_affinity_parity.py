"""Parity of reference recipe 002's layers (3D convolutions, attention
blocks, GAT, transformer layers) with PyTorch / PyTorch Geometric on equal
weights and inputs, plus the shapes and parameter groups of its encoders.

Reference values come from torch modules built here; Flax parameters are
copied into them. A Flax conv kernel is [k, k, k, C_in, C_out] and acts on
channels-last grids [B, D, H, W, C]; a torch Conv3d weight is
[C_out, C_in, k, k, k] on [B, C, D, H, W].
"""

import math

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch
import torch_geometric.nn as pyg_nn

from mmjax.models import conv3d
from mmjax.models import encoders
from mmjax.models import gat
from mmjax.models.multimodal import build_model
from mmjax.models.transformer import TransformerBlock
from mmjax.training import optim



from parity_helpers import ATOL, RTOL, close, highest_precision, t, unfreeze  # pylint: disable=unused-import


def to_ncdhw(x):
  return t(np.moveaxis(np.asarray(x), -1, 1))


def from_ncdhw(x):
  return np.moveaxis(x.detach().numpy(), 1, -1)


def torch_conv(p, stride=1, padding=0, dilation=1):
  """torch.nn.Conv3d holding a Flax conv's parameters."""
  k = np.asarray(p["kernel"])
  conv = torch.nn.Conv3d(k.shape[3], k.shape[4], k.shape[0], stride=stride,
                         padding=padding, dilation=dilation,
                         bias="bias" in p)
  with torch.no_grad():
    conv.weight.copy_(t(k.transpose(4, 3, 0, 1, 2)))
    if "bias" in p:
      conv.bias.copy_(t(p["bias"]))
  return conv


def torch_bn(p, stats=None):
  bn = torch.nn.BatchNorm3d(p["scale"].shape[0])  # momentum 0.1, eps 1e-5
  with torch.no_grad():
    bn.weight.copy_(t(p["scale"]))
    bn.bias.copy_(t(p["bias"]))
    if stats is not None:
      bn.running_mean.copy_(t(stats["mean"]))
      bn.running_var.copy_(t(stats["var"]))
  return bn


def torch_linear(p):
  k = np.asarray(p["kernel"])
  lin = torch.nn.Linear(k.shape[0], k.shape[1], bias="bias" in p)
  with torch.no_grad():
    lin.weight.copy_(t(k).T)
    if "bias" in p:
      lin.bias.copy_(t(p["bias"]))
  return lin


def np_init(module, seed, *args, scale=0.3, **kwargs):
  """The module's variables with random numpy values.

  Shapes come from jax.eval_shape of `module.init`, so no JAX random
  number is drawn: XLA on CPU compiles threefry slowly, and every value
  here should be non-trivial anyway (BN statistics and affine parameters,
  biases and attention vectors away from their constant initial values).
  """
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(
      lambda: module.init(jax.random.PRNGKey(0), *args, **kwargs))

  def draw(path, x):
    name = optim.param_path(path).split("/")[-1]
    parent = optim.param_path(path).split("/")[-2]
    if name == "var":
      v = rng.uniform(0.5, 2.0, x.shape)
    elif name == "scale":
      v = rng.uniform(0.5, 1.5, x.shape)
    elif name in ("bias", "mean"):
      v = rng.normal(0, scale, x.shape)
    elif name == "kernel":
      fan_in = (x.shape[0] if parent in ("query", "key", "value")
                else np.prod(x.shape[:-1]))
      v = rng.normal(0, 1 / np.sqrt(fan_in), x.shape)
    else:  # attention vectors, embeddings
      v = rng.normal(0, 1.0, x.shape)
    return jnp.asarray(v.astype(np.float32))

  return unfreeze(jax.tree_util.tree_map_with_path(draw, shapes))


# --------------------------------------------------------------------------
# Convolutions
# --------------------------------------------------------------------------


@pytest.mark.parametrize("k,stride,padding,dilation", [
    (3, 1, "same", 1), (3, 2, 1, 1), (5, 1, "same", 1), (3, 1, "same", 2),
    (3, 2, 2, 2), (1, 2, 0, 1), (3, 1, 0, 1)])
def test_conv3d_matches_torch(k, stride, padding, dilation):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 8, 7, 6, 3)).astype(np.float32)
  layer = conv3d.conv3d(4, k, stride=stride, padding=padding,
                        dilation=dilation)
  params = np_init(layer, 0, x)["params"]
  out = layer.apply({"params": params}, x)
  pad = dilation * (k - 1) // 2 if padding == "same" else padding
  conv = torch_conv(params, stride, pad, dilation)
  with torch.no_grad():
    want = from_ncdhw(conv(to_ncdhw(x)))
  assert out.shape == want.shape
  close(out, want)
  # Torch's own 'same' (stride 1 only) pads identically.
  if padding == "same" and stride == 1:
    conv = torch.nn.Conv3d(3, 4, k, padding="same", dilation=dilation)
    with torch.no_grad():
      conv.weight.copy_(t(np.asarray(params["kernel"]).transpose(4, 3, 0, 1,
                                                                  2)))
      conv.bias.copy_(t(params["bias"]))
      close(out, from_ncdhw(conv(to_ncdhw(x))))


class TorchMultiScale(torch.nn.Module):
  """The reference recipe's multi-scale block."""

  def __init__(self, p, stats=None):
    super().__init__()
    self.point = torch_conv(p["point"])
    self.local = torch_conv(p["local"], padding=1)
    self.regional = torch_conv(p["regional"], padding=2)
    self.dilated = torch_conv(p["dilated"], padding=2, dilation=2)
    self.bn = torch_bn(p["bn"], stats)

  def forward(self, x):
    feats = [self.point(x), self.local(x), self.regional(x), self.dilated(x)]
    return torch.relu(self.bn(torch.cat(feats, dim=1)))


def _multiscale_setup(seed):
  rng = np.random.default_rng(seed)
  x = (rng.normal(size=(4, 6, 6, 6, 3)) * 2 + 0.5).astype(np.float32)
  block = conv3d.MultiScaleBlock(branch_channels=4)
  variables = np_init(block, seed, x, train=False)
  return block, variables, x


def test_multiscale_block_eval_matches_torch():
  block, v, x = _multiscale_setup(1)
  out = block.apply(v, x, train=False)
  ref = TorchMultiScale(v["params"], v["batch_stats"]["bn"]).eval()
  with torch.no_grad():
    close(out, from_ncdhw(ref(to_ncdhw(x))))


def test_multiscale_block_train_matches_torch():
  block, v, x = _multiscale_setup(2)
  out, upd = block.apply(v, x, train=True, mutable=["batch_stats"])
  ref = TorchMultiScale(v["params"], v["batch_stats"]["bn"]).train()
  with torch.no_grad():
    close(out, from_ncdhw(ref(to_ncdhw(x))))
  # Running statistics after one step: torch's unbiased variance over
  # B x D x H x W values per channel.
  close(upd["batch_stats"]["bn"]["mean"], ref.bn.running_mean)
  close(upd["batch_stats"]["bn"]["var"], ref.bn.running_var)


def test_conv_batchnorm_rows_use_only_the_selected_rows():
  block, v, x = _multiscale_setup(3)
  # Rows 1 and 3 far from the others: any leak changes the statistics.
  x[[1, 3]] = x[[1, 3]] * 5 + 7
  rows = np.array([1, 0, 1, 0], np.float32)
  out, upd = block.apply(v, x, train=True, rows=jnp.asarray(rows),
                         mutable=["batch_stats"])
  ref = TorchMultiScale(v["params"], v["batch_stats"]["bn"]).train()
  sel = rows > 0
  with torch.no_grad():
    want = from_ncdhw(ref(to_ncdhw(x[sel])))
  close(np.asarray(out)[sel], want)
  close(upd["batch_stats"]["bn"]["mean"], ref.bn.running_mean)
  close(upd["batch_stats"]["bn"]["var"], ref.bn.running_var)
  # The same statistics from all rows are different.
  _, upd_all = block.apply(v, x, train=True, mutable=["batch_stats"])
  assert not np.allclose(upd_all["batch_stats"]["bn"]["mean"],
                         upd["batch_stats"]["bn"]["mean"], atol=1e-2)


class TorchResidualBlock(torch.nn.Module):

  def __init__(self, p, s, stride):
    super().__init__()
    self.conv1 = torch_conv(p["conv_bn1"]["conv"], stride, 1)
    self.bn1 = torch_bn(p["conv_bn1"]["bn"], s["conv_bn1"]["bn"])
    self.conv2 = torch_conv(p["conv2"], 1, 1)
    self.bn2 = torch_bn(p["bn2"], s["bn2"])
    self.proj = torch.nn.Sequential(
        torch_conv(p["proj"], stride, 0), torch_bn(p["proj_bn"], s["proj_bn"]))

  def forward(self, x):
    h = torch.relu(self.bn1(self.conv1(x)))
    return torch.relu(self.bn2(self.conv2(h)) + self.proj(x))


@pytest.mark.parametrize("train", [False, True])
def test_residual_block_matches_torch(train):
  rng = np.random.default_rng(4)
  x = rng.normal(size=(2, 8, 8, 8, 3)).astype(np.float32)
  block = conv3d.ResidualBlock3d(5, stride=2)
  v = np_init(block, 4, x, train=False)
  out = block.apply(v, x, train=train, mutable=["batch_stats"])[0]
  assert out.shape == (2, 4, 4, 4, 5)
  ref = TorchResidualBlock(v["params"], v["batch_stats"], 2).train(train)
  with torch.no_grad():
    close(out, from_ncdhw(ref(to_ncdhw(x))))


# --------------------------------------------------------------------------
# Channel and spatial attention
# --------------------------------------------------------------------------


def test_channel_attention_matches_torch():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(3, 4, 5, 6, 32)).astype(np.float32)
  layer = conv3d.ChannelAttention(reduction=8)
  params = np_init(layer, 5, x)["params"]
  assert params["squeeze"]["kernel"].shape == (32, 4)
  out = layer.apply({"params": params}, x)
  squeeze = torch_linear(params["squeeze"])
  excite = torch_linear(params["excite"])
  xt = to_ncdhw(x)
  with torch.no_grad():
    s = torch.nn.functional.adaptive_avg_pool3d(xt, 1).flatten(1)
    s = torch.sigmoid(excite(torch.relu(squeeze(s))))
    close(out, from_ncdhw(xt * s[:, :, None, None, None]))


@pytest.mark.parametrize("k", [7, 3])
def test_spatial_attention_matches_torch(k):
  rng = np.random.default_rng(6)
  x = rng.normal(size=(2, 9, 8, 7, 6)).astype(np.float32)
  layer = conv3d.SpatialAttention(kernel_size=k)
  params = np_init(layer, 6, x)["params"]
  assert set(params["conv"]) == {"kernel"}  # CBAM's bias-free conv
  out = layer.apply({"params": params}, x)
  conv = torch_conv(params["conv"], padding=k // 2)
  xt = to_ncdhw(x)
  with torch.no_grad():
    maps = torch.cat([xt.mean(1, keepdim=True), xt.amax(1, keepdim=True)], 1)
    close(out, from_ncdhw(xt * torch.sigmoid(conv(maps))))


# --------------------------------------------------------------------------
# Positional encoding and transformer layer
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shape,width", [((3, 4, 5), 12), ((6, 6, 6), 256),
                                         ((2, 3, 2), 10)])
def test_positional_encoding_3d_formula(shape, width):
  d, h, w = shape
  pe = np.asarray(conv3d.positional_encoding_3d(d, h, w, width))
  assert pe.shape == (d, h, w, width)
  close(pe, pe_formula(d, h, w, width), rtol=1e-6, atol=1e-6)


def pe_formula(d, h, w, width):
  """positional_encoding_3d's documented formula, element by element."""
  part = 2 * math.ceil(width / 6)
  out = np.zeros((d, h, w, 3 * part))
  for i in range(d):
    for j in range(h):
      for k in range(w):
        for a, pos in enumerate((i, j, k)):
          for m in range(part // 2):
            angle = pos / 10000 ** (2 * m / part)
            out[i, j, k, a * part + 2 * m] = math.sin(angle)
            out[i, j, k, a * part + 2 * m + 1] = math.cos(angle)
  return out[..., :width].astype(np.float32)


def torch_encoder_layer(p, d, heads, ffn):
  # TransformerBlock's LayerNorms keep Flax's epsilon, 1e-6.
  layer = torch.nn.TransformerEncoderLayer(
      d, heads, ffn, dropout=0.0, activation="gelu", batch_first=True,
      norm_first=True, layer_norm_eps=1e-6)
  att = p["attention"]
  k = lambda n: t(att[n]["kernel"]).reshape(d, d).T
  b = lambda n: t(att[n]["bias"]).reshape(d)
  with torch.no_grad():
    layer.self_attn.in_proj_weight.copy_(
        torch.cat([k("query"), k("key"), k("value")]))
    layer.self_attn.in_proj_bias.copy_(
        torch.cat([b("query"), b("key"), b("value")]))
    layer.self_attn.out_proj.weight.copy_(
        t(att["out"]["kernel"]).reshape(d, d).T)
    layer.self_attn.out_proj.bias.copy_(t(att["out"]["bias"]))
    for ln, name in ((layer.norm1, "ln_att"), (layer.norm2, "ln_mlp")):
      ln.weight.copy_(t(p[name]["scale"]))
      ln.bias.copy_(t(p[name]["bias"]))
    for lin, name in ((layer.linear1, "mlp_in"), (layer.linear2, "mlp_out")):
      lin.weight.copy_(t(p[name]["kernel"]).T)
      lin.bias.copy_(t(p[name]["bias"]))
  return layer.eval()


def test_transformer_block_matches_torch_encoder_layer():
  d, heads, tokens = 16, 4, 27
  rng = np.random.default_rng(7)
  x = rng.normal(size=(2, tokens, d)).astype(np.float32)
  mask = np.ones((2, tokens), np.float32)
  block = TransformerBlock(heads, mlp_ratio=3)
  params = np_init(block, 7, x, mask, train=False)["params"]
  out = block.apply({"params": params}, x, mask, train=False)
  ref = torch_encoder_layer(params, d, heads, 3 * d)
  with torch.no_grad():
    close(out, ref(t(x)), rtol=1e-5, atol=2e-5)


class TorchAdvancedTransformerCNN(torch.nn.Module):
  """AdvancedTransformerCNN up to its head, from the torch layers above."""

  def __init__(self, p, stats, heads, ffn):
    super().__init__()
    cnn, cs = p["cnn"], stats["cnn"]
    self.multiscale = TorchMultiScale(cnn["multiscale"], cs["multiscale"]["bn"])
    self.squeeze = torch_linear(cnn["channel_attention"]["squeeze"])
    self.excite = torch_linear(cnn["channel_attention"]["excite"])
    self.spatial = torch_conv(cnn["spatial_attention"]["conv"], padding=3)
    self.convs = torch.nn.ModuleList(
        torch.nn.Sequential(torch_conv(cnn[n]["conv"], s, 1),
                            torch_bn(cnn[n]["bn"], cs[n]["bn"]),
                            torch.nn.ReLU())
        for n, s in (("down1", 2), ("stage", 1), ("down2", 2)))
    tr = p["transformer"]
    self.embed = torch_linear(tr["embed"])
    width = tr["embed"]["kernel"].shape[1]
    self.blocks = torch.nn.ModuleList(
        torch_encoder_layer(tr[f"block{i}"], width, heads, ffn)
        for i in range(2))
    self.ln = torch.nn.LayerNorm(width)  # eps 1e-5
    with torch.no_grad():
      self.ln.weight.copy_(t(tr["ln_out"]["scale"]))
      self.ln.bias.copy_(t(tr["ln_out"]["bias"]))

  def forward(self, x):
    x = self.multiscale(x)
    s = torch.sigmoid(self.excite(torch.relu(self.squeeze(x.mean((2, 3, 4))))))
    x = x * s[:, :, None, None, None]
    maps = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
    x = x * torch.sigmoid(self.spatial(maps))
    for conv in self.convs:
      x = conv(x)
    _, _, d, h, w = x.shape
    tokens = self.embed(x.flatten(2).transpose(1, 2))
    tokens = tokens + t(pe_formula(d, h, w, tokens.shape[-1])).reshape(
        d * h * w, -1)
    for block in self.blocks:
      tokens = block(tokens)
    return self.ln(tokens).mean(1)


def test_cnn3d_transformer_matches_torch_composition():
  x = np.random.default_rng(19).normal(size=(2, 8, 8, 8, 3)).astype(
      np.float32)
  enc = conv3d.CNNTransformer3d(branch_channels=4, stage_channels=8,
                                reduction=4, width=12, depth=2, num_heads=3,
                                mlp_ratio=2)
  v = np_init(enc, 19, x, train=False)
  out = jax.jit(lambda v, x: enc.apply(v, x, train=False))(v, x)
  ref = TorchAdvancedTransformerCNN(v["params"], v["batch_stats"], 3, 24)
  with torch.no_grad():
    close(out, ref.eval()(to_ncdhw(x)))


# --------------------------------------------------------------------------
# GAT
# --------------------------------------------------------------------------

GN, GE, GF, GG = 6, 14, 5, 3


def padded_gat_graphs(seed):
  """Two padded graphs and their unpadded pieces for PyG.

  Graph 0: 5 real nodes, 9 real edges including a duplicate and an explicit
  self loop (PyG drops it before adding its own), node 4 without incoming
  edges. Graph 1: 3 real nodes, 4 real edges. Padded edges point at real
  nodes (some 0 -> 0 as the pipeline pads, others between distinct real
  nodes, so they would enter a real node's softmax unless masked) and carry
  large edge features; padded nodes carry large features.
  """
  rng = np.random.default_rng(seed)
  nodes = rng.normal(size=(2, GN, GF)).astype(np.float32)
  edges = rng.normal(size=(2, GE, GG)).astype(np.float32)
  s0 = [0, 1, 2, 3, 1, 1, 2, 3, 0]
  r0 = [1, 2, 3, 0, 2, 0, 2, 1, 3]   # 1 -> 2 twice, 2 -> 2 a self loop
  s1 = [0, 1, 2, 2]
  r1 = [1, 2, 0, 1]
  senders = np.zeros((2, GE), np.int32)
  receivers = np.zeros((2, GE), np.int32)
  node_mask = np.zeros((2, GN), np.float32)
  edge_mask = np.zeros((2, GE), np.float32)
  real = []
  for b, (s, r, n) in enumerate(((s0, r0, 5), (s1, r1, 3))):
    e = len(s)
    senders[b, :e], receivers[b, :e] = s, r
    senders[b, e + 1::2] = 1  # padded edges 1 -> 0 between real nodes
    node_mask[b, :n] = 1
    edge_mask[b, :e] = 1
    nodes[b, n:] = rng.normal(scale=100.0, size=(GN - n, GF))
    edges[b, e:] = rng.normal(scale=100.0, size=(GE - e, GG))
    real.append((nodes[b, :n].copy(), np.array([s, r], np.int64),
                 edges[b, :e].copy()))
  return dict(nodes=nodes, senders=senders, receivers=receivers,
              node_mask=node_mask, edge_mask=edge_mask, edges=edges), real


def pyg_gat(p, fin, out, heads, concat, edge_dim):
  conv = pyg_nn.GATConv(fin, out, heads=heads, concat=concat,
                        edge_dim=edge_dim)
  with torch.no_grad():
    conv.lin.weight.copy_(t(p["lin"]["kernel"]).T)
    conv.att_src.copy_(t(p["att_src"])[None])
    conv.att_dst.copy_(t(p["att_dst"])[None])
    if edge_dim:
      conv.lin_edge.weight.copy_(t(p["lin_edge"]["kernel"]).T)
      conv.att_edge.copy_(t(p["att_edge"])[None])
    conv.bias.copy_(t(p["bias"]))
  return conv.eval()


def _gat_args(g, with_edges):
  return ([jnp.asarray(g[k]) for k in ("nodes", "senders", "receivers",
                                        "node_mask", "edge_mask")]
          + [jnp.asarray(g["edges"]) if with_edges else None])


@pytest.mark.parametrize("heads,concat", [(1, True), (4, True), (4, False)])
@pytest.mark.parametrize("edge_dim", [None, GG])
def test_gatconv_matches_pyg(heads, concat, edge_dim):
  g, real = padded_gat_graphs(8)
  layer = gat.GATConv(3, heads=heads, concat=concat)
  args = _gat_args(g, edge_dim)
  params = np_init(layer, 9, *args, train=False, scale=1.0)["params"]
  out = np.asarray(layer.apply({"params": params}, *args, train=False))
  assert out.shape == (2, GN, 3 * heads if concat else 3)
  conv = pyg_gat(params, GF, 3, heads, concat, edge_dim)
  for b, (x, ei, ea) in enumerate(real):
    with torch.no_grad():
      want = conv(t(x), torch.from_numpy(ei), t(ea) if edge_dim else None)
    close(out[b, :len(x)], want)
    assert np.all(out[b, len(x):] == 0.0)


def test_gatconv_padded_edges_never_enter_the_softmax():
  g, _ = padded_gat_graphs(10)
  layer = gat.GATConv(3, heads=2)
  args = _gat_args(g, True)
  params = np_init(layer, 10, *args, train=False)["params"]
  out = layer.apply({"params": params}, *args, train=False)
  # Moving the padded edges onto other real nodes changes nothing.
  g2 = dict(g)
  g2["senders"] = np.where(g["edge_mask"] > 0, g["senders"], 2)
  g2["receivers"] = np.where(g["edge_mask"] > 0, g["receivers"], 1)
  out2 = layer.apply({"params": params}, *_gat_args(g2, True), train=False)
  close(out2, out, rtol=0, atol=0)
  # Unmasking them does (the check above is not vacuous).
  g3 = dict(g2, edge_mask=np.ones_like(g["edge_mask"]))
  out3 = layer.apply({"params": params}, *_gat_args(g3, True), train=False)
  assert not np.allclose(out3, out)


def test_gatconv_gradients_match_pyg():
  g, real = padded_gat_graphs(11)
  layer = gat.GATConv(3, heads=2)
  args = _gat_args(g, True)
  params = np_init(layer, 12, *args, train=False, scale=1.0)["params"]
  proj = np.random.default_rng(13).normal(size=(2, GN, 6)).astype(np.float32)

  def loss(params, nodes):
    out = layer.apply({"params": params}, nodes, *args[1:], train=False)
    return jnp.sum(jnp.tanh(out) * proj * g["node_mask"][..., None])

  val, (gp, gx) = jax.value_and_grad(loss, argnums=(0, 1))(params, args[0])
  conv = pyg_gat(params, GF, 3, 2, True, GG)
  tl = 0
  xs = []
  for b, (x, ei, ea) in enumerate(real):
    xt = t(x).requires_grad_(True)
    xs.append(xt)
    tl = tl + torch.sum(torch.tanh(conv(xt, torch.from_numpy(ei), t(ea)))
                        * t(proj[b, :len(x)]))
  tl.backward()
  close(val, tl, atol=1e-4)
  gx = np.asarray(gx)
  for b, xt in enumerate(xs):
    close(gx[b, :len(xt)], xt.grad)
    assert np.all(gx[b, len(xt):] == 0.0)
  close(gp["lin"]["kernel"], conv.lin.weight.grad.T)
  close(gp["att_src"], conv.att_src.grad[0])
  close(gp["att_edge"], conv.att_edge.grad[0])
  close(gp["lin_edge"]["kernel"], conv.lin_edge.weight.grad.T)


def test_gat_encoder_matches_pyg_stack():
  g, real = padded_gat_graphs(14)
  enc = gat.GATEncoder(widths=(4, 3), heads=(2, 1), concat=True)
  args = _gat_args(g, True)
  params = np_init(enc, 15, *args, train=False)["params"]
  out = np.asarray(enc.apply({"params": params}, *args, train=False))
  assert out.shape == (2, 6)
  convs = [pyg_gat(params["conv0"], GF, 4, 2, True, GG),
           pyg_gat(params["conv1"], 8, 3, 1, True, GG)]
  for b, (x, ei, ea) in enumerate(real):
    h = t(x)
    with torch.no_grad():
      for conv in convs:
        h = torch.nn.functional.elu(conv(h, torch.from_numpy(ei), t(ea)))
    close(out[b], torch.cat([h.mean(0), h.amax(0)]))


# --------------------------------------------------------------------------
# Encoders and the hybrid model
# --------------------------------------------------------------------------


def _param_count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize("size", [12, 24])
def test_grid_encoder_shapes_at_default_size(size):
  batch = {"complex": jax.ShapeDtypeStruct((2, size, size, size, 16),
                                           jnp.float32)}
  for name, spec, dim in (("cnn3d_transformer", {}, 256),
                          ("residual_cnn3d", {}, 128),
                          ("residual_cnn3d", {"components": (7, 9)}, 256)):
    spec = dict(spec, type=name)
    info = encoders.encoder_info("complex", spec)
    assert info.kind == "grid"

    class Wrap(flax.linen.Module):
      @flax.linen.compact
      def __call__(self, batch, train):
        return info.build(spec, jnp.float32, "complex_encoder")(
            batch, "complex", train, None)

    v = jax.eval_shape(lambda b: Wrap().init(jax.random.PRNGKey(0), b,
                                             train=False), batch)
    out = jax.eval_shape(lambda v, b: Wrap().apply(v, b, train=False), v,
                         batch)
    assert out.shape == (2, dim), (name, out.shape)
    if name == "cnn3d_transformer":
      big = _param_count(v["params"])
    elif "components" not in spec:
      assert _param_count(v["params"]) < big / 2


def test_cnn3d_transformer_tokens_follow_the_grid():
  # 12^3 -> 3^3 tokens: the position code and pooling see 27 tokens.
  enc = conv3d.CNNTransformer3d(branch_channels=2, stage_channels=8, width=8,
                                depth=1, num_heads=2)
  x = np.random.default_rng(16).normal(size=(2, 12, 12, 12, 3))
  v = np_init(enc, 16, x, train=False)
  fmap = jax.eval_shape(lambda v, x: enc.apply(
      v, x, train=False, capture_intermediates=True)[1], v, x)[
          "intermediates"]["cnn"]["__call__"][0]
  assert fmap.shape == (2, 3, 3, 3, 8)
  out, _ = jax.jit(lambda v, x: enc.apply(
      v, x, train=True, rows=jnp.array([1.0, 0.0]),
      mutable=["batch_stats"]))(v, x)
  assert out.shape == (2, 8) and np.all(np.isfinite(out))


def hybrid_config():
  c = ml_collections.ConfigDict()
  c.modalities = ("complex", "ligand")
  c.encoders = ml_collections.ConfigDict({
      "complex": dict(type="cnn3d_transformer", branch_channels=2,
                      stage_channels=8, width=16, depth=2, num_heads=2),
      "ligand": dict(type="gat", widths=(4, 4), heads=(2, 1),
                     edge_features=True)})
  c.token_dim = 8
  c.fusion = "self_attention"
  c.num_heads = 2
  c.head_widths = (16, 8, 8, 8, 8)   # 6 Dense layers with the output
  c.head_dropout = 0.0
  c.num_outputs = 1
  return c


def test_hybrid_cnn_gnn_transformer_through_multimodal_model():
  g, _ = padded_gat_graphs(17)
  rng = np.random.default_rng(17)
  batch = {"complex": rng.normal(size=(2, 8, 8, 8, 3)).astype(np.float32),
           "modality_mask": np.ones((2, 2), np.float32)}
  batch.update({f"ligand_{k}": v for k, v in g.items()})
  model = build_model(hybrid_config())
  v = np_init(model, 17, batch, train=False)
  paths = [optim.param_path(k) for k, _ in
           jax.tree_util.tree_flatten_with_path(v["params"])[0]]
  assert "complex_encoder/cnn/multiscale/local/kernel" in paths
  assert "complex_encoder/transformer/block0/mlp_in/kernel" in paths
  assert "ligand_encoder/conv0/att_edge" in paths
  groups = [(".*/cnn/.*", 0.5), (".*/transformer/.*", 1.5)]
  mults = optim.lr_mult_tree(optim.parse_lr_mults(groups), v["params"])
  flat = {optim.param_path(k): m for k, m in
          jax.tree_util.tree_flatten_with_path(mults)[0]}
  assert flat["complex_encoder/cnn/down2/conv/kernel"] == 0.5
  assert flat["complex_encoder/transformer/embed/kernel"] == 1.5
  assert flat["fusion/attention/query/kernel"] == 1.0
  assert flat["head/dense5/kernel"] == 1.0

  def loss(params):
    out, _ = model.apply(
        {**v, "params": params}, batch, train=True,
        mixup=(jnp.array([1, 0]), 0.7), noise=(jax.random.PRNGKey(1), 0.1),
        rows=jnp.array([1.0, 1.0]), mutable=["batch_stats"])
    return jnp.sum(out["logits"] ** 2), out

  (_, out), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
      v["params"])
  assert out["logits"].shape == (2, 1)
  assert out["features"].shape == (2, 16)
  assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(grads))
  # The ligand graph reaches the prediction.
  assert np.any(np.asarray(grads["ligand_encoder"]["conv0"]["att_edge"]) != 0)


def test_grid_encoders_run_in_bfloat16():
  x = np.random.default_rng(18).normal(size=(2, 4, 4, 4, 4))
  for enc in (conv3d.CNNTransformer3d(2, 4, width=8, depth=1, num_heads=2,
                                      dtype=jnp.bfloat16),
              conv3d.ResidualCNNTransformer3d(
                  components=(1, 3), widths=(4, 8), strides=(2, 2), width=8,
                  depth=1, num_heads=2, dtype=jnp.bfloat16)):
    shapes = jax.eval_shape(lambda enc=enc: enc.init(jax.random.PRNGKey(0),
                                                     x, train=False))
    assert all(p.dtype == jnp.float32 for p in
               jax.tree_util.tree_leaves(shapes["params"]))
    v = np_init(enc, 18, x, train=False)
    out, _ = jax.jit(lambda v, x, enc=enc: enc.apply(
        v, x, train=True, mutable=["batch_stats"]))(v, x)
    assert out.dtype == jnp.bfloat16 and np.all(np.isfinite(
        np.asarray(out, np.float32)))


@pytest.mark.parametrize("k,stride,padding,dilation",
                         [(1, 1, 0, 1), (3, 1, 1, 1), (3, 2, 1, 1),
                          (5, 1, 2, 1), (3, 1, 2, 2), (3, 2, 0, 1),
                          (7, 1, 3, 1)])
def test_conv3d_depth_slices_equal_native(k, stride, padding, dilation):
  """The CPU path (2D convolution + shifted sums) is XLA's 3D convolution,
  values and gradients."""
  x = jnp.asarray(np.random.default_rng(0).normal(
      size=(2, 7, 6, 5, 3)).astype(np.float32))
  layers = {impl: conv3d.Conv3d(4, k, stride=stride, padding=padding,
                                dilation=dilation, impl=impl)
            for impl in ("native", "depth_slices")}
  params = layers["native"].init(jax.random.key(0), x)
  outs = {impl: layer.apply(params, x) for impl, layer in layers.items()}
  np.testing.assert_allclose(outs["depth_slices"], outs["native"],
                             rtol=1e-5, atol=1e-5)
  grads = {impl: jax.grad(lambda p, x: (layer.apply(p, x) ** 2).sum(),
                          argnums=(0, 1))(params, x)
           for impl, layer in layers.items()}
  for a, b in zip(jax.tree.leaves(grads["depth_slices"]),
                  jax.tree.leaves(grads["native"])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
