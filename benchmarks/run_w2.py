"""Runs every W2 variant (ensemble members), one subprocess each.

  cd /work/main && PYTHONPATH=. python benchmarks/run_w2.py            # CPU or GPU
  cd /work/main && PYTHONPATH=. python benchmarks/run_w2.py --gpu yes --steps 50

Rows, each for K = 1 and K = 5 members (fp32 everywhere):
  mmjax        jit(vmap(member_step))   benchmarks/w2_mmjax.py
  pytorch+pyg  loop (eager), loop + torch.compile, torch.func vmap (eager),
               torch.func vmap + torch.compile   benchmarks/w2_torch.py
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
Device detection, timing rules and the memory label are those of run_w1.py
(whose has_gpu and fmt_mem are reused).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from run_w1 import fmt_mem, has_gpu  # pylint: disable=g-import-not-at-top

TORCH_VARIANTS = ("loop", "loop-compile", "vmap", "vmap-compile")
LABELS = {"loop": "loop of K models, eager",
          "loop-compile": "loop of K models, torch.compile",
          "vmap": "torch.func vmap, eager",
          "vmap-compile": "torch.func vmap, torch.compile",
          "mmjax": "jit(vmap(member_step))"}


def variants(members):
  v = []
  for k in members:
    v.append(("mmjax", "mmjax", k, ["w2_mmjax.py", "--members", str(k)]))
  for var in TORCH_VARIANTS:
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
      "K5/K1 step time | vs best PyTorch (K=5) | peak memory | "
      "compile / warm-up (s) | load avg (1 min) |",
      "|---|---|---:|---:|---:|---:|---:|---|---:|---|"]
  for r in rows:
    label = LABELS.get(r["row_variant"], r["row_variant"])
    load = (f"{r['loadavg_1min_before']:.1f}-"
            f"{r['loadavg_1min_after']:.1f}")
    comp = (f"{r['compile_s']:.1f}" if r.get("compile_s") is not None
            else "-")
    if r.get("error") or not r.get("median_step_ms"):
      lines.append(f"| {r['impl']} | {label} | {r['members']} | failed: "
                   f"`{r.get('error', '?')[:200]}` | - | - | - | "
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
        f"{vs} | {fmt_mem(r)} | {comp} | {load} |")
  if best5:
    lines.append("")
    lines.append(f"Best PyTorch K=5 row: "
                 f"{LABELS[best5['row_variant']]} "
                 f"({best5['median_step_ms']:.1f} ms).")
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--python", default=sys.executable)
  p.add_argument("--gpu", choices=("auto", "yes", "no"), default="auto")
  p.add_argument("--members", default="1,5")
  p.add_argument("--steps", type=int, default=0,
                 help="timed steps per variant (default: 10 CPU, 50 GPU)")
  p.add_argument("--warmup", type=int, default=0,
                 help="untimed steps after the first (default: 1 CPU, 10 GPU)")
  p.add_argument("--timeout", type=int, default=0,
                 help="seconds per variant (default: 240 CPU, 600 GPU)")
  p.add_argument("--only", default="",
                 help="comma-separated substrings of '<impl> <variant> K=<k>'"
                      "; run matching rows only")
  p.add_argument("--out", default="")
  args = p.parse_args(argv)

  if args.gpu == "auto":
    torch_gpu, jax_gpu = has_gpu(args.python)
  else:
    torch_gpu = jax_gpu = args.gpu == "yes"
  gpu = torch_gpu or jax_gpu
  steps = args.steps or (50 if gpu else 10)
  warmup = args.warmup or (10 if gpu else 1)
  timeout = args.timeout or (600 if gpu else 240)
  out = args.out or os.path.join(
      HERE, "results",
      f"w2_{datetime.date.today().isoformat()}_{'gpu' if gpu else 'cpu'}"
      ".jsonl")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

  env = dict(os.environ)
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  run_id = datetime.datetime.now().isoformat(timespec="seconds")
  members = [int(x) for x in args.members.split(",")]
  rows = []
  for impl, var, k, cmd in variants(members):
    name = f"{impl} {var} K={k}"
    if args.only and not any(s in name for s in args.only.split(",")):
      continue
    full = [args.python, os.path.join(HERE, cmd[0])] + cmd[1:] + [
        "--steps", str(steps), "--warmup", str(warmup)]
    print(f"== {name}: {' '.join(full[1:])}", file=sys.stderr, flush=True)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = None
    try:
      proc = subprocess.run(full, capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=timeout)
      for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
          res = json.loads(line[len("RESULT "):])
      if res is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        res = {"error": f"exit {proc.returncode}: {tail}"}
      elif res.get("error"):
        sys.stderr.write(proc.stderr[-3000:])
    except subprocess.TimeoutExpired:
      res = {"error": f"timed out after {timeout} s"}
    res.setdefault("impl", impl)
    res.setdefault("precision", "fp32")
    res.setdefault("members", k)
    res.update({"workload": "W2", "row_variant": var, "run_id": run_id,
                "wall_s": time.perf_counter() - t0,
                "loadavg_1min_before": load0,
                "loadavg_1min_after": os.getloadavg()[0],
                "command": " ".join(["python"] + full[1:])})
    rows.append(res)
    with open(out, "a") as f:
      f.write(json.dumps(res) + "\n")
    print(f"   -> {res.get('median_step_ms', res.get('error'))} ms "
          f"({res['wall_s']:.0f} s)", file=sys.stderr, flush=True)

  print(f"\nW2 run {run_id}; {steps} timed steps, {warmup} warm-up; "
        f"results appended to {out}\n")
  print(table(rows))


if __name__ == "__main__":
  main()
