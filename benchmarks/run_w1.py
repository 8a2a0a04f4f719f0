"""Runs every W1 variant (mmjax and PyTorch + PyG), one subprocess each.

  PYTHONPATH=. python benchmarks/run_w1.py            # CPU or GPU
  PYTHONPATH=. python benchmarks/run_w1.py --gpu yes --steps 50

Each variant runs in its own process (so a process max RSS on CPU, or the
device peak, belongs to that variant alone) under a time limit. The JSON lines
go to --out (default benchmarks/results/w1_<date>_<cpu|gpu>.jsonl) and a
markdown table is printed. 'ratio' is samples/s divided by that of the best
PyTorch row of the same run (any precision); both sync every timed step.
'pipelined samples/s' times as many steps dispatched back to back and synced
once, as a training loop runs. A variant that fails (e.g.
torch.compile) keeps its row, with the error in place of the figures.

Variants: mmjax jit with aggregation=dense and =segment (fp32); PyTorch eager
and torch.compile (fp32). On a GPU also: PyTorch eager and torch.compile with
bf16 autocast, and mmjax with config.model.dtype=bfloat16 (params fp32,
activations bf16), labelled as such (W1 itself is an fp32 workload).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# has_gpu stays importable as run_w1.has_gpu (the README names it so).
from common import (fmt_mem, has_gpu, run_labelled,  # pylint: disable=g-import-not-at-top,unused-import
                    runner_parser, runner_plan)


def variants(torch_gpu, jax_gpu):
  v = [("mmjax", "fp32", "dense", ["w1_mmjax.py", "--aggregation", "dense"]),
       ("mmjax", "fp32", "segment",
        ["w1_mmjax.py", "--aggregation", "segment"]),
       ("pytorch+pyg", "fp32", "eager", ["w1_torch.py", "--variant", "eager"]),
       ("pytorch+pyg", "fp32", "torch.compile",
        ["w1_torch.py", "--variant", "compile"])]
  if torch_gpu:
    v += [("pytorch+pyg", "bf16 autocast", "eager",
           ["w1_torch.py", "--variant", "eager", "--amp"]),
          ("pytorch+pyg", "bf16 autocast", "torch.compile",
           ["w1_torch.py", "--variant", "compile", "--amp"])]
  if jax_gpu:
    v += [("mmjax", "bf16 mixed", "dense",
           ["w1_mmjax.py", "--aggregation", "dense", "--dtype", "bfloat16"]),
          ("mmjax", "bf16 mixed", "segment",
           ["w1_mmjax.py", "--aggregation", "segment", "--dtype",
            "bfloat16"])]
  return v


def table(rows):
  ok = [r for r in rows if r["impl"] != "mmjax" and r.get("samples_per_s")]
  best = max(ok, key=lambda r: r["samples_per_s"]) if ok else None
  lines = [
      "| implementation | precision | aggregation / variant | samples/s | "
      "ratio to best PyTorch | median step (ms) | pipelined samples/s | "
      "peak memory | compile / warm-up (s) |",
      "|---|---|---|---:|---:|---:|---:|---|---:|"]
  for r in rows:
    label = r.get("row_label", r.get("variant", ""))
    if r.get("error"):
      lines.append(f"| {r['impl']} | {r['precision']} | {label} | "
                   f"failed: `{r['error'][:160]}` | - | - | - | "
                   f"{fmt_mem(r)} | {r.get('compile_s', float('nan')):.1f} |"
                   if r.get("compile_s") is not None else
                   f"| {r['impl']} | {r['precision']} | {label} | "
                   f"failed: `{r['error'][:160]}` | - | - | - | - | - |")
      continue
    ratio = (f"{r['samples_per_s'] / best['samples_per_s']:.2f}x"
             if best else "-")
    lines.append(
        f"| {r['impl']} | {r['precision']} | {label} | "
        f"{r['samples_per_s']:,.0f} | {ratio} | {r['median_step_ms']:.1f} | "
        f"{r['pipelined_samples_per_s']:,.0f} | {fmt_mem(r)} | "
        f"{r['compile_s']:.1f} |")
  if best:
    lines.append("")
    lines.append(f"Best PyTorch row: {best['precision']} "
                 f"{best.get('row_label')} ({best['samples_per_s']:,.0f} "
                 "samples/s).")
  return "\n".join(lines)


def main(argv=None):
  p = runner_parser(__doc__, 20, 3, 300, "seconds per variant",
                    "comma-separated substrings; run matching rows only")
  args = p.parse_args(argv)

  torch_gpu, jax_gpu, _, steps, warmup, out = runner_plan(args, "w1", 20, 3)
  run_id, rows = run_labelled(variants(torch_gpu, jax_gpu), args, steps,
                              warmup, out)

  print(f"\nW1 run {run_id}; results appended to {out}\n")
  print(table(rows))


if __name__ == "__main__":
  main()
