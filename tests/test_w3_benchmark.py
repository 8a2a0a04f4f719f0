"""The W3 benchmark's two sides (benchmarks/w3_mmjax.py, w3_torch.py) are
one model: equal parameter counts at W3's sizes and at `--small`'s, equal
outputs and loss on equal weights, and one step of each script runs.

Everything that runs is at run_w3.SMALL's sizes; the full-size counts come
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

import run_w3  # pylint: disable=g-import-not-at-top,wrong-import-position
import w3_mmjax  # pylint: disable=g-import-not-at-top,wrong-import-position
import w3_torch  # pylint: disable=g-import-not-at-top,wrong-import-position

from mmjax.models.multimodal import build_model  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.tasks import build_task  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.training import optim  # pylint: disable=g-import-not-at-top,wrong-import-position


def batch_shapes(small):
  return {k: jax.ShapeDtypeStruct(v.shape, v.dtype)
          for k, v in run_w3.make_batch(small).items()}


@pytest.mark.parametrize("small", [True, False], ids=["small", "full"])
def test_parameter_counts_are_equal(small):
  got = w3_mmjax.param_count(w3_mmjax.get_config(small), batch_shapes(small))
  with torch.device("meta"):
    want = sum(p.numel() for p in w3_torch.build_model(small).parameters())
  print(f"W3{' small' if small else ''} parameters: mmjax {got:,}, "
        f"PyTorch {want:,}")
  assert got == want
  if not small:
    assert got == 26_863_747


def random_params(model, batch, seed=0):
  """The model's parameters drawn from numpy: no value at its constant
  init (LayerNorm scales of 1, biases of 0), so a misplaced copy shows."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(
      lambda b: model.init(jax.random.key(0), b, train=False), batch)

  def draw(path, x):
    parent, name = optim.param_path(path).split("/")[-2:]
    if name == "kernel":
      fan_in = (x.shape[0] if parent in ("query", "key", "value")
                else int(np.prod(x.shape[:-1])))
      v = rng.normal(0, 1 / np.sqrt(fan_in), x.shape)
    elif name == "scale":
      v = rng.uniform(0.5, 1.5, x.shape)
    else:
      v = rng.normal(0, 0.3, x.shape)
    return jnp.asarray(v.astype(np.float32))

  return jax.tree_util.tree_map_with_path(draw, shapes["params"])


def copy_into_torch(params, net, width):
  """mmjax's parameters into w3_torch.GenomeTransformer, layer by layer.
  A flax Dense kernel is [in, out], a torch Linear weight [out, in]; flax's
  attention projections are [W, heads, head_dim] (out: [heads, head_dim,
  W]); torch's in_proj stacks q, k, v."""
  def linear(lin, p):
    lin.weight.copy_(t(p["kernel"]).reshape(-1, lin.weight.shape[0]).T)
    lin.bias.copy_(t(p["bias"]).reshape(-1))

  def norm(ln, p):
    ln.weight.copy_(t(p["scale"]))
    ln.bias.copy_(t(p["bias"]))

  def mlp(seq, p):
    n = len([k for k in p if k.startswith("dense")])
    for i in range(n - 1):
      linear(seq[4 * i], p[f"dense{i}"])
      norm(seq[4 * i + 1], p[f"ln{i}"])
    linear(seq[4 * (n - 1)], p[f"dense{n - 1}"])

  enc = params["genome_encoder"]
  with torch.no_grad():
    linear(net.embed, enc["embed"])
    for i, layer in enumerate(net.layers.layers):
      p = enc[f"block{i}"]
      att = p["attention"]
      qkv = lambda key: t(att[key]["kernel"]).reshape(width, width).T
      layer.self_attn.in_proj_weight.copy_(
          torch.cat([qkv("query"), qkv("key"), qkv("value")]))
      layer.self_attn.in_proj_bias.copy_(torch.cat(
          [t(att[k]["bias"]).reshape(width)
           for k in ("query", "key", "value")]))
      linear(layer.self_attn.out_proj, att["out"])
      norm(layer.norm1, p["ln_att"])
      norm(layer.norm2, p["ln_mlp"])
      linear(layer.linear1, p["mlp_in"])
      linear(layer.linear2, p["mlp_out"])
    norm(net.ln_out, enc["ln_out"])
    linear(net.token, params["genome_token"])
    mlp(net.head, params["head"])
    mlp(net.confidence, params["confidence"])


def test_outputs_and_loss_match_on_equal_weights():
  config = w3_mmjax.get_config(small=True)
  width = run_w3.SMALL["width"]
  batch = run_w3.make_batch(small=True)
  model = build_model(config.model)
  params = random_params(model, batch)
  out = model.apply({"params": params}, batch, train=False)
  task = build_task(config)
  loss = task.loss(out["logits"], task.targets(batch["label"])).mean()

  net = w3_torch.build_model(small=True).eval()
  copy_into_torch(params, net, width)
  tokens, label = t(batch["genome"]), t(batch["label"]).long()
  with torch.no_grad():
    logits, confidence = net(tokens)
    want_loss = w3_torch.objective(net, tokens, label)
  close(out["logits"][:, :2], logits, rtol=1e-4, atol=1e-5)
  close(out["logits"][:, 2], confidence, rtol=1e-4, atol=1e-5)
  close(loss, want_loss, rtol=1e-5, atol=1e-6)
  # The focal term's alpha_t and the confidence BCE both count: a loss
  # that differed in either would not match to 1e-5 on these logits.
  assert float(want_loss) > 0


def result_line(capsys):
  lines = [l for l in capsys.readouterr().out.splitlines()
           if l.startswith("RESULT ")]
  assert len(lines) == 1, lines
  return json.loads(lines[0][len("RESULT "):])


def test_one_step_runs_on_each_side(capsys):
  args = ["--small", "--steps", "1", "--warmup", "0"]
  w3_torch.main(args + ["--device", "cpu"])
  torch_res = result_line(capsys)
  w3_mmjax.main(args)
  mmjax_res = result_line(capsys)
  for res in (torch_res, mmjax_res):
    assert "error" not in res, res.get("error")
    assert res["workload"] == "W3 (small)"
    assert res["timed_steps"] == 1 and res["samples_per_s"] > 0
    assert np.isfinite(res["final_loss"])
  assert mmjax_res["skipped_last"] == 0.0
  assert torch_res["n_params"] == mmjax_res["n_params"]
