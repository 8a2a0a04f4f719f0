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
time / the GPU's peak dense bf16 FLOP/s (`PEAK_BF16`), for every precision
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

from common import (fmt_mem, run_variants,  # pylint: disable=g-import-not-at-top
                    runner_parser, runner_plan)

BATCH = 8
GRID = 24
CHANNELS = 19

# Peak dense bf16 tensor FLOP/s (no sparsity) by a substring of the device
# name, from the vendors' data sheets; the SXM parts.
PEAK_BF16 = (("H200", 989.4e12), ("H100", 989.4e12), ("A100", 312e12),
             ("L40S", 362.05e12), ("A10G", 70e12), ("L4", 121e12))


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


def peak_bf16(device):
  for name, flops in PEAK_BF16:
    if name in (device or ""):
      return flops
  return None


def variants(torch_gpu, jax_gpu):
  del jax_gpu  # the mmjax rows are the same on either
  # The ratios' base row first and the bf16 rows last, so that a run cut
  # short keeps the fp32 comparison.
  v = [("pytorch", "fp32", "eager", ["w4_torch.py", "--variant", "eager"]),
       ("mmjax", "fp32", "jit", ["w4_mmjax.py", "--dtype", "float32"]),
       ("pytorch", "fp32", "torch.compile",
        ["w4_torch.py", "--variant", "compile"]),
       ("mmjax", "bf16 mixed", "jit", ["w4_mmjax.py", "--dtype", "bfloat16"])]
  if torch_gpu:
    v += [("pytorch", "bf16 autocast", "eager",
           ["w4_torch.py", "--variant", "eager", "--amp"]),
          ("pytorch", "bf16 autocast", "torch.compile",
           ["w4_torch.py", "--variant", "compile", "--amp"])]
  return v


def _rate(x):
  # A CPU step takes seconds: keep two significant digits there.
  return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def table(rows, gpu):
  base = next((r for r in rows if r["impl"] == "pytorch" and
               r["precision"] == "fp32" and r.get("row_label") == "eager" and
               r.get("samples_per_s")), None)
  flops = model_flops()
  head = ("| implementation | precision | variant | samples/s | "
          "ratio to PyTorch eager fp32 | median step (ms) | "
          "pipelined samples/s | peak memory | compile / warm-up (s) |")
  rule = "|---|---|---|---:|---:|---:|---:|---|---:|"
  if gpu:
    head += " MFU (bf16 peak) |"
    rule += "---:|"
  lines = [head, rule]
  for r in rows:
    label = r.get("row_label", r.get("variant", ""))
    compile_s = (f"{r['compile_s']:.1f}" if r.get("compile_s") is not None
                 else "-")
    if r.get("error"):
      lines.append(f"| {r['impl']} | {r['precision']} | {label} | "
                   f"failed: `{r['error'][:160]}` | - | - | - | "
                   f"{fmt_mem(r)} | {compile_s} |" + (" - |" if gpu else ""))
      continue
    ratio = (f"{r['samples_per_s'] / base['samples_per_s']:.2f}x"
             if base else "-")
    line = (f"| {r['impl']} | {r['precision']} | {label} | "
            f"{_rate(r['samples_per_s'])} | {ratio} | "
            f"{r['median_step_ms']:,.1f} | "
            f"{_rate(r['pipelined_samples_per_s'])} | {fmt_mem(r)} | "
            f"{compile_s} |")
    if gpu:
      peak = peak_bf16(r.get("device"))
      line += (f" {flops / (r['median_step_ms'] / 1e3) / peak:.1%} |"
               if peak else " - |")
    lines.append(line)
  lines.append("")
  lines.append(f"Model FLOPs per step (analytic, `run_w4.model_flops`): "
               f"{flops / 1e9:,.1f} GFLOP.")
  return "\n".join(lines)


def main(argv=None):
  p = runner_parser(__doc__, 10, 2, 600, "seconds per variant",
                    "comma-separated substrings; run matching rows only")
  args = p.parse_args(argv)

  torch_gpu, jax_gpu, gpu, steps, warmup, out = runner_plan(
      args, "w4", 10, 2)
  run_id, rows = run_variants(
      [(f"{impl} {precision} {label}", cmd,
        {"impl": impl, "precision": precision}, {"row_label": label})
       for impl, precision, label, cmd in variants(torch_gpu, jax_gpu)],
      args.python, args.only, steps, warmup, args.timeout, out,
      lambda res: res.get("samples_per_s", res.get("error")))

  print(f"\nW4 run {run_id}; results appended to {out}\n")
  print(table(rows, gpu))


if __name__ == "__main__":
  main()
