"""Pieces shared by the benchmark scripts (W1 and W2, mmjax and PyTorch).

  add_step_args   --steps/--warmup(/--steps_per_epoch)/--out of one variant
  time_steps      first call, warm-up, synced timed steps and pipelined
                  steps of a train step
  step_stats      samples/s, median/min step time from the timed steps,
                  and the pipelined rate
  peak_memory     device peak (JAX or CUDA) or the process max RSS on CPU
  emit_result     the 'RESULT <json>' line, appended to --out as well
  run_guarded     a PyTorch run whose exception becomes the 'error' field
  torch_setup     PyTorch device choice, TF32 off, seed, the 'device' field
  runner_parser, runner_plan, run_variants, has_gpu, fmt_mem   the
                  run_w*.py drivers

Nothing here imports JAX or torch at module level (the drivers use neither);
the functions that need one import it when called.
"""

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# W2's PyTorch variants: the choices of w2_torch.py and the rows of run_w2.py.
W2_TORCH_VARIANTS = ("loop", "loop-compile", "vmap", "vmap-compile",
                     "vmap-math", "vmap-compile-math")


# ----------------------------------------------------------- one variant ---

def add_step_args(p, first, steps_per_epoch=False):
  """The flags every single-variant script ends with; `first` names the
  first call in --warmup's help."""
  p.add_argument("--steps", type=int, default=30, help="timed steps")
  p.add_argument("--warmup", type=int, default=5,
                 help=f"untimed steps after {first}")
  if steps_per_epoch:
    p.add_argument("--steps_per_epoch", type=int, default=100,
                   help="only shapes the lr schedule; no effect on cost")
  p.add_argument("--out", default="", help="append the JSON line here")


def time_steps(step, sync, warmup, steps, res=None, compile_note=None):
  """Times `step()` (no arguments; it returns what `sync` waits on).

  The first call (trace/compile + one step, or the first eager step) is timed
  on its own, then `warmup` untimed calls (synced once at the end), then
  `steps` calls each synced and timed, then `steps` calls dispatched back to
  back and synced once at the end ("pipelined": how a training loop runs,
  the host queueing the next step while the device runs this one). With
  `res`, 'compile_s' (then 'compile_note', when given) and 'warmup_steps_s'
  are written into it as soon as they are known, so a later failure keeps
  them.

  Returns (compile_s, warmup_s, times, pipelined seconds per step, last
  output of step).
  """
  t0 = time.perf_counter()
  out = step()
  sync(out)
  compile_s = time.perf_counter() - t0
  if res is not None:
    res["compile_s"] = compile_s
    if compile_note is not None:
      res["compile_note"] = compile_note
  t0 = time.perf_counter()
  for _ in range(warmup):
    out = step()
  sync(out)
  warmup_s = time.perf_counter() - t0
  if res is not None:
    res["warmup_steps_s"] = warmup_s
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    out = step()
    sync(out)
    times.append(time.perf_counter() - t0)
  t0 = time.perf_counter()
  for _ in range(steps):
    out = step()
  sync(out)
  pipelined_s = (time.perf_counter() - t0) / max(steps, 1)
  return compile_s, warmup_s, times, pipelined_s, out


def step_stats(times, samples_per_step, pipelined_s):
  """The step-time fields of a result line, from the synced timed steps
  (seconds each) and the pipelined seconds per step."""
  med = statistics.median(times)
  return {"samples_per_s": samples_per_step / med,
          "median_step_ms": med * 1e3, "min_step_ms": min(times) * 1e3,
          "timed_steps": len(times),
          "pipelined_samples_per_s": samples_per_step / pipelined_s,
          "pipelined_step_ms": pipelined_s * 1e3}


def max_rss():
  # Linux: ru_maxrss in KiB.
  return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
          "process max RSS (CPU)")


def peak_memory(torch_device=None):
  """(bytes, kind). torch_device given: torch.cuda.max_memory_allocated on
  CUDA; else JAX's first device's peak_bytes_in_use when it has one. On CPU
  (either side) the process' max RSS, labelled as such."""
  if torch_device is not None:
    if torch_device.type == "cuda":
      import torch  # pylint: disable=g-import-not-at-top
      return torch.cuda.max_memory_allocated(torch_device), \
          "torch.cuda.max_memory_allocated"
    return max_rss()
  import jax  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  if dev.platform != "cpu":
    try:
      stats = dev.memory_stats() or {}
      if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"], "device peak_bytes_in_use"
    except Exception:  # pylint: disable=broad-except
      pass
  return max_rss()


def jax_info():
  """The 'device' string and the 'versions' dict of an mmjax result line."""
  import jax  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  return (f"{dev.platform}: {dev.device_kind}",
          {"jax": jax.__version__,
           "flax": __import__("flax").__version__,
           "optax": __import__("optax").__version__})


def emit_result(res, out_path):
  """Prints 'RESULT <json>' (what run_w*.py read) and appends the JSON line
  to out_path when one is given."""
  line = json.dumps(res)
  print("RESULT " + line, flush=True)
  if out_path:
    with open(out_path, "a") as f:
      f.write(line + "\n")


def run_guarded(run, args, res):
  """run(args, res); an exception is printed and its first line (400 chars)
  goes to res['error'] (peak_mem_bytes None unless already measured)."""
  try:
    run(args, res)
  except Exception as e:  # pylint: disable=broad-except
    traceback.print_exc()
    msg = f"{type(e).__name__}: {e}".strip().splitlines()
    res["error"] = msg[0][:400] if msg else type(e).__name__
    res.setdefault("peak_mem_bytes", None)


