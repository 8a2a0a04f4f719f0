"""W5 benchmark, PyTorch side: reference recipe 004's sequence classifier step.

  python benchmarks/w5_torch.py --variant eager
  python benchmarks/w5_torch.py --variant compile
  python benchmarks/w5_torch.py --variant eager --amp   # GPU
  python benchmarks/w5_torch.py --params_only           # count only

The W5 model (WORKLOADS.md) in PyTorch, layer for layer what
w5_mmjax.W5Model builds (mmjax's ResidualAttentionEncoder without
positions, then a Dense), on a batch of 32 sequences of 80 steps x 50
features:

  Linear 50 -> 160
  3 residual blocks, block i with dropout 0.1 / 0.2 / 0.3:
      x = x + Dropout(MultiheadAttention(BN(x)))     4 heads, batch_first
      x = x + Dropout(Linear(GELU(Linear(BN(x)))))   160 -> 640 -> 160
    BN: BatchNorm1d(160) over the channels (on x.transpose(1, 2))
  BatchNorm1d(160), the mean over the 80 steps, Linear 160 -> 6.

Both sides have the same parameter count. mmjax also multiplies the
embedded steps by the sequence mask, masks attention and takes BatchNorm
statistics and the mean over the real steps; every W5 sequence fills its
80 steps, so this side does none of that.

Loss: F.cross_entropy(label_smoothing=0.15), batch mean. Step:
zero_grad(set_to_none=True), forward, backward, clip_grad_norm_(1.0),
AdamW(lr 1e-3, weight decay 0.01).

The batch is run_w5.make_batch()'s (the same sequences as the mmjax side),
moved to the device once. fp32 means TF32 off. `--amp` wraps forward and
loss in torch.autocast(bfloat16) (parameters stay fp32). `--small` runs
run_w5.SMALL's sizes (tests); `--params_only` reports the parameter count
and times nothing.

Prints one JSON line prefixed with 'RESULT ' (and appends it to --out); a
failure is reported in the line's 'error' field instead of a figure.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # pylint: disable=g-import-not-at-top
from torch import nn
import torch.nn.functional as F

from common import (add_step_args, add_torch_step_args, emit_result,
                    run_guarded, run_torch_train_step, torch_labels,
                    torch_setup, torch_sync)
import run_w5


def channel_norm(bn, x):
  """BatchNorm1d over the channels of x [B, T, W]."""
  return bn(x.transpose(1, 2)).transpose(1, 2)


class ResidualAttentionBlock(nn.Module):
  """Pre-norm (BatchNorm) self-attention and GELU MLP, each a residual
  branch ending in dropout: [B, T, W] -> [B, T, W]."""

  def __init__(self, width, heads, mlp_ratio, dropout):
    super().__init__()
    self.bn_att = nn.BatchNorm1d(width)
    self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
    self.bn_mlp = nn.BatchNorm1d(width)
    self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(),
                             nn.Linear(mlp_ratio * width, width))
    self.drop = nn.Dropout(dropout)

  def forward(self, x):
    h = channel_norm(self.bn_att, x)
    h, _ = self.attention(h, h, h, need_weights=False)
    x = x + self.drop(h)
    return x + self.drop(self.mlp(channel_norm(self.bn_mlp, x)))


class TrajectoryClassifier(nn.Module):
  """Sequences [B, T, F] -> class logits [B, C]."""

  def __init__(self, features=50, width=160, heads=4, mlp_ratio=4,
               classes=6, dropouts=run_w5.DROPOUTS):
    super().__init__()
    self.embed = nn.Linear(features, width)
    self.blocks = nn.ModuleList(
        [ResidualAttentionBlock(width, heads, mlp_ratio, p)
         for p in dropouts])
    self.bn_out = nn.BatchNorm1d(width)
    self.head = nn.Linear(width, classes)

  def forward(self, x):
    h = self.embed(x)
    for block in self.blocks:
      h = block(h)
    return self.head(channel_norm(self.bn_out, h).mean(1))


def build_model(small=False):
  """The W5 model at run_w5.FULL's (or SMALL's) sizes."""
  s = run_w5.sizes(small)
  assert len(run_w5.DROPOUTS) == s["depth"]
  return TrajectoryClassifier(
      features=s["features"], width=s["width"], heads=s["heads"],
      mlp_ratio=s["mlp_ratio"], classes=s["classes"])


def objective(model, x, label):
  """Cross-entropy with label smoothing, batch mean (fp32 logits)."""
  return F.cross_entropy(model(x).float(), label,
                         label_smoothing=run_w5.LABEL_SMOOTHING)


def run(args, res):
  device = torch_setup(args.device, res)  # fp32 = IEEE fp32: no TF32.
  batch_size = run_w5.sizes(args.small)["batch"]

  t0 = time.perf_counter()
  batch = run_w5.make_batch(args.small)
  x = torch.from_numpy(batch["trajectory"]).to(device)
  label = torch.from_numpy(batch["label"]).long().to(device)
  torch_sync(device)
  res["data_s"] = time.perf_counter() - t0

  model = build_model(args.small).to(device).train()
  run_torch_train_step(res, args, device, model, objective,
                       lambda: (x, label), batch_size, lr=run_w5.LR,
                       weight_decay=run_w5.WEIGHT_DECAY)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  add_torch_step_args(p)
  run_w5.add_size_args(p)
  add_step_args(p, "the first one")
  args = p.parse_args(argv)

  res = {"workload": run_w5.workload(args),
         "impl": "pytorch",
         **torch_labels(args),
         "loadavg_1min_start": os.getloadavg()[0],
         "versions": {"torch": torch.__version__}}
  if args.params_only:
    # Built on the meta device: shapes only, no memory, nothing initialised.
    with torch.device("meta"):
      res["n_params"] = sum(p.numel() for p in
                            build_model(args.small).parameters())
    emit_result(res, args.out)
    return
  run_guarded(run, args, res)
  res["loadavg_1min_end"] = os.getloadavg()[0]
  emit_result(res, args.out)


if __name__ == "__main__":
  main()
