"""Runs every W4 variant (mmjax and PyTorch), one subprocess each.

  PYTHONPATH=. python benchmarks/run_w4.py --steps 10      # CPU or GPU
  PYTHONPATH=. python benchmarks/run_w4.py --gpu yes --steps 50

W4 is one training step of `affinity` (reference recipe 002, the
AdvancedTransformerCNN) on 8 voxel grids of 24^3 x 19 channels. Each variant
runs in its own process (so a process max RSS on CPU, or the device peak,
belongs to that variant alone) under a time limit. The JSON lines go to
--out (default benchmarks/results/w4_<date>_<cpu|gpu>.jsonl) and a markdown
table is printed. 'ratio' is samples/s divided by that of the PyTorch fp32
eager row of the same run; every row syncs every timed step. On a GPU the
table adds model FLOPs utilisation: `model_flops()` per step / median step
time / the GPU's peak dense bf16 FLOP/s (`common.PEAK_BF16`), for every precision
(so an fp32 row's figure is against the bf16 peak too, as W3/W4 ask).

Variants: mmjax jit with config.model.dtype float32 and bfloat16 (params
fp32, activations bf16); PyTorch eager and torch.compile (fp32). On a GPU
also PyTorch eager and torch.compile under bf16 autocast.

`make_batch()` and `BATCH` are the W4 batch of both sides (numpy only, so
neither side imports the other's framework).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (mfu_table, mfu_variants,  # pylint: disable=g-import-not-at-top
                    run_labelled, runner_parser, runner_plan)

BATCH = 8
GRID = 24
CHANNELS = 19


def make_batch(seed=0):
  """The W4 batch (numpy): complex float32 [8, 24, 24, 24, 19] voxel
  densities in [0, 1), channels last; label float32 [8] pK-like values;
  modality_mask [8, 1] and sample_mask [8] all ones."""
  rng = np.random.default_rng(seed)
  return {
      "complex": rng.random((BATCH, GRID, GRID, GRID, CHANNELS),
                            dtype=np.float32),
      "label": (7.0 + 1.5 * rng.standard_normal(BATCH)).astype(np.float32),
      "modality_mask": np.ones((BATCH, 1), np.float32),
      "sample_mask": np.ones((BATCH,), np.float32)}


def model_flops(batch=BATCH, grid=GRID, channels=CHANNELS, branch=32,
                stage=256, width=256, depth=4, mlp_ratio=4,
                head=(256, 512, 256, 128, 64, 32, 1)):
  """Model FLOPs of one training step, counted analytically: 3 x the
  forward's (the backward is two matmuls per forward matmul), a
  multiply-add = 2 FLOPs, convolutions, projections and attention's two
  batched matmuls only (normalisation, activations and the optimizer are
  left out, as model FLOPs utilisation conventionally does)."""
  v0 = grid ** 3                 # multi-scale block, spatial attention
  v1 = (grid // 2) ** 3          # down1 output, stage
  t = (grid // 4) ** 3           # down2 output = tokens
  c = 4 * branch
  fwd = 2 * v0 * channels * branch * (1 + 27 + 125 + 27)
  fwd += 2 * c * (c // 16) * 2   # squeeze-excitation
  fwd += 2 * v0 * 2 * 7 ** 3     # spatial attention's conv
  fwd += 2 * v1 * 27 * c * c + 2 * v1 * 27 * c * stage
  fwd += 2 * t * 27 * stage * stage
  fwd += 2 * t * stage * width   # token embedding
  per_layer = (2 * t * 4 * width * width            # q, k, v, out
               + 2 * 2 * t * t * width               # scores, weights x v
               + 2 * 2 * t * width * mlp_ratio * width)
  fwd += depth * per_layer
  fwd += 2 * width * width       # modality token
  fwd += sum(2 * a * b for a, b in zip(head[:-1], head[1:]))
  return 3 * batch * fwd


def variants(torch_gpu, jax_gpu):
  del jax_gpu  # the mmjax rows are the same on either
  return mfu_variants("w4", torch_gpu)


def table(rows, gpu):
  return mfu_table(rows, gpu, model_flops(), "run_w4.model_flops")


def main(argv=None):
  p = runner_parser(__doc__, 10, 2, 600, "seconds per variant",
                    "comma-separated substrings; run matching rows only")
  args = p.parse_args(argv)

  torch_gpu, jax_gpu, gpu, steps, warmup, out = runner_plan(
      args, "w4", 10, 2)
  run_id, rows = run_labelled(variants(torch_gpu, jax_gpu), args, steps,
                              warmup, out)

  print(f"\nW4 run {run_id}; results appended to {out}\n")
  print(table(rows, gpu))


if __name__ == "__main__":
  main()