def torch_setup(device_arg, res):
  """The torch.device ('' = cuda when available, else cpu) with fp32 = IEEE
  fp32 (no TF32 anywhere) and seed 0; records res['device']."""
  import torch  # pylint: disable=g-import-not-at-top
  device = torch.device(device_arg if device_arg else
                        ("cuda" if torch.cuda.is_available() else "cpu"))
  torch.backends.cuda.matmul.allow_tf32 = False
  torch.backends.cudnn.allow_tf32 = False
  torch.set_float32_matmul_precision("highest")
  torch.manual_seed(0)
  res["device"] = (f"cuda: {torch.cuda.get_device_name(device)}"
                   if device.type == "cuda" else
                   f"cpu: {torch.get_num_threads()} threads")
  return device


# --------------------------------------------------------------- drivers ---

def has_gpu(py):
  code = ("import torch,jax;print(int(torch.cuda.is_available()), "
          "int(jax.devices()[0].platform=='gpu'))")
  try:
    out = subprocess.run([py, "-c", code], capture_output=True, text=True,
                         timeout=180, cwd=ROOT).stdout.split()
    return out[0] == "1", out[1] == "1"
  except Exception:  # pylint: disable=broad-except
    return False, False


def fmt_mem(res):
  b = res.get("peak_mem_bytes")
  if b is None:
    return "-"
  kind = res.get("peak_mem_kind", "")
  label = "RSS" if "RSS" in kind else "device"
  return f"{b / 2**20:,.0f} MiB ({label})"


def runner_parser(doc, cpu_steps, cpu_warmup, timeout, timeout_help,
                  only_help, extra=()):
  """A driver's parser: --python --gpu, the `extra` (flag, kwargs) pairs,
  --steps --warmup (0 = 50/10 on a GPU, cpu_steps/cpu_warmup on CPU),
  --timeout --only --out."""
  p = argparse.ArgumentParser(description=doc.splitlines()[0])
  p.add_argument("--python", default=sys.executable)
  p.add_argument("--gpu", choices=("auto", "yes", "no"), default="auto")
  for flag, kwargs in extra:
    p.add_argument(flag, **kwargs)
  p.add_argument("--steps", type=int, default=0,
                 help=f"timed steps per variant (default: {cpu_steps} CPU, "
                      "50 GPU)")
  p.add_argument("--warmup", type=int, default=0,
                 help=f"untimed steps after the first (default: {cpu_warmup} "
                      "CPU, 10 GPU)")
  p.add_argument("--timeout", type=int, default=timeout, help=timeout_help)
  p.add_argument("--only", default="", help=only_help)
  p.add_argument("--out", default="")
  return p


def runner_plan(args, workload, cpu_steps, cpu_warmup):
  """From a driver's --gpu/--steps/--warmup/--out: (torch_gpu, jax_gpu, gpu,
  steps, warmup, out). Steps/warm-up default to 50/10 on a GPU; out defaults
  to results/<workload>_<date>_<cpu|gpu>.jsonl (its folder is created)."""
  if args.gpu == "auto":
    torch_gpu, jax_gpu = has_gpu(args.python)
  else:
    torch_gpu = jax_gpu = args.gpu == "yes"
  gpu = torch_gpu or jax_gpu
  steps = args.steps or (50 if gpu else cpu_steps)
  warmup = args.warmup or (10 if gpu else cpu_warmup)
  out = args.out or os.path.join(
      HERE, "results",
      f"{workload}_{datetime.date.today().isoformat()}_"
      f"{'gpu' if gpu else 'cpu'}.jsonl")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  return torch_gpu, jax_gpu, gpu, steps, warmup, out


def _run_one(full, env, timeout):
  """One variant's process -> its RESULT dict (or one with 'error')."""
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
  return res


def run_variants(variants, python, only, steps, warmup, timeout, out,
                 progress):
  """Runs each variant in its own process and appends its line to `out`.

  variants: (name, cmd, defaults, labels): cmd = [script, args...] under
  benchmarks/ (--steps/--warmup are added); rows whose name contains none of
  the comma-separated `only` substrings are skipped; `defaults` are set where
  the result lacks them, then `labels`, the run id, wall time, load averages
  and the command are written. progress(res) is the text after '   -> '.
  Returns (run_id, rows).
  """
  env = dict(os.environ)
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  run_id = datetime.datetime.now().isoformat(timespec="seconds")
  rows = []
  for name, cmd, defaults, labels in variants:
    if only and not any(s in name for s in only.split(",")):
      continue
    full = [python, os.path.join(HERE, cmd[0])] + cmd[1:] + [
        "--steps", str(steps), "--warmup", str(warmup)]
    print(f"== {name}: {' '.join(full[1:])}", file=sys.stderr, flush=True)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = _run_one(full, env, timeout)
    for k, v in defaults.items():
      res.setdefault(k, v)
    res.update(labels)
    res.update({"run_id": run_id, "wall_s": time.perf_counter() - t0,
                "loadavg_1min_before": load0,
                "loadavg_1min_after": os.getloadavg()[0],
                # Paths relative to the repository root, not this machine's.
                "command": " ".join(["python"] + [
                    os.path.relpath(a, os.path.dirname(HERE))
                    if os.path.isabs(a) else a for a in full[1:]])})
    rows.append(res)
    with open(out, "a") as f:
      f.write(json.dumps(res) + "\n")
    print(f"   -> {progress(res)}", file=sys.stderr, flush=True)
  return run_id, rows
