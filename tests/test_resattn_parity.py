"""Parity of the `residual_attention` encoder (reference recipe 004's
sequence model, mmjax/models/resattn.py) with a PyTorch model of the same
layers, on equal weights and inputs: train- and eval-mode outputs, the
BatchNorm running statistics, and BatchNorm statistics restricted to the
counted rows and the real steps.

The torch model is the reference: its weights (BatchNorm's affine
parameters and running statistics drawn away from their initial values)
are copied into the Flax variables. A torch Linear weight is [out, in], a
Flax Dense kernel [in, out]; torch's MultiheadAttention stacks the q, k, v
projections in in_proj_weight [3 W, W], Flax's are [W, heads, head_dim]
each (out: [heads, head_dim, W]).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from mmjax.models import encoders
from mmjax.models import positions
from mmjax.models.mlp import BatchNorm
from mmjax.models.resattn import ResidualAttentionEncoder

from parity_helpers import ATOL, RTOL, close, highest_precision, t  # pylint: disable=unused-import

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

B, T, F, W, HEADS, DEPTH = 5, 7, 6, 16, 4, 2


class TorchBlock(torch.nn.Module):
  """BatchNorm1d -> MultiheadAttention, BatchNorm1d -> Linear-GELU-Linear,
  each a residual branch ending in dropout."""

  def __init__(self, width, heads, mlp_ratio, dropout):
    super().__init__()
    self.bn_att = torch.nn.BatchNorm1d(width)  # momentum 0.1, eps 1e-5
    self.attention = torch.nn.MultiheadAttention(width, heads,
                                                 batch_first=True)
    self.bn_mlp = torch.nn.BatchNorm1d(width)
    self.mlp = torch.nn.Sequential(
        torch.nn.Linear(width, mlp_ratio * width), torch.nn.GELU(),
        torch.nn.Linear(mlp_ratio * width, width))
    self.drop = torch.nn.Dropout(dropout)

  def forward(self, x, real=None):
    h = bn(self.bn_att, x, real)
    kpm = None if real is None else ~real
    h, _ = self.attention(h, h, h, key_padding_mask=kpm, need_weights=False)
    x = x + self.drop(h)
    return x + self.drop(self.mlp(bn(self.bn_mlp, x, real)))


def bn(layer, x, real):
  """BatchNorm1d over the channels of x [B, T, W]: on [B, W, T] (all
  steps) or, with real [B, T] bool, on the real (row, step) vectors only
  (the padded ones pass through unchanged)."""
  if real is None:
    return layer(x.transpose(1, 2)).transpose(1, 2)
  out = x.clone()
  out[real] = layer(x[real])
  return out


class TorchResidualAttention(torch.nn.Module):
  """Linear embed + sinusoidal positions (a buffer), residual blocks, a
  final BatchNorm1d, the mean over the (real) steps: [B, T, F] -> [B, W]."""

  def __init__(self, features, width, heads, dropouts, length, mlp_ratio=4):
    super().__init__()
    self.embed = torch.nn.Linear(features, width)
    self.register_buffer(
        "pos", torch.from_numpy(positions.sinusoidal(length, width)))
    self.blocks = torch.nn.ModuleList(
        [TorchBlock(width, heads, mlp_ratio, p) for p in dropouts])
    self.bn_out = torch.nn.BatchNorm1d(width)

  def forward(self, x, real=None):
    h = self.embed(x) + self.pos
    for block in self.blocks:
      h = block(h, real)
    h = bn(self.bn_out, h, real)
    if real is None:
      return h.mean(1)
    m = real.float()[..., None]
    return (h * m).sum(1) / m.sum(1)


def torch_model(seed, dropouts=(0.0,) * DEPTH):
  torch.manual_seed(seed)
  net = TorchResidualAttention(F, W, HEADS, dropouts, T)
  with torch.no_grad():  # BatchNorm away from its initial values.
    for m in net.modules():
      if isinstance(m, torch.nn.BatchNorm1d):
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0.0, 0.3)
        m.running_mean.normal_(0.0, 0.3)
        m.running_var.uniform_(0.5, 2.0)
      elif isinstance(m, torch.nn.MultiheadAttention):
        m.in_proj_bias.normal_(0.0, 0.3)
        m.out_proj.bias.normal_(0.0, 0.3)
  return net


def flax_variables(net):
  """The torch model's weights as the encoder's Flax variables."""
  n = lambda a: jnp.asarray(a.detach().numpy())
  dense = lambda lin: {"kernel": n(lin.weight.T), "bias": n(lin.bias)}
  hd = W // HEADS

  def norm(layer):
    return ({"scale": n(layer.weight), "bias": n(layer.bias)},
            {"mean": n(layer.running_mean), "var": n(layer.running_var)})

  params, stats = {"embed": dense(net.embed)}, {}
  for i, block in enumerate(net.blocks):
    att = block.attention
    q, k, v = att.in_proj_weight.chunk(3)
    bq, bk, bv = att.in_proj_bias.chunk(3)
    proj = lambda w, b: {"kernel": n(w.T).reshape(W, HEADS, hd),
                         "bias": n(b).reshape(HEADS, hd)}
    p, s = {}, {}
    p["bn_att"], s["bn_att"] = norm(block.bn_att)
    p["bn_mlp"], s["bn_mlp"] = norm(block.bn_mlp)
    p["attention"] = {
        "query": proj(q, bq), "key": proj(k, bk), "value": proj(v, bv),
        "out": {"kernel": n(att.out_proj.weight.T).reshape(HEADS, hd, W),
                "bias": n(att.out_proj.bias)}}
    p["mlp_in"], p["mlp_out"] = dense(block.mlp[0]), dense(block.mlp[2])
    params[f"block{i}"], stats[f"block{i}"] = p, s
  params["bn_out"], stats["bn_out"] = norm(net.bn_out)
  return {"params": params, "batch_stats": stats}


def flax_stats(net):
  return flax_variables(net)["batch_stats"]


def encoder(**kw):
  return ResidualAttentionEncoder(W, DEPTH, HEADS, dropouts=(0.0,) * DEPTH,
                                  **kw)


def inputs(seed):
  return np.random.default_rng(seed).normal(size=(B, T, F)).astype(
      np.float32)


def test_train_step_outputs_and_running_stats_match_torch():
  x, mask = inputs(0), np.ones((B, T), np.float32)
  net = torch_model(0).train()
  variables = flax_variables(net)
  out, updates = encoder().apply(variables, x, mask, train=True,
                                 mutable=["batch_stats"])
  with torch.no_grad():
    want = net(t(x))
  assert out.shape == (B, W)
  close(out, want)
  want_stats = flax_stats(net)  # torch's running statistics after it
  jax.tree.map(close, updates["batch_stats"], want_stats)
  # They moved: the comparison is not of two unchanged trees.
  assert not np.allclose(updates["batch_stats"]["bn_out"]["mean"],
                         variables["batch_stats"]["bn_out"]["mean"])


def test_eval_outputs_match_torch():
  x, mask = inputs(1), np.ones((B, T), np.float32)
  net = torch_model(1).eval()
  out = encoder().apply(flax_variables(net), x, mask, train=False)
  with torch.no_grad():
    close(out, net(t(x)))


def test_batch_norm_weights_per_position_match_torch_on_the_counted_vectors():
  rng = np.random.default_rng(2)
  x = rng.normal(1.0, 2.0, size=(B, T, F)).astype(np.float32)
  x[:, -2:] = 1e3  # padded steps: far off, counted nowhere
  mask = np.ones((B, T), np.float32)
  mask[1, -2:] = mask[3, -1:] = 0
  mask[4, 2:] = 0
  rows = np.array([1, 0, 1, 1, 1], np.float32)
  real = (mask * rows[:, None]) > 0
  layer = BatchNorm()
  variables = layer.init(jax.random.key(0), x, train=False)
  out, updates = layer.apply(variables, x, train=True,
                             rows=mask * rows[:, None],
                             mutable=["batch_stats"])
  ref = torch.nn.BatchNorm1d(F).train()
  with torch.no_grad():
    want = ref(t(x[real]))
  close(np.asarray(out)[real], want)
  close(updates["batch_stats"]["mean"], ref.running_mean)
  close(updates["batch_stats"]["var"], ref.running_var)
  # rows [B] alone: all positions of the counted rows, as before.
  _, by_row = layer.apply(variables, x, train=True, rows=rows,
                          mutable=["batch_stats"])
  ref = torch.nn.BatchNorm1d(F).train()
  with torch.no_grad():
    ref(t(x[rows > 0].reshape(-1, F)))
  close(by_row["batch_stats"]["var"], ref.running_var)


def test_encoder_statistics_use_counted_rows_and_real_steps_only():
  x = inputs(3)
  x[:, -2:] = 50.0  # garbage in the padded steps
  mask = np.ones((B, T), np.float32)
  mask[0, -2:] = mask[2, -1:] = 0
  rows = np.array([1, 1, 1, 0, 1], np.float32)
  keep = rows > 0
  net = torch_model(3).train()
  variables = flax_variables(net)
  out, updates = encoder().apply(variables, x, mask, train=True, rows=rows,
                                 mutable=["batch_stats"])
  with torch.no_grad():
    want = net(t(x[keep]), t(mask[keep] > 0))
  close(np.asarray(out)[keep], want)
  jax.tree.map(close, updates["batch_stats"], flax_stats(net))


def test_registered_and_built_from_a_spec():
  spec = {"type": "residual_attention", "width": W, "depth": 3,
          "num_heads": HEADS, "positions": False}
  info = encoders.encoder_info("trajectory", spec)
  assert (info.kind, info.mixup, info.noise) == (
      "sequence", "embedding", "input")

  class Wrap(nn.Module):
    spec: tuple

    @nn.compact
    def __call__(self, batch, train):
      return info.build(dict(self.spec), jnp.float32, "trajectory_encoder")(
          batch, "trajectory", train, None)

  built = []

  def spy(f, args, kwargs, context):
    if isinstance(context.module, ResidualAttentionEncoder):
      built.append(context.module)
    return f(*args, **kwargs)

  batch = {"trajectory": jnp.asarray(inputs(4)),
           "trajectory_mask": jnp.ones((B, T))}
  wrap = Wrap(tuple(spec.items()))
  with nn.intercept_methods(spy):
    v = jax.eval_shape(
        lambda b: wrap.init(jax.random.key(0), b, train=False), batch)
  assert set(v["params"]["trajectory_encoder"]) == {
      "embed", "block0", "block1", "block2", "bn_out"}
  enc = built[0]
  # The defaults: dropout increasing with depth, MLP ratio 4.
  np.testing.assert_allclose(enc.dropouts, (0.1, 0.2, 0.3))
  assert enc.mlp_ratio == 4 and not enc.positions
  out = jax.eval_shape(lambda v, b: wrap.apply(v, b, train=False), v, batch)
  assert out.shape == (B, W)
  with pytest.raises(ValueError, match="dropouts"):
    info.build(dict(spec, dropouts=(0.1, 0.2)), jnp.float32,
               "trajectory_encoder")
