"""Parity of mmjax's layers, losses, schedules and optimizer with the seeds'
PyTorch / PyTorch Geometric stack, with equal weights and inputs.

Every reference value is computed here by torch (or by a plain-python
transcription of the reference recipe's code), never copied from the code under test.
Weights are copied from the Flax params into the torch modules: a Flax Dense
kernel is [in, out], a torch Linear weight is [out, in].
"""

import math

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F
import torch_geometric.nn as pyg_nn

from mmjax.models import fusion
from mmjax.models import gcn
from mmjax.models import mlp
from mmjax.training import losses
from mmjax.training import optim
from mmjax.training import schedules


torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


from parity_helpers import ATOL, RTOL, close, highest_precision, t, unfreeze  # pylint: disable=unused-import


# --------------------------------------------------------------------------
# Graphs
# --------------------------------------------------------------------------

B, N, E, F_IN = 3, 7, 12, 5
N_REAL = (5, 7, 3)
E_REAL = (8, 12, 4)


def random_padded_graphs(seed, weighted):
  """A padded batch plus the unpadded per-graph pieces for PyG.

  Real edges: random pairs of real nodes, no self loops (the data pipeline
  drops them), duplicates allowed. Padded edges point anywhere in [0, N)
  (padded AND real nodes), padded nodes carry large garbage features.
  """
  rng = np.random.default_rng(seed)
  nodes = rng.normal(size=(B, N, F_IN)).astype(np.float32)
  senders = rng.integers(0, N, size=(B, E)).astype(np.int32)
  receivers = rng.integers(0, N, size=(B, E)).astype(np.int32)
  node_mask = np.zeros((B, N), np.float32)
  edge_w = np.zeros((B, E), np.float32)
  real = []
  for b, (n, e) in enumerate(zip(N_REAL, E_REAL)):
    node_mask[b, :n] = 1
    nodes[b, n:] = rng.normal(scale=100.0, size=(N - n, F_IN))
    s = rng.integers(0, n, size=e)
    r = (s + rng.integers(1, n, size=e)) % n  # r != s
    senders[b, :e], receivers[b, :e] = s, r
    w = (rng.uniform(0.2, 2.0, size=e) if weighted else np.ones(e))
    edge_w[b, :e] = w
    real.append((nodes[b, :n].copy(), np.stack([s, r]).astype(np.int64),
                 w.astype(np.float32)))
  return dict(nodes=nodes, senders=senders, receivers=receivers,
              node_mask=node_mask, edge_mask=edge_w), real


def pyg_conv(kernel, bias):
  fin, fout = kernel.shape
  conv = pyg_nn.GCNConv(fin, fout)
  with torch.no_grad():
    conv.lin.weight.copy_(t(kernel).T)
    conv.bias.copy_(t(bias))
  return conv


def pyg_batch(real):
  """The real parts of all graphs as one PyG disjoint union."""
  xs, eis, ws, batch, off = [], [], [], [], 0
  for b, (x, ei, w) in enumerate(real):
    xs.append(t(x))
    eis.append(torch.from_numpy(ei) + off)
    ws.append(t(w))
    batch.append(torch.full((len(x),), b, dtype=torch.long))
    off += len(x)
  return (torch.cat(xs), torch.cat(eis, 1), torch.cat(ws), torch.cat(batch))


@pytest.mark.parametrize("weighted", [False, True])
def test_gcnconv_segment_matches_pyg(weighted):
  g, real = random_padded_graphs(0 + weighted, weighted)
  graph = gcn.as_graphs_tuple(jnp.asarray(g["nodes"]), jnp.asarray(g["senders"]),
                              jnp.asarray(g["receivers"]),
                              jnp.asarray(g["edge_mask"]))
  layer = gcn.GCNConv(6)
  params = layer.init(jax.random.PRNGKey(1), graph)["params"]
  # A non-zero bias, so that it is exercised.
  params = unfreeze(params)
  params["bias"] = jnp.asarray(np.linspace(-1, 1, 6, dtype=np.float32))
  out = np.asarray(layer.apply({"params": params}, graph)).reshape(B, N, 6)
  conv = pyg_conv(np.asarray(params["lin"]["kernel"]), params["bias"])
  for b, (x, ei, w) in enumerate(real):
    want = conv(t(x), torch.from_numpy(ei),
                t(w) if weighted else None)
    close(out[b, :len(x)], want)


