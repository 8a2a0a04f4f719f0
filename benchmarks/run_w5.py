"""Runs every W5 variant (mmjax and PyTorch), one subprocess each.

  PYTHONPATH=. python benchmarks/run_w5.py --steps 20 --warmup 5   # CPU or GPU
  PYTHONPATH=. python benchmarks/run_w5.py --gpu yes --steps 50
  PYTHONPATH=. python benchmarks/run_w5.py --small --steps 1 --warmup 1

W5 is one training step of `cardiac` (reference recipe 004's trajectory
sequence classifier: residual blocks of BatchNorm, self-attention and an
MLP, mean pooled) on 32 sequences of 80 time steps x 50 features, 6
classes. Each variant runs in its own process (so a process max RSS on
CPU, or the device peak, belongs to that variant alone) under a time
limit. The JSON lines go to --out (default
benchmarks/results/w5_<date>_<cpu|gpu>.jsonl) and a markdown table is
printed. 'ratio' is samples/s divided by that of the PyTorch fp32 eager row
of the same run; every row syncs every timed step. On a GPU the table adds
model FLOPs utilisation (`model_flops()` per step / median step time / the
GPU's peak dense bf16 FLOP/s, `common.PEAK_BF16`); WORKLOADS.md asks for it
for W3 and W4 only, and at W5's sizes it is small by construction.

Variants: mmjax jit with model dtype float32 and bfloat16 (params fp32,
activations bf16); PyTorch eager and torch.compile (fp32). On a GPU also
PyTorch eager and torch.compile under bf16 autocast. `--small` runs every
variant at `SMALL`'s sizes (a check that the scripts run; its figures are
no W5 measurement).

`sizes()`, `make_batch()` and `model_flops()` are shared by both sides
(numpy only, so neither side imports the other's framework).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (mfu_table, mfu_variants,  # pylint: disable=g-import-not-at-top
                    run_labelled, runner_parser, runner_plan)

# The W5 shapes and model sizes: `steps` time steps of `features` features
# per sequence, `depth` residual blocks of width `width`.
FULL = dict(batch=32, steps=80, features=50, width=160, depth=3, heads=4,
            mlp_ratio=4, classes=6)
# Every part of the model at a size a test builds and steps in seconds.
SMALL = dict(batch=4, steps=8, features=6, width=16, depth=3, heads=4,
             mlp_ratio=4, classes=6)
BATCH = FULL["batch"]
# Block i's dropout rate (increasing with depth, as W5 gives them).
DROPOUTS = (0.1, 0.2, 0.3)
LABEL_SMOOTHING = 0.15
LR = 1e-3
WEIGHT_DECAY = 0.01
CLIP = 1.0


def sizes(small=False):
  """The sizes of the W5 shapes and model (a copy of FULL or SMALL)."""
  return dict(SMALL if small else FULL)


def workload(args):
  """The 'workload' label of a row: W5, or W5 (small)."""
  return "W5 (small)" if args.small else "W5"


def make_batch(small=False, seed=0):
  """The W5 batch (numpy), in mmjax's padded batch format: trajectory
  float32 [B, T, F] = [32, 80, 50] standard normal; trajectory_mask
  float32 [B, T] all ones (every sequence fills its 80 steps); label int32
  [B] in [0, 6), every class present."""
  s = sizes(small)
  b, t, f = s["batch"], s["steps"], s["features"]
  rng = np.random.default_rng(seed)
  label = np.arange(b, dtype=np.int32) % s["classes"]
  return {
      "trajectory": rng.normal(size=(b, t, f)).astype(np.float32),
      "trajectory_mask": np.ones((b, t), np.float32),
      "label": rng.permutation(label).astype(np.int32)}


def model_flops(small=False):
  """Model FLOPs of one W5 training step, counted analytically.

  Per sample, with T steps of F features, width W, depth L, MLP ratio r
  and C classes, forward multiply-adds (MACs):
    embedding            T F W
    per block            4 T W^2        q, k, v and output projections
                       + 2 T^2 W        attention's Q K^T and A V matmuls
                       + 2 r T W^2      the MLP
    classifier           W C
  FLOPs per step = 3 x 2 x B x MACs (a multiply-add is 2 FLOPs; the
  backward is two matmuls per forward matmul). BatchNorm, activations,
  softmax, pooling, the loss and the optimizer are left out.
  """
  s = sizes(small)
  t, f, w, r = s["steps"], s["features"], s["width"], s["mlp_ratio"]
  per_block = 4 * t * w * w + 2 * t * t * w + 2 * r * t * w * w
  macs = t * f * w + s["depth"] * per_block + w * s["classes"]
  return 3 * 2 * s["batch"] * macs


def variants(torch_gpu, jax_gpu, small=False):
  del jax_gpu  # the mmjax rows are the same on either
  return mfu_variants("w5", torch_gpu, ["--small"] if small else [])


def add_size_args(p):
  """--small and --params_only, the size flags of both W5 scripts."""
  p.add_argument("--small", action="store_true",
                 help="run_w5.SMALL's sizes (tests), not W5's")
  p.add_argument("--params_only", action="store_true",
                 help="report the parameter count only; time nothing")


def table(rows, gpu, small=False):
  return mfu_table(rows, gpu, model_flops(small), "run_w5.model_flops")


def main(argv=None):
  p = runner_parser(__doc__, 20, 5, 600, "seconds per variant",
                    "comma-separated substrings; run matching rows only",
                    extra=[("--small", dict(
                        action="store_true",
                        help="every variant at SMALL's sizes (a check "
                             "that the scripts run, not a W5 figure)"))])
  args = p.parse_args(argv)

  torch_gpu, jax_gpu, gpu, steps, warmup, out = runner_plan(
      args, "w5_small" if args.small else "w5", 20, 5)
  run_id, rows = run_labelled(variants(torch_gpu, jax_gpu, args.small),
                              args, steps, warmup, out)

  print(f"\n{workload(args)} run {run_id}; results appended to {out}\n")
  print(table(rows, gpu, args.small))


if __name__ == "__main__":
  main()
