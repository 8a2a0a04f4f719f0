"""Runs every W1 variant (mmjax and PyTorch + PyG), one subprocess each.

  cd /work/main && PYTHONPATH=. python benchmarks/run_w1.py            # CPU or GPU
  cd /work/main && PYTHONPATH=. python benchmarks/run_w1.py --gpu yes --steps 50

Each variant runs in its own process (so a process max RSS on CPU, or the
device peak, belongs to that variant alone) under a time limit. The JSON lines
go to --out (default benchmarks/results/w1_<date>_<cpu|gpu>.jsonl) and a
markdown table is printed. 'ratio' is samples/s divided by that of the best
PyTorch row of the same run (any precision). A variant that fails (e.g.
torch.compile) keeps its row, with the error in place of the figures.

Variants: mmjax jit with aggregation=dense and =segment (fp32); PyTorch eager
and torch.compile (fp32). On a GPU also: PyTorch eager and torch.compile with
bf16 autocast, and mmjax with config.model.dtype=bfloat16 (params fp32,
activations bf16), labelled as such (W1 itself is an fp32 workload).
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


def has_gpu(py):
  code = ("import torch,jax;print(int(torch.cuda.is_available()), "
          "int(jax.devices()[0].platform=='gpu'))")
  try:
    out = subprocess.run([py, "-c", code], capture_output=True, text=True,
                         timeout=180, cwd=ROOT).stdout.split()
    return out[0] == "1", out[1] == "1"
  except Exception:  # pylint: disable=broad-except
    return False, False


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


def fmt_mem(res):
  b = res.get("peak_mem_bytes")
  if b is None:
    return "-"
  kind = res.get("peak_mem_kind", "")
  label = "RSS" if "RSS" in kind else "device"
  return f"{b / 2**20:,.0f} MiB ({label})"


def table(rows):
  ok = [r for r in rows if r["impl"] != "mmjax" and r.get("samples_per_s")]
  best = max(ok, key=lambda r: r["samples_per_s"]) if ok else None
  lines = [
      "| implementation | precision | aggregation / variant | samples/s | "
      "ratio to best PyTorch | median step (ms) | peak memory | "
      "compile / warm-up (s) |",
      "|---|---|---|---:|---:|---:|---|---:|"]
  for r in rows:
    label = r.get("row_label", r.get("variant", ""))
    if r.get("error"):
      lines.append(f"| {r['impl']} | {r['precision']} | {label} | "
                   f"failed: `{r['error'][:160]}` | - | - | {fmt_mem(r)} | "
                   f"{r.get('compile_s', float('nan')):.1f} |"
                   if r.get("compile_s") is not None else
                   f"| {r['impl']} | {r['precision']} | {label} | "
                   f"failed: `{r['error'][:160]}` | - | - | - | - |")
      continue
    ratio = (f"{r['samples_per_s'] / best['samples_per_s']:.2f}x"
             if best else "-")
    lines.append(
        f"| {r['impl']} | {r['precision']} | {label} | "
        f"{r['samples_per_s']:,.0f} | {ratio} | {r['median_step_ms']:.1f} | "
        f"{fmt_mem(r)} | {r['compile_s']:.1f} |")
  if best:
    lines.append("")
    lines.append(f"Best PyTorch row: {best['precision']} "
                 f"{best.get('row_label')} ({best['samples_per_s']:,.0f} "
                 "samples/s).")
  return "\n".join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--python", default=sys.executable)
  p.add_argument("--gpu", choices=("auto", "yes", "no"), default="auto")
  p.add_argument("--steps", type=int, default=0,
                 help="timed steps per variant (default: 20 CPU, 50 GPU)")
  p.add_argument("--warmup", type=int, default=0,
                 help="untimed steps after the first (default: 3 CPU, 10 GPU)")
  p.add_argument("--timeout", type=int, default=300,
                 help="seconds per variant")
  p.add_argument("--only", default="",
                 help="comma-separated substrings; run matching rows only")
  p.add_argument("--out", default="")
  args = p.parse_args(argv)

  if args.gpu == "auto":
    torch_gpu, jax_gpu = has_gpu(args.python)
  else:
    torch_gpu = jax_gpu = args.gpu == "yes"
  gpu = torch_gpu or jax_gpu
  steps = args.steps or (50 if gpu else 20)
  warmup = args.warmup or (10 if gpu else 3)
  out = args.out or os.path.join(
      HERE, "results",
      f"w1_{datetime.date.today().isoformat()}_{'gpu' if gpu else 'cpu'}"
      ".jsonl")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

  env = dict(os.environ)
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  run_id = datetime.datetime.now().isoformat(timespec="seconds")
  rows = []
  for impl, precision, label, cmd in variants(torch_gpu, jax_gpu):
    name = f"{impl} {precision} {label}"
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
                            cwd=ROOT, timeout=args.timeout)
      for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
          res = json.loads(line[len("RESULT "):])
      if res is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        res = {"error": f"exit {proc.returncode}: {tail}"}
      elif res.get("error"):
        sys.stderr.write(proc.stderr[-3000:])
    except subprocess.TimeoutExpired:
      res = {"error": f"timed out after {args.timeout} s"}
    res.setdefault("impl", impl)
    res.setdefault("precision", precision)
    res.update({"row_label": label, "run_id": run_id,
                "wall_s": time.perf_counter() - t0,
                "loadavg_1min_before": load0,
                "loadavg_1min_after": os.getloadavg()[0],
                "command": " ".join(["python"] + full[1:])})
    rows.append(res)
    with open(out, "a") as f:
      f.write(json.dumps(res) + "\n")
    print(f"   -> {res.get('samples_per_s', res.get('error'))}",
          file=sys.stderr, flush=True)

  print(f"\nW1 run {run_id}; results appended to {out}\n")
  print(table(rows))


if __name__ == "__main__":
  main()