@pytest.mark.parametrize("weighted", [False, True])
def test_dense_gcnconv_matches_pyg(weighted):
  g, real = random_padded_graphs(10 + weighted, weighted)
  adj = gcn.dense_normalized_adjacency(
      jnp.asarray(g["senders"]), jnp.asarray(g["receivers"]),
      jnp.asarray(g["edge_mask"]), N)
  layer = gcn.DenseGCNConv(6)
  params = unfreeze(layer.init(jax.random.PRNGKey(2), g["nodes"], adj)["params"])
  params["bias"] = jnp.asarray(np.linspace(-1, 1, 6, dtype=np.float32))
  out = np.asarray(layer.apply({"params": params}, g["nodes"], adj))
  conv = pyg_conv(np.asarray(params["lin"]["kernel"]), params["bias"])
  for b, (x, ei, w) in enumerate(real):
    want = conv(t(x), torch.from_numpy(ei), t(w) if weighted else None)
    close(out[b, :len(x)], want)
    # The dense operator of the real block equals PyG's gcn_norm, densified.
    n = len(x)
    ei_n, w_n = pyg_nn.conv.gcn_conv.gcn_norm(
        torch.from_numpy(ei), t(w), n, add_self_loops=True)
    dense = torch.zeros(n, n).index_put_((ei_n[1], ei_n[0]), w_n,
                                         accumulate=True)
    close(np.asarray(adj)[b, :n, :n], dense)


def test_gcnconv_gradients_match_pyg():
  g, real = random_padded_graphs(20, weighted=True)
  nodes = jnp.asarray(g["nodes"])
  layer = gcn.GCNConv(4)
  graph0 = gcn.as_graphs_tuple(nodes, jnp.asarray(g["senders"]),
                               jnp.asarray(g["receivers"]),
                               jnp.asarray(g["edge_mask"]))
  params = layer.init(jax.random.PRNGKey(3), graph0)["params"]
  rng = np.random.default_rng(21)
  proj = rng.normal(size=(B, N, 4)).astype(np.float32)
  proj_masked = proj * g["node_mask"][..., None]

  def loss(params, nodes):
    graph = gcn.as_graphs_tuple(nodes, jnp.asarray(g["senders"]),
                                jnp.asarray(g["receivers"]),
                                jnp.asarray(g["edge_mask"]))
    out = layer.apply({"params": params}, graph).reshape(B, N, 4)
    return jnp.sum(jnp.tanh(out) * proj_masked)

  val, (gp, gx) = jax.value_and_grad(loss, argnums=(0, 1))(params, nodes)

  conv = pyg_conv(np.asarray(params["lin"]["kernel"]), params["bias"])
  x, ei, w, _ = pyg_batch(real)
  x.requires_grad_(True)
  out = conv(x, ei, w)
  pr = torch.cat([t(proj[b, :n]) for b, n in enumerate(N_REAL)])
  tl = torch.sum(torch.tanh(out) * pr)
  tl.backward()
  close(val, tl, rtol=1e-5, atol=1e-4)
  gx = np.asarray(gx)
  close(np.concatenate([gx[b, :n] for b, n in enumerate(N_REAL)]), x.grad)
  # Padded nodes only reach real nodes through weight-0 edges: no gradient.
  for b, n in enumerate(N_REAL):
    assert np.all(gx[b, n:] == 0.0)
  close(gp["lin"]["kernel"], conv.lin.weight.grad.T)
  close(gp["bias"], conv.bias.grad)


