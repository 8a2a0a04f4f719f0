"""Runs every W2 variant (ensemble members), one subprocess each.

  PYTHONPATH=. python benchmarks/run_w2.py            # CPU or GPU
  PYTHONPATH=. python benchmarks/run_w2.py --gpu yes --steps 50

Rows, each for K = 1 and K = 5 members (fp32 everywhere):
  mmjax        jit(vmap(member_step))   benchmarks/w2_mmjax.py
  pytorch+pyg  loop (eager), loop + torch.compile, torch.func vmap (eager),
               torch.func vmap + torch.compile, both again with the math
               attention backend (CUDA's default kernel fails under vmap)
                                                  benchmarks/w2_torch.py
Each variant runs in its own process under --timeout (so the CPU max RSS or
the device peak belongs to it alone); a failing variant keeps its row with
the error's first line. JSON lines go to --out (default
benchmarks/results/w2_<date>_<cpu|gpu>.jsonl, appended), then a markdown
table is printed:
  K5/K1     median step time of K=5 over that of K=1 of the same variant (the
            figure W2 is about; 5.0 = no gain over running members one by one)
  vs best PyTorch (K=5)   mmjax's K=5 step time / the fastest PyTorch K=5
            step time of the same run (< 1 = mmjax faster; its inverse is the
            speed-up).
  pipelined step   the same number of steps dispatched back to back and
            synced once (as a training loop runs); the other columns sync
            every step.
Device detection, timing rules and the memory label are those of run_w1.py
(both use has_gpu, fmt_mem and the subprocess loop of benchmarks/common.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (W2_TORCH_VARIANTS, fmt_mem,  # pylint: disable=g-import-not-at-top
                    run_variants, runner_parser, runner_plan)
LABELS = {"loop": "loop of K models, eager",
          "loop-compile": "loop of K models, torch.compile",
          "vmap": "torch.func vmap, eager",
          "vmap-compile": "torch.func vmap, torch.compile",
          "vmap-math": "torch.func vmap, eager, math attention",
          "vmap-compile-math": "torch.func vmap, torch.compile, math attention",
          "mmjax": "jit(vmap(member_step))"}


def variants(members):
  v = []
  for k in members:
    v.append(("mmjax", "mmjax", k, ["w2_mmjax.py", "--members", str(k)]))
  for var in W2_TORCH_VARIANTS:
    for k in members:
      v.append(("pytorch+pyg", var, k,
                ["w2_torch.py", "--variant", var, "--members", str(k)]))
  return v


def table(rows):
  by = {(r["impl"], r["row_variant"], r["members"]): r for r in rows}
  ok5 = [r for r in rows if r["impl"] != "mmjax" and r["members"] == 5
         and r.get("median_step_ms")]
  best5 = min(ok5, key=lambda r: r["median_step_ms"]) if ok5 else None
  lines = [
      "| implementation | variant | members | samples/s | median step (ms) | "
      "K5/K1 step time | vs best PyTorch (K=5) | pipelined step (ms) | "
      "peak memory | compile / warm-up (s) | load avg (1 min) |",
      "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
  for r in rows:
    label = LABELS.get(r["row_variant"], r["row_variant"])
    load = (f"{r['loadavg_1min_before']:.1f}-"
            f"{r['loadavg_1min_after']:.1f}")
    comp = (f"{r['compile_s']:.1f}" if r.get("compile_s") is not None
            else "-")
    if r.get("error") or not r.get("median_step_ms"):
      lines.append(f"| {r['impl']} | {label} | {r['members']} | failed: "
                   f"`{r.get('error', '?')[:200]}` | - | - | - | - | "
                   f"{fmt_mem(r)} | {comp} | {load} |")
      continue
    k1 = by.get((r["impl"], r["row_variant"], 1))
    rel = (f"{r['median_step_ms'] / k1['median_step_ms']:.2f}x"
           if r["members"] == 5 and k1 and k1.get("median_step_ms") else "")
    vs = ""
    if r["impl"] == "mmjax" and r["members"] == 5 and best5:
      vs = (f"{r['median_step_ms'] / best5['median_step_ms']:.2f} "
            f"({best5['median_step_ms'] / r['median_step_ms']:.1f}x faster)")
    lines.append(
        f"| {r['impl']} | {label} | {r['members']} | "
        f"{r['samples_per_s']:,.0f} | {r['median_step_ms']:.1f} | {rel} | "
        f"{vs} | {r['pipelined_step_ms']:.1f} | {fmt_mem(r)} | {comp} | "
        f"{load} |")
  if best5:
    lines.append("")
    lines.append(f"Best PyTorch K=5 row: "
                 f"{LABELS[best5['row_variant']]} "
                 f"({best5['median_step_ms']:.1f} ms).")
  return "\n".join(lines)


def main(argv=None):
  p = runner_parser(
      __doc__, 10, 1, 0, "seconds per variant (default: 240 CPU, 600 GPU)",
      "comma-separated substrings of '<impl> <variant> K=<k>'; run matching "
      "rows only", extra=[("--members", {"default": "1,5"})])
  args = p.parse_args(argv)

  _, _, gpu, steps, warmup, out = runner_plan(args, "w2", 10, 1)
  timeout = args.timeout or (600 if gpu else 240)
  members = [int(x) for x in args.members.split(",")]
  run_id, rows = run_variants(
      [(f"{impl} {var} K={k}", cmd,
        {"impl": impl, "precision": "fp32", "members": k},
        {"workload": "W2", "row_variant": var})
       for impl, var, k, cmd in variants(members)],
      args.python, args.only, steps, warmup, timeout, out,
      lambda res: (f"{res.get('median_step_ms', res.get('error'))} ms "
                   f"({res['wall_s']:.0f} s)"))

  print(f"\nW2 run {run_id}; {steps} timed steps, {warmup} warm-up; "
        f"results appended to {out}\n")
  print(table(rows))


if __name__ == "__main__":
  main()
