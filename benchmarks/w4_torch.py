"""W4 benchmark, PyTorch side: the reference recipe's AdvancedTransformerCNN step.

  python benchmarks/w4_torch.py --variant eager
  python benchmarks/w4_torch.py --variant compile
  python benchmarks/w4_torch.py --variant eager --amp   # GPU

The W4 model (benchmarks/README.md) in PyTorch, layer for layer what mmjax
builds from configs/affinity.py (mmjax/models/conv3d.py CNNTransformer3d and
the multimodal head), on a batch of 8 grids of 24^3 voxels x 19 channels:

  multi-scale block: Conv3d 1x1x1, 3x3x3, 5x5x5 and 3x3x3 dilation 2
      (19 -> 32 each, 'same' padding), concatenated to 128, BatchNorm3d, ReLU
  channel attention (squeeze-excitation, 128 -> 8 -> 128, sigmoid) and
      spatial attention (7x7x7 conv of [mean_c, max_c], sigmoid)
  Conv3d 128 -> 128 3x3x3 stride 2 (24^3 -> 12^3), BatchNorm3d, ReLU
  Conv3d 128 -> 256 3x3x3, BatchNorm3d, ReLU
  Conv3d 256 -> 256 3x3x3 stride 2 (12^3 -> 6^3 = 216 tokens), BN, ReLU
  Linear 256 -> 256 + 3D sinusoidal positions, dropout 0.1
  4 x nn.TransformerEncoderLayer(256, 8 heads, 1024, dropout 0.1, gelu,
      batch_first, norm_first), LayerNorm, mean over the 216 tokens
  Linear 256 -> 256 (mmjax's modality token), then the 6-layer head
      256 -> 512 -> 256 -> 128 -> 64 -> 32 -> 1 with BatchNorm1d, ReLU and
      dropout 0.2 after each hidden layer.

Both sides have the same parameter count. torch's encoder layer also drops
attention weights and the MLP's hidden units (mmjax drops the residual
branches only); at W4's sizes that is a few elementwise kernels.

Loss: MSE + 0.5 MAE + 0.3 Huber (delta 1). Step: zero_grad(set_to_none=True),
forward, backward, clip_grad_norm_(1.0), AdamW(lr 2e-4, wd 1e-4) with three
parameter groups: the CNN at lr x0.5, the transformer (token embedding,
layers, final LayerNorm) at x1.5, the modality token and head at x1.0.

The batch is run_w4.make_batch()'s (the same grids as the mmjax side),
moved to the device once, channels first. fp32 means TF32 off. `--amp` wraps
forward and loss in torch.autocast(bfloat16) (parameters stay fp32).

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
import run_w4
from mmjax.models import positions  # numpy only: no JAX in this process


def conv_bn_relu(cin, cout, stride=1):
  return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1),
                       nn.BatchNorm3d(cout), nn.ReLU())


class MultiScaleBlock(nn.Module):

  def __init__(self, cin, c):
    super().__init__()
    self.branches = nn.ModuleList([
        nn.Conv3d(cin, c, 1), nn.Conv3d(cin, c, 3, padding=1),
        nn.Conv3d(cin, c, 5, padding=2),
        nn.Conv3d(cin, c, 3, padding=2, dilation=2)])
    self.bn = nn.BatchNorm3d(4 * c)

  def forward(self, x):
    return F.relu(self.bn(torch.cat([b(x) for b in self.branches], dim=1)))


class ChannelAttention(nn.Module):

  def __init__(self, c, reduction=16):
    super().__init__()
    self.squeeze = nn.Linear(c, max(c // reduction, 1))
    self.excite = nn.Linear(max(c // reduction, 1), c)

  def forward(self, x):
    s = torch.sigmoid(self.excite(F.relu(self.squeeze(x.mean((2, 3, 4))))))
    return x * s[:, :, None, None, None]


class SpatialAttention(nn.Module):

  def __init__(self, kernel_size=7):
    super().__init__()
    self.conv = nn.Conv3d(2, 1, kernel_size, padding=kernel_size // 2,
                          bias=False)

  def forward(self, x):
    maps = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
    return x * torch.sigmoid(self.conv(maps))


class AdvancedTransformerCNN(nn.Module):
  """Grid [B, C, D, H, W] -> (predictions [B, 1], fused features [B, 256])."""

  def __init__(self, in_channels=19, branch=32, stage=256, width=256,
               depth=4, heads=8, mlp_ratio=4, dropout=0.1, grid=24,
               token_dim=256, head=(512, 256, 128, 64, 32),
               head_dropout=0.2):
    super().__init__()
    self.cnn = nn.Sequential(
        MultiScaleBlock(in_channels, branch), ChannelAttention(4 * branch),
        SpatialAttention(), conv_bn_relu(4 * branch, 4 * branch, 2),
        conv_bn_relu(4 * branch, stage), conv_bn_relu(stage, stage, 2))
    side = grid // 4
    self.embed = nn.Linear(stage, width)
    # [side^3, width], row-major (d, h, w): the order of the flattened map.
    self.register_buffer("pos", torch.from_numpy(
        positions.positional_encoding_3d(side, side, side, width).reshape(
            side ** 3, width)))
    self.embed_dropout = nn.Dropout(dropout)
    self.layers = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(width, heads, mlp_ratio * width, dropout,
                                   activation="gelu", batch_first=True,
                                   norm_first=True),
        depth, enable_nested_tensor=False)
    self.ln_out = nn.LayerNorm(width)
    self.token = nn.Linear(width, token_dim)
    layers, dims = [], (token_dim,) + tuple(head)
    for i in range(len(head)):
      layers += [nn.Linear(dims[i], dims[i + 1]), nn.BatchNorm1d(dims[i + 1]),
                 nn.ReLU(), nn.Dropout(head_dropout)]
    self.head = nn.Sequential(*layers, nn.Linear(dims[-1], 1))

  def param_groups(self, lr):
    """AdamW groups as configs/affinity.py's lr_mults: CNN x0.5,
    transformer x1.5, token and head x1.0."""
    transformer = [self.embed, self.layers, self.ln_out]
    return [
        {"params": list(self.cnn.parameters()), "lr": 0.5 * lr},
        {"params": [p for m in transformer for p in m.parameters()],
         "lr": 1.5 * lr},
        {"params": list(self.token.parameters()) +
                   list(self.head.parameters()), "lr": lr}]

  def forward(self, grid):
    x = self.cnn(grid)                                   # [B, 256, 6, 6, 6]
    x = self.embed(x.flatten(2).transpose(1, 2)) + self.pos  # [B, 216, 256]
    x = self.ln_out(self.layers(self.embed_dropout(x)))
    features = self.token(x.mean(1))
    return self.head(features), features


def objective(model, grid, label):
  pred, _ = model(grid)
  pred = pred.float().squeeze(-1)
  return (F.mse_loss(pred, label) + 0.5 * F.l1_loss(pred, label) +
          0.3 * F.huber_loss(pred, label, delta=1.0))


def run(args, res):
  device = torch_setup(args.device, res)  # fp32 = IEEE fp32: no TF32.

  t0 = time.perf_counter()
  batch = run_w4.make_batch()
  # Conv3d is channels first: [B, D, H, W, C] -> [B, C, D, H, W].
  grid = torch.from_numpy(batch["complex"]).permute(0, 4, 1, 2, 3)
  grid = grid.contiguous().to(device)
  label = torch.from_numpy(batch["label"]).to(device)
  torch_sync(device)
  res["data_s"] = time.perf_counter() - t0

  model = AdvancedTransformerCNN(in_channels=grid.shape[1],
                                 grid=grid.shape[2]).to(device).train()
  groups = model.param_groups(2e-4)
  assert sum(len(g["params"]) for g in groups) == len(
      list(model.parameters()))
  run_torch_train_step(res, args, device, model, objective,
                       lambda: (grid, label), run_w4.BATCH, lr=2e-4,
                       weight_decay=1e-4, params=groups)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  add_torch_step_args(p)
  add_step_args(p, "the first one")
  args = p.parse_args(argv)

  res = {"workload": "W4", "impl": "pytorch",
         **torch_labels(args),
         "loadavg_1min_start": os.getloadavg()[0],
         "versions": {"torch": torch.__version__}}
  run_guarded(run, args, res)
  res["loadavg_1min_end"] = os.getloadavg()[0]
  emit_result(res, args.out)


if __name__ == "__main__":
  main()