class TorchGCNEncoder(torch.nn.Module):
  """Reference recipe 000's encoder: PyG GCNConv + ReLU, residual on the last layer,
  concat(global_mean_pool, global_max_pool)."""

  def __init__(self, params, widths):
    super().__init__()
    self.convs = torch.nn.ModuleList(
        pyg_conv(np.asarray(params[f"conv{i}"]["lin"]["kernel"]),
                 params[f"conv{i}"]["bias"]) for i in range(len(widths)))

  def forward(self, x, edge_index, edge_weight, batch):
    h = x
    for i, conv in enumerate(self.convs):
      out = conv(h, edge_index, edge_weight)
      if i == len(self.convs) - 1 and out.shape[-1] == h.shape[-1]:
        out = out + h
      h = torch.relu(out)
    return torch.cat([pyg_nn.global_mean_pool(h, batch),
                      pyg_nn.global_max_pool(h, batch)], dim=-1)


@pytest.mark.parametrize("widths", [(8, 16, 16), (8, 6)])
def test_gcn_encoder_aggregations_match_each_other_and_pyg(widths):
  g, real = random_padded_graphs(30, weighted=False)
  args = [jnp.asarray(g[k]) for k in
          ("nodes", "senders", "receivers", "node_mask", "edge_mask")]
  seg = gcn.GCNEncoder(widths, aggregation="segment")
  dense = gcn.GCNEncoder(widths, aggregation="dense")
  params = unfreeze(seg.init(jax.random.PRNGKey(4), *args, train=False)["params"])
  rng = np.random.default_rng(31)
  for i, w in enumerate(widths):  # Non-zero biases.
    params[f"conv{i}"]["bias"] = jnp.asarray(
        rng.normal(scale=0.3, size=w).astype(np.float32))
  # Same parameter tree for both aggregations.
  dense_shapes = jax.tree_util.tree_map(
      jnp.shape, dense.init(jax.random.PRNGKey(4), *args, train=False)["params"])
  assert jax.tree_util.tree_map(jnp.shape, params) == unfreeze(dense_shapes)
  out_seg = seg.apply({"params": params}, *args, train=False)
  out_dense = dense.apply({"params": params}, *args, train=False)
  assert out_seg.shape == (B, 2 * widths[-1])
  close(out_seg, out_dense)

  ref = TorchGCNEncoder(params, widths)
  x, ei, w, batch = pyg_batch(real)
  want = ref(x, ei, w, batch)
  close(out_seg, want)
  close(out_dense, want)


# --------------------------------------------------------------------------
# Self-attention fusion
# --------------------------------------------------------------------------


def torch_mha_from_flax(p, d, h):
  mha = torch.nn.MultiheadAttention(d, h, batch_first=True)
  k = lambda name: t(p[name]["kernel"]).reshape(d, d).T  # [out, in]
  b = lambda name: t(p[name]["bias"]).reshape(d)
  with torch.no_grad():
    mha.in_proj_weight.copy_(torch.cat([k("query"), k("key"), k("value")]))
    mha.in_proj_bias.copy_(torch.cat([b("query"), b("key"), b("value")]))
    mha.out_proj.weight.copy_(t(p["out"]["kernel"]).reshape(d, d).T)
    mha.out_proj.bias.copy_(t(p["out"]["bias"]))
  return mha.eval()


