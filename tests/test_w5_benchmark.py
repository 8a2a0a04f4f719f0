"""The W5 benchmark's two sides (benchmarks/w5_mmjax.py, w5_torch.py) are
one model: equal parameter counts at W5's sizes and at `--small`'s, equal
outputs and loss on equal weights, and one step of each script runs.

Everything that runs is at run_w5.SMALL's sizes; the full-size counts come
from shapes alone (jax.eval_shape, torch's meta device).
"""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from parity_helpers import close, highest_precision, t  # pylint: disable=unused-import

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "benchmarks"))

import run_w5  # pylint: disable=g-import-not-at-top,wrong-import-position
import w5_mmjax  # pylint: disable=g-import-not-at-top,wrong-import-position
import w5_torch  # pylint: disable=g-import-not-at-top,wrong-import-position

from mmjax.training import optim  # pylint: disable=g-import-not-at-top,wrong-import-position


def batch_shapes(small):
  return {k: jax.ShapeDtypeStruct(v.shape, v.dtype)
          for k, v in run_w5.make_batch(small).items()}


@pytest.mark.parametrize("small", [True, False], ids=["small", "full"])
def test_parameter_counts_are_equal(small):
  got = w5_mmjax.param_count(w5_mmjax.build_model(small), batch_shapes(small))
  with torch.device("meta"):
    want = sum(p.numel() for p in w5_torch.build_model(small).parameters())
  assert got == want
  if not small:
    # 50*160+160 + 3 (2*2*160 + 4*(160*160+160) + 160*640+640 + 640*160+160)
    # + 2*160 + 160*6+6.
    assert got == 937_286


def random_variables(model, batch, seed=0):
  """The model's variables drawn from numpy: no value at its constant
  init (BatchNorm scales and running variances of 1, biases and running
  means of 0), so a misplaced copy shows."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(
      lambda b: model.init(jax.random.key(0), b, train=False), batch)

  def draw(path, x):
    parent, name = optim.param_path(path).split("/")[-2:]
    if name == "kernel":
      fan_in = (x.shape[0] if parent in ("query", "key", "value")
                else int(np.prod(x.shape[:-1])))
      v = rng.normal(0, 1 / np.sqrt(fan_in), x.shape)
    elif name in ("scale", "var"):
      v = rng.uniform(0.5, 1.5, x.shape)
    else:
      v = rng.normal(0, 0.3, x.shape)
    return jnp.asarray(v.astype(np.float32))

  return jax.tree_util.tree_map_with_path(draw, shapes)


def copy_into_torch(variables, net, width):
  """mmjax's variables into w5_torch.TrajectoryClassifier. A flax Dense
  kernel is [in, out], a torch Linear weight [out, in]; flax's attention
  projections are [W, heads, head_dim] (out: [heads, head_dim, W]);
  torch's in_proj stacks q, k, v."""
  params, stats = variables["params"], variables["batch_stats"]

  def linear(lin, p):
    lin.weight.copy_(t(p["kernel"]).reshape(-1, lin.weight.shape[0]).T)
    lin.bias.copy_(t(p["bias"]).reshape(-1))

  def norm(bn, p, s):
    bn.weight.copy_(t(p["scale"]))
    bn.bias.copy_(t(p["bias"]))
    bn.running_mean.copy_(t(s["mean"]))
    bn.running_var.copy_(t(s["var"]))

  enc, enc_stats = params["encoder"], stats["encoder"]
  with torch.no_grad():
    linear(net.embed, enc["embed"])
    for i, block in enumerate(net.blocks):
      p, s = enc[f"block{i}"], enc_stats[f"block{i}"]
      att = p["attention"]
      qkv = lambda key: t(att[key]["kernel"]).reshape(width, width).T
      block.attention.in_proj_weight.copy_(
          torch.cat([qkv("query"), qkv("key"), qkv("value")]))
      block.attention.in_proj_bias.copy_(torch.cat(
          [t(att[k]["bias"]).reshape(width)
           for k in ("query", "key", "value")]))
      linear(block.attention.out_proj, att["out"])
      norm(block.bn_att, p["bn_att"], s["bn_att"])
      norm(block.bn_mlp, p["bn_mlp"], s["bn_mlp"])
      linear(block.mlp[0], p["mlp_in"])
      linear(block.mlp[2], p["mlp_out"])
    norm(net.bn_out, enc["bn_out"], enc_stats["bn_out"])
    linear(net.head, params["head"])


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_outputs_and_loss_match_on_equal_weights(train):
  s = run_w5.SMALL
  batch = run_w5.make_batch(small=True)
  model = w5_mmjax.build_model(small=True)
  variables = random_variables(model, batch)
  net = w5_torch.build_model(small=True)
  copy_into_torch(variables, net, s["width"])
  x, label = t(batch["trajectory"]), t(batch["label"]).long()
  if train:
    # Dropout off on both sides (their masks cannot match); BatchNorm on
    # batch statistics, its running statistics updated.
    model = model.clone(dropouts=(0.0,) * s["depth"])
    for m in net.modules():
      if isinstance(m, torch.nn.Dropout):
        m.p = 0.0
    logits, updates = model.apply(variables, batch, train=True,
                                  mutable=["batch_stats"])
  else:
    logits = model.apply(variables, batch, train=False)
  net.train(train)
  with torch.no_grad():
    want = net(x)
    if train:  # One update of the running statistics on each side.
      enc = updates["batch_stats"]["encoder"]
      close(enc["bn_out"]["mean"], net.bn_out.running_mean)
      close(enc["bn_out"]["var"], net.bn_out.running_var)
      close(enc["block0"]["bn_att"]["var"],
            net.blocks[0].bn_att.running_var)
    want_loss = w5_torch.objective(net, x, label)
  loss = w5_mmjax.loss_of(logits, batch["label"], s["classes"])
  close(logits, want, rtol=1e-4, atol=1e-5)
  close(loss, want_loss, rtol=1e-5, atol=1e-6)
  assert float(want_loss) > 0


def result_line(capsys):
  lines = [l for l in capsys.readouterr().out.splitlines()
           if l.startswith("RESULT ")]
  assert len(lines) == 1, lines
  return json.loads(lines[0][len("RESULT "):])


def test_one_step_runs_on_each_side(capsys):
  args = ["--small", "--steps", "1", "--warmup", "0"]
  w5_torch.main(args + ["--device", "cpu"])
  torch_res = result_line(capsys)
  w5_mmjax.main(args)
  mmjax_res = result_line(capsys)
  for res in (torch_res, mmjax_res):
    assert "error" not in res, res.get("error")
    assert res["workload"] == "W5 (small)"
    assert res["timed_steps"] == 1 and res["samples_per_s"] > 0
    assert np.isfinite(res["final_loss"])
  assert torch_res["n_params"] == mmjax_res["n_params"]
