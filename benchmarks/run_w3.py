"""Runs every W3 variant (mmjax and PyTorch), one subprocess each.

  PYTHONPATH=. python benchmarks/run_w3.py --steps 3 --warmup 1   # CPU or GPU
  PYTHONPATH=. python benchmarks/run_w3.py --gpu yes --steps 50
  PYTHONPATH=. python benchmarks/run_w3.py --small --steps 1 --warmup 1

W3 is one training step of `viral` (reference recipe 003's genome
transformer classifier with its confidence head) on 64 genomes of 512
tokens x 1024 features. Each variant runs in its own process (so a process
max RSS on CPU, or the device peak, belongs to that variant alone) under a
time limit. The JSON lines go to --out (default
benchmarks/results/w3_<date>_<cpu|gpu>.jsonl) and a markdown table is
printed. 'ratio' is samples/s divided by that of the PyTorch fp32 eager row
of the same run; every row syncs every timed step. On a GPU the table adds
model FLOPs utilisation: `model_flops()` per step / median step time / the
GPU's peak dense bf16 FLOP/s (`common.PEAK_BF16`), for every precision (so
an fp32 row's figure is against the bf16 peak too, as W3/W4 ask).

Variants: mmjax jit with config.model.dtype float32 and bfloat16 (params
fp32, activations bf16); PyTorch eager and torch.compile (fp32). On a GPU
also PyTorch eager and torch.compile under bf16 autocast. `--small` runs
every variant at `SMALL`'s sizes (a check that the scripts run; its figures
are no W3 measurement).

`sizes()`, `make_batch()` and `model_flops()` are shared by both sides
(numpy only, so neither side imports the other's framework).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (mfu_table, mfu_variants,  # pylint: disable=g-import-not-at-top
                    run_labelled, runner_parser, runner_plan)

# The W3 shapes and model sizes. `head` and `confidence` are the hidden
# widths of the classifier and of the confidence head; `token_dim` is the
# width mmjax's model assembly projects the pooled embedding to.
FULL = dict(batch=64, tokens=512, features=1024, width=512, depth=8,
            heads=16, mlp_ratio=4, token_dim=512, head=(512, 256, 128),
            confidence=(256, 128), classes=2)
# Every part of the model at a size a test builds and steps in seconds.
SMALL = dict(batch=4, tokens=16, features=24, width=32, depth=2, heads=4,
             mlp_ratio=4, token_dim=32, head=(32, 16, 8), confidence=(16, 8),
             classes=2)
BATCH = FULL["batch"]
# The transformer's and the head's dropout rate (reference recipe 003).
DROPOUT = 0.1


def sizes(small=False, batch=0):
  """The sizes of the W3 shapes and model (a copy of FULL or SMALL), with
  the batch set to `batch` if > 0 (a machine the W3 batch does not fit)."""
  s = dict(SMALL if small else FULL)
  if batch:
    s["batch"] = int(batch)
  return s


def workload(args):
  """The 'workload' label of a row: W3, with what differs from it."""
  notes = (["small"] if args.small else []) + (
      [f"batch {args.batch}"] if args.batch else [])
  return "W3" + (f" ({', '.join(notes)})" if notes else "")


def make_batch(small=False, seed=0, batch=0):
  """The W3 batch (numpy), in mmjax's padded batch format: genome float32
  [B, T, F] = [64, 512, 1024] token features in [0, 1) (k-mer spectra are
  non-negative); genome_mask float32 [B, T] all ones (every genome fills its
  512 tokens); label int32 [B] in {0, 1}, both classes present;
  modality_mask [B, 1] and sample_mask [B] all ones."""
  s = sizes(small, batch)
  b, t, f = s["batch"], s["tokens"], s["features"]
  rng = np.random.default_rng(seed)
  label = np.arange(b, dtype=np.int32) % s["classes"]
  return {
      "genome": rng.random((b, t, f), dtype=np.float32),
      "genome_mask": np.ones((b, t), np.float32),
      "label": rng.permutation(label).astype(np.int32),
      "modality_mask": np.ones((b, 1), np.float32),
      "sample_mask": np.ones((b,), np.float32)}


def model_flops(small=False, batch=0):
  """Model FLOPs of one W3 training step, counted analytically.

  Per sample, with T tokens of F features, width W, depth L, MLP ratio r,
  token_dim D, forward multiply-adds (MACs):
    embedding            T F W
    per layer            4 T W^2        q, k, v and output projections
                       + 2 T^2 W        attention's Q K^T and A V matmuls
                       + 2 r T W^2      the MLP
    modality token       2 W D          (mean + max pooling -> 2W)
    classifier           D h1 + h1 h2 + h2 h3 + h3 C
    confidence head      D c1 + c1 c2 + c2 1
  FLOPs per step = 3 x 2 x B x MACs: a multiply-add is 2 FLOPs and the
  backward is two matmuls per forward matmul. Normalisation, activations,
  softmax, pooling, the loss and the optimizer are left out, as model FLOPs
  utilisation conventionally does. The 3x slightly overcounts what either
  side computes: neither needs the input gradient of the embedding (T F W
  MACs, 1.8% of the forward at W3's sizes) nor of the confidence head,
  whose input is detached.
  """
  s = sizes(small, batch)
  t, f, w, r = s["tokens"], s["features"], s["width"], s["mlp_ratio"]
  d = s["token_dim"]
  per_layer = 4 * t * w * w + 2 * t * t * w + 2 * r * t * w * w
  head = (d,) + tuple(s["head"]) + (s["classes"],)
  confidence = (d,) + tuple(s["confidence"]) + (1,)
  macs = (t * f * w + s["depth"] * per_layer + 2 * w * d
          + sum(a * b for a, b in zip(head[:-1], head[1:]))
          + sum(a * b for a, b in zip(confidence[:-1], confidence[1:])))
  return 3 * 2 * s["batch"] * macs


def variants(torch_gpu, jax_gpu, small=False, batch=0):
  del jax_gpu  # the mmjax rows are the same on either
  extra = (["--small"] if small else []) + (
      ["--batch", str(batch)] if batch else [])
  return mfu_variants("w3", torch_gpu, extra)


def add_size_args(p):
  """--small and --params_only, the size flags of both W3 scripts."""
  p.add_argument("--small", action="store_true",
                 help="run_w3.SMALL's sizes (tests), not W3's")
  p.add_argument("--params_only", action="store_true",
                 help="report the parameter count only; time nothing")
  p.add_argument("--batch", type=int, default=0,
                 help="> 0: this batch instead of W3's 64 (labelled so)")


def table(rows, gpu, small=False, batch=0):
  return mfu_table(rows, gpu, model_flops(small, batch), "run_w3.model_flops")


def main(argv=None):
  p = runner_parser(__doc__, 3, 1, 1800, "seconds per variant",
                    "comma-separated substrings; run matching rows only",
                    extra=[("--small", dict(
                        action="store_true",
                        help="every variant at SMALL's sizes (a check "
                             "that the scripts run, not a W3 figure)")),
                           ("--batch", dict(
                               type=int, default=0,
                               help="> 0: every variant at this batch "
                                    "instead of 64 (a machine whose "
                                    "memory W3's batch does not fit)"))])
  args = p.parse_args(argv)

  torch_gpu, jax_gpu, gpu, steps, warmup, out = runner_plan(
      args, "w3_small" if args.small else "w3", 3, 1)
  run_id, rows = run_labelled(
      variants(torch_gpu, jax_gpu, args.small, args.batch), args, steps,
      warmup, out)

  print(f"\n{workload(args)} run {run_id}; results appended to {out}\n")
  print(table(rows, gpu, args.small, args.batch))


if __name__ == "__main__":
  main()