@pytest.mark.parametrize("missing", [False, True])
def test_self_attention_fusion_matches_torch_mha(missing):
  bsz, m, d, h = 3, 4, 16, 4
  rng = np.random.default_rng(40)
  tokens = rng.normal(size=(bsz, m, d)).astype(np.float32)
  present = np.ones((bsz, m), np.float32)
  if missing:
    present[0, 1] = 0
    present[2, 0] = present[2, 3] = 0
  layer = fusion.SelfAttentionFusion(num_heads=h)
  params = unfreeze(layer.init(jax.random.PRNGKey(5), tokens, present,
                               train=False)["params"])
  att = params["attention"]
  for name in ("query", "key", "value", "out"):  # Non-zero biases.
    att[name]["bias"] = jnp.asarray(rng.normal(
        scale=0.5, size=att[name]["bias"].shape).astype(np.float32))
  assert att["query"]["kernel"].shape == (d, h, d // h)
  assert att["out"]["kernel"].shape == (h, d // h, d)
  out = np.asarray(layer.apply({"params": params}, tokens, present,
                               train=False))

  mha = torch_mha_from_flax(att, d, h)
  x = t(tokens)
  kpm = t(present == 0) if missing else None
  with torch.no_grad():
    attended, _ = mha(x, x, x, key_padding_mask=kpm, need_weights=False)
  want = (x + attended).numpy()
  real = present > 0
  close(out[real], want[real])
  assert np.all(out[~real] == 0.0)


# --------------------------------------------------------------------------
# MLP with BatchNorm
# --------------------------------------------------------------------------


def torch_mlp_from_flax(params, widths, batch_norm, final_activation):
  layers = []
  for i, w in enumerate(widths):
    k = np.asarray(params[f"dense{i}"]["kernel"])
    lin = torch.nn.Linear(k.shape[0], w)
    with torch.no_grad():
      lin.weight.copy_(t(k).T)
      lin.bias.copy_(t(params[f"dense{i}"]["bias"]))
    layers.append(lin)
    if i == len(widths) - 1 and not final_activation:
      break
    if batch_norm:
      bn = torch.nn.BatchNorm1d(w)  # momentum 0.1, eps 1e-5
      with torch.no_grad():
        bn.weight.copy_(t(params[f"bn{i}"]["scale"]))
        bn.bias.copy_(t(params[f"bn{i}"]["bias"]))
      layers.append(bn)
    layers.append(torch.nn.ReLU())
  return torch.nn.Sequential(*layers)


def _mlp_setup():
  widths = (12, 8, 3)
  rng = np.random.default_rng(50)
  x = (rng.normal(size=(16, 10)) * 2 + 0.5).astype(np.float32)
  model = mlp.MLP(widths, batch_norm=True, final_activation=False)
  variables = unfreeze(model.init(jax.random.PRNGKey(6), x, train=False))
  for i in range(2):  # Non-trivial affine parameters.
    bn = variables["params"][f"bn{i}"]
    bn["scale"] = jnp.asarray(rng.uniform(0.5, 1.5, widths[i]).astype(np.float32))
    bn["bias"] = jnp.asarray(rng.normal(size=widths[i]).astype(np.float32))
  ref = torch_mlp_from_flax(variables["params"], widths, True, False)
  return model, variables, ref, x


def test_mlp_batchnorm_train_and_eval_outputs_match_torch():
  model, variables, ref, x = _mlp_setup()
  # Train mode: normalised with the (biased) batch statistics in both.
  out, updates = model.apply(variables, x, train=True,
                             mutable=["batch_stats"])
  ref.train()
  close(out, ref(t(x)))
  # Eval mode with the initial running stats (0, 1).
  ref_eval = torch_mlp_from_flax(variables["params"], (12, 8, 3), True, False)
  ref_eval.eval()
  close(model.apply(variables, x, train=False), ref_eval(t(x)))
  # Running means after one train step agree with torch (momentum 0.1).
  for i, bn_t in ((0, ref[1]), (1, ref[4])):
    close(updates["batch_stats"][f"bn{i}"]["mean"], bn_t.running_mean)
  # Eval mode with torch's running stats loaded into flax.
  new = dict(variables, batch_stats={
      f"bn{i}": {"mean": jnp.asarray(bn_t.running_mean.numpy()),
                 "var": jnp.asarray(bn_t.running_var.numpy())}
      for i, bn_t in ((0, ref[1]), (1, ref[4]))})
  ref.eval()
  close(model.apply(new, x, train=False), ref(t(x)))


def test_mlp_batchnorm_running_var_matches_torch():
  model, variables, ref, x = _mlp_setup()
  _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
  ref.train()
  with torch.no_grad():
    ref(t(x))
  close(updates["batch_stats"]["bn0"]["var"], ref[1].running_var)
  close(updates["batch_stats"]["bn0"]["mean"], ref[1].running_mean)
  assert not np.allclose(ref[1].running_var.numpy(), 1.0)


# --------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------


def torch_focal(logits, targets):
  """Reference recipe 000, verbatim."""
  ce_loss = F.cross_entropy(logits, targets, reduction="none")
  pt = torch.exp(-ce_loss)
  return (1 - pt) ** 2 * ce_loss


def test_focal_loss_and_gradient_match_seed():
  rng = np.random.default_rng(60)
  logits = (rng.normal(size=(32, 5)) * 3).astype(np.float32)
  labels = rng.integers(0, 5, size=32)
  onehot = losses.soft_targets(jnp.asarray(labels), 5)
  mask = (rng.uniform(size=32) > 0.25).astype(np.float32)

  def f(lg):
    return losses.masked_mean(losses.focal_loss(lg, onehot), jnp.asarray(mask))

  per = losses.focal_loss(jnp.asarray(logits), onehot)
  val, grad = jax.value_and_grad(f)(jnp.asarray(logits))

  tl = t(logits).requires_grad_(True)
  tper = torch_focal(tl, torch.from_numpy(labels))
  close(per, tper)
  sel = torch.from_numpy(mask > 0)
  tval = tper[sel].mean()
  tval.backward()
  close(val, tval)
  close(grad, tl.grad)


def test_soft_targets_cross_entropy_matches_label_smoothing():
  rng = np.random.default_rng(61)
  logits = (rng.normal(size=(32, 4)) * 2).astype(np.float32)
  labels = rng.integers(0, 4, size=32)
  targets = losses.soft_targets(jnp.asarray(labels), 4, label_smoothing=0.2)
  got = losses.cross_entropy(jnp.asarray(logits), targets)
  want = F.cross_entropy(t(logits), torch.from_numpy(labels),
                         label_smoothing=0.2, reduction="none")
  close(got, want)
  close(losses.masked_mean(got, jnp.ones(32)), want.mean())
  # Also under the focal loss (reference recipe 001's combination).
  # Also under the focal loss (reference recipe 000's formula on the smoothed CE).
  close(losses.focal_loss(jnp.asarray(logits), targets),
        (1 - torch.exp(-want)) ** 2 * want)


def test_feature_diversity_matches_torch_std():
  rng = np.random.default_rng(62)
  feats = (rng.normal(size=(20, 9)) * rng.uniform(0.1, 3, size=9)).astype(
      np.float32)

  def ref(x):
    return -torch.log(torch.std(x, dim=0).mean() + 1e-8)

  close(losses.feature_diversity(jnp.asarray(feats), jnp.ones(20)),
        ref(t(feats)))
  mask = (rng.uniform(size=20) > 0.4).astype(np.float32)
  mask[:3] = 1
  feats_pad = feats.copy()
  feats_pad[mask == 0] = 1e3  # Padded rows must not matter.
  close(losses.feature_diversity(jnp.asarray(feats_pad), jnp.asarray(mask)),
        ref(t(feats[mask > 0])))
  # Gradient too.
  g = jax.grad(losses.feature_diversity)(jnp.asarray(feats), jnp.ones(20))
  tf = t(feats).requires_grad_(True)
  ref(tf).backward()
  close(g, tf.grad)


# --------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------


def seed000_lr(epoch, base_lr, eta_min, warmup=5, num_epochs=50):
  if epoch < warmup:
    return base_lr * (epoch + 1) / warmup
  progress = (epoch - warmup) / (num_epochs - warmup)
  return eta_min + (base_lr - eta_min) * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("eta_min", [0.0, 1e-6])
def test_warmup_cosine_matches_seed_per_epoch(eta_min):
  base, k = 2e-4, 7
  sched = schedules.warmup_cosine(base, warmup_epochs=5, num_epochs=50,
                                  steps_per_epoch=k, eta_min=eta_min)
  steps = np.arange(50 * k)
  got = np.asarray(jax.vmap(sched)(jnp.asarray(steps)))
  want = np.array([seed000_lr(s // k, base, eta_min) for s in steps])
  close(got, want, rtol=1e-5, atol=1e-6 * base)
  # Python ints too (optax schedules are also called with plain steps).
  for s in (0, k - 1, k, 5 * k, 27 * k + 3, 50 * k - 1):
    close(sched(s), seed000_lr(s // k, base, eta_min), rtol=1e-5, atol=1e-6 * base)


def test_warmup_cosine_per_step_sanity():
  base, k = 1e-3, 10
  sched = schedules.warmup_cosine(base, 5, 50, k, per_epoch=False)
  lrs = np.asarray(jax.vmap(sched)(jnp.arange(50 * k)))
  warm = lrs[:4 * k + 1]  # Up to the last warmup epoch's start.
  assert np.all(np.diff(warm) > 0)
  # Equal to the per-epoch curve at epoch boundaries.
  for e in range(50):
    close(lrs[e * k], seed000_lr(e, base, 0.0), rtol=1e-5, atol=1e-6 * base)
  assert np.all(np.diff(lrs[5 * k:]) <= 0)
  assert lrs.max() <= base * (1 + 1e-6)


class CyclicCosineScheduler:
  """Reference recipe 001's scheduler, transcribed (the lr it sets at `step(epoch)`)."""

  def __init__(self, max_lr, min_lr, warmup_epochs, cycle_epochs):
    self.max_lr, self.min_lr = max_lr, min_lr
    self.warmup_epochs, self.cycle_epochs = warmup_epochs, cycle_epochs

  def step(self, epoch):
    if epoch < self.warmup_epochs:
      lr = self.min_lr + (self.max_lr - self.min_lr) * epoch / self.warmup_epochs
    else:
      epoch_adjusted = epoch - self.warmup_epochs
      cycle = epoch_adjusted // self.cycle_epochs
      cycle_epoch = epoch_adjusted % self.cycle_epochs
      cycle_factor = 0.5 * (1 + np.cos(np.pi * cycle_epoch / self.cycle_epochs))
      cycle_max_lr = self.max_lr * (0.8 ** cycle)
      lr = self.min_lr + (cycle_max_lr - self.min_lr) * cycle_factor
    return lr


@pytest.mark.parametrize("min_lr,warmup", [(1e-6, 5), (0.0, 5), (1e-6, 0)])
def test_cyclic_cosine_matches_seed(min_lr, warmup):
  base, k = 5e-4, 3
  sched = schedules.cyclic_cosine(base, warmup_epochs=warmup, cycle_epochs=10,
                                  num_epochs=60, steps_per_epoch=k,
                                  min_lr=min_lr, decay=0.8)
  ref = CyclicCosineScheduler(base, min_lr, warmup, 10)
  steps = np.arange(60 * k)
  got = np.asarray(jax.vmap(sched)(jnp.asarray(steps)))
  want = np.array([ref.step(s // k) for s in steps])
  close(got, want, rtol=1e-5, atol=1e-6 * base)


# --------------------------------------------------------------------------
# Optimizer
# --------------------------------------------------------------------------


def _params_and_grads(seed, n_steps):
  rng = np.random.default_rng(seed)
  params = {"w": rng.normal(size=(4, 3)).astype(np.float32),
            "b": rng.normal(size=(3,)).astype(np.float32)}
  grads = [{k: (rng.normal(size=v.shape) * 0.7).astype(np.float32)
            for k, v in params.items()} for _ in range(n_steps)]
  return params, grads


def test_adamw_matches_torch():
  lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.1
  params, grads = _params_and_grads(70, 3)
  tx = optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=wd)
  p = jax.tree_util.tree_map(jnp.asarray, params)
  state = tx.init(p)
  tp = {k: torch.nn.Parameter(t(v)) for k, v in params.items()}
  topt = torch.optim.AdamW(list(tp.values()), lr=lr, betas=(b1, b2), eps=eps,
                           weight_decay=wd)
  for g in grads:
    upd, state = tx.update(jax.tree_util.tree_map(jnp.asarray, g), state, p)
    p = optax.apply_updates(p, upd)
    for k in tp:
      tp[k].grad = t(g[k])
    topt.step()
    for k in tp:
      close(p[k], tp[k].detach(), rtol=1e-6, atol=1e-6)
  # optax's decoupled weight decay is multiplied by the lr, as in torch: with
  # a zero gradient the first update is the decay term alone, -lr * wd * p.
  tx0 = optax.adamw(lr, weight_decay=wd)
  zero = jax.tree_util.tree_map(jnp.zeros_like, p)
  upd, _ = tx0.update(zero, tx0.init(p), p)
  close(upd["w"], -lr * wd * p["w"], rtol=1e-6, atol=1e-8)


def test_clip_by_global_norm_matches_torch():
  _, (g,) = _params_and_grads(71, 1)
  for scale in (10.0, 0.1):  # Clipped, and left alone.
    gs = {k: v * scale for k, v in g.items()}
    got, _ = optax.clip_by_global_norm(1.0).update(
        jax.tree_util.tree_map(jnp.asarray, gs), optax.EmptyState())
    tp = [torch.nn.Parameter(torch.zeros(v.shape)) for v in gs.values()]
    for p_, v in zip(tp, gs.values()):
      p_.grad = t(v)
    norm = torch.nn.utils.clip_grad_norm_(tp, 1.0)
    close(optax.tree.norm(jax.tree_util.tree_map(jnp.asarray, gs)), norm)
    for k, p_ in zip(gs, tp):
      close(got[k], p_.grad, rtol=1e-5, atol=1e-6)


def test_build_optimizer_matches_torch_clip_adamw_schedule():
  """mmjax's chain (clip 1.0 -> AdamW with warmup-cosine) vs reference recipe 000's
  torch loop: clip_grad_norm_, optimizer.step(), lr set per epoch."""
  cfg = ml_collections.ConfigDict(dict(
      learning_rate=2e-2, num_epochs=8,
      optimizer=dict(weight_decay=1e-2, b1=0.9, b2=0.999, eps=1e-8,
                     grad_clip=1.0),
      schedule=dict(name="warmup_cosine", warmup_epochs=3, eta_min=0.0,
                    per_epoch=True)))
  spe = 2
  params, grads = _params_and_grads(72, 8 * spe)
  grads = [{k: v * 3.0 for k, v in g.items()} for g in grads]  # Clipping on.
  tx, _ = optim.build_optimizer(cfg, spe)
  update = jax.jit(tx.update)
  p = jax.tree_util.tree_map(jnp.asarray, params)
  state = tx.init(p)
  tp = {k: torch.nn.Parameter(t(v)) for k, v in params.items()}
  topt = torch.optim.AdamW(list(tp.values()), lr=cfg.learning_rate,
                           betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
  for step, g in enumerate(grads):
    upd, state = update(jax.tree_util.tree_map(jnp.asarray, g), state, p)
    p = optax.apply_updates(p, upd)
    for group in topt.param_groups:
      group["lr"] = seed000_lr(step // spe, cfg.learning_rate, 0.0,
                               warmup=3, num_epochs=8)
    for k in tp:
      tp[k].grad = t(g[k])
    torch.nn.utils.clip_grad_norm_(list(tp.values()), 1.0)
    topt.step()
  for k in tp:
    close(p[k], tp[k].detach(), rtol=1e-5, atol=1e-5)
