"""Pieces shared by the benchmark scripts (W1 to W4, mmjax and PyTorch).

  add_step_args   --steps/--warmup(/--steps_per_epoch)/--out of one variant
  time_steps      first call, warm-up, synced timed steps and pipelined
                  steps of a train step
  step_stats      samples/s, median/min step time from the timed steps,
                  and the pipelined rate
  peak_memory     device peak (JAX or CUDA) or the process max RSS on CPU
  emit_result     the 'RESULT <json>' line, appended to --out as well
  run_guarded     a PyTorch run whose exception becomes the 'error' field
  torch_setup     PyTorch device choice, TF32 off, seed, the 'device' field
  xla_flops       XLA's FLOP count of a jitted step (cost analysis)
  jax_train_step  an mmjax train step built as the Trainer builds it
  put_jax_batch, run_jax_train_step   an mmjax script's batch on the
                  device, and its step built, timed and reported
  add_torch_step_args, torch_labels, run_torch_train_step   a PyTorch
                  script of one model: its flags, labels, and its step
                  built, timed and reported (W1, W3, W4)
  time_torch_step, torch_sync   the timing and reporting of any PyTorch
                  step (W2's too)
  runner_parser, runner_plan, run_variants, has_gpu, fmt_mem   the
                  run_w*.py drivers
  run_labelled    run_variants for (impl, precision, row_label) rows
                  (W1, W3, W4)
  mfu_variants, mfu_table, peak_bf16, PEAK_BF16   the rows and the table
                  of the drivers that report model FLOPs utilisation (W3,
                  W4)

Nothing here imports JAX, mmjax or torch at module level (the drivers use
none of them); the functions that need one import it when called.
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


def xla_flops(step, state, batch):
  """FLOPs of one call of the jitted `step(state, batch)` by XLA's cost
  analysis of the lowered step, or None where the backend gives none.
  Lowering only traces: the compile stays in the first timed call."""
  try:
    cost = step.lower(state, batch).cost_analysis()
    if isinstance(cost, (list, tuple)):
      cost = cost[0] if cost else None
    return float(cost["flops"]) if cost and "flops" in cost else None
  except Exception:  # pylint: disable=broad-except
    return None


def jax_train_step(config, batch, steps_per_epoch=1):
  """(state, step): the train step of `config` as the Trainer builds it
  (build_model, build_task, build_optimizer, create_state,
  make_train_step), jitted with the state donated; the state is
  initialised on `batch`. W3 and W4; W1 and W2 build theirs."""
  import jax  # pylint: disable=g-import-not-at-top
  from mmjax.models.multimodal import build_model  # pylint: disable=g-import-not-at-top
  from mmjax.tasks import build_task  # pylint: disable=g-import-not-at-top
  from mmjax.training.optim import build_optimizer  # pylint: disable=g-import-not-at-top
  from mmjax.training.steps import create_state, make_train_step  # pylint: disable=g-import-not-at-top
  model = build_model(config.model)
  task = build_task(config)
  tx, schedule = build_optimizer(config, steps_per_epoch)
  state = jax.jit(lambda b: create_state(model, tx, b, config.seed))(batch)
  fn = make_train_step(model, tx, schedule, task, config.loss, config.seed)
  return state, jax.jit(fn, donate_argnums=0)


def put_jax_batch(res, make_batch):
  """make_batch()'s numpy arrays put on JAX's device once, as a dict of jnp
  arrays; the time taken, make_batch() included, goes to res['data_s']."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  batch = jax.device_put({k: jnp.asarray(v) for k, v in make_batch().items()})
  jax.block_until_ready(batch)
  res["data_s"] = time.perf_counter() - t0
  return batch


def run_jax_train_step(res, args, build, batch, samples_per_step,
                       step_args=(), count_flops=False, members=None):
  """Times an mmjax train step and emits its result line.

  Everything that computes runs under jax.default_matmul_precision
  ("highest"), so fp32 means IEEE fp32 (a bf16 model dtype still computes
  in bf16).

  Args:
    res: the result dict so far; the fields below are added to it.
    args: the script's flags (--warmup, --steps, --out).
    build: () -> (state, step), timed with the state ready ('init_s');
      step(state, batch, *step_args) -> (state, metrics), jitted with the
      state donated.
    batch: the device batch (put_jax_batch).
    samples_per_step: what one step trains on, for the rates.
    step_args: step's arguments after the batch (W2's member table).
    count_flops: also record XLA's FLOP count of one step
      ('xla_flops_per_step').
    members: None for one model; K where the state stacks K members on a
      leading axis ('n_params_per_member' and 'final_loss_members' then).

  The line also gets 'n_params' (one model), the timing fields of
  time_steps and step_stats, the peak memory, 'final_loss' and
  'skipped_last' (summed over members) of the last step, 'device',
  'loadavg_1min_end' (where res has 'loadavg_1min_start') and 'versions'.
  """
  import jax  # pylint: disable=g-import-not-at-top
  with jax.default_matmul_precision("highest"):
    t0 = time.perf_counter()
    state, step = build()
    jax.block_until_ready(state)
    res["init_s"] = time.perf_counter() - t0
    leaves = jax.tree.leaves(state.params)
    if members is None:
      res["n_params"] = int(sum(x.size for x in leaves))
    else:
      res["n_params_per_member"] = int(sum(x[0].size for x in leaves))
    if count_flops:
      res["xla_flops_per_step"] = xla_flops(step, state, batch)

    carry = {"state": state}  # the step donates it: hold no other reference
    del state, leaves

    def run_step():
      carry["state"], metrics = step(carry["state"], batch, *step_args)
      return carry["state"], metrics

    _, _, times, pipelined_s, (_, metrics) = time_steps(
        run_step, jax.block_until_ready, args.warmup, args.steps, res,
        "first call: trace + XLA compile + 1 step")

  mem, mem_kind = peak_memory()
  device, versions = jax_info()
  if members is None:
    losses = {"final_loss": float(metrics["loss"]),
              "skipped_last": float(metrics["skipped"])}
  else:
    losses = {"final_loss_members": [float(x) for x in metrics["loss"]],
              "skipped_last": float(metrics["skipped"].sum())}
  res.update({
      **step_stats(times, samples_per_step, pipelined_s),
      "peak_mem_bytes": mem,
      "peak_mem_kind": mem_kind,
      **losses,
      "device": device,
  })
  # W1's line has never had the load averages; the others bracket the run.
  if "loadavg_1min_start" in res:
    res["loadavg_1min_end"] = os.getloadavg()[0]
  res["versions"] = versions
  emit_result(res, args.out)


def add_torch_step_args(p):
  """The flags of run_torch_train_step's step (--variant --amp --device
  --adamw), for the scripts that time one PyTorch model (W1, W3, W4)."""
  p.add_argument("--variant", choices=("eager", "compile"), default="eager")
  p.add_argument("--amp", action="store_true",
                 help="bf16 autocast for forward + loss")
  p.add_argument("--device", default="", help="cuda | cpu (default: auto)")
  p.add_argument("--adamw", choices=("auto", "fused", "foreach"),
                 default="auto", help="auto: fused on CUDA, foreach on CPU")


def torch_labels(args):
  """The 'precision' and 'variant' fields of a run_torch_train_step line."""
  return {"precision": "bf16 autocast" if args.amp else "fp32",
          "variant": "torch.compile" if args.variant == "compile"
                     else "eager"}


def torch_sync(device):
  """Waits for the work queued on `device` (CPU work is already done)."""
  if device.type == "cuda":
    import torch  # pylint: disable=g-import-not-at-top
    torch.cuda.synchronize(device)


def time_torch_step(res, args, device, step, samples_per_step, members=None):
  """Times a PyTorch step() -> loss (with `members`: the K members' losses)
  and writes the timing fields, the last step's 'final_loss' (or
  'final_loss_members') and the peak memory into res."""
  import torch  # pylint: disable=g-import-not-at-top
  if device.type == "cuda":
    torch.cuda.reset_peak_memory_stats(device)
    sync = lambda _: torch.cuda.synchronize(device)
  else:
    sync = lambda _: None  # CPU work is done when the call returns
  # Every variant name that compiles has 'compile' in it (W1-W4).
  _, _, times, pipelined_s, loss = time_steps(
      step, sync, args.warmup, args.steps, res,
      "first step incl. torch.compile (fwd+bwd)"
      if "compile" in args.variant else "first (eager warm-up) step")
  res.update(step_stats(times, samples_per_step, pipelined_s))
  if members is None:
    res["final_loss"] = float(loss.detach())
  else:
    res["final_loss_members"] = [float(x) for x in loss]
  res["peak_mem_bytes"], res["peak_mem_kind"] = peak_memory(device)


def run_torch_train_step(res, args, device, model, objective, data,
                         samples_per_step, lr, weight_decay, params=None):
  """Times one PyTorch model's training step (W1, W3, W4) into res.

  A step: zero_grad(set_to_none=True), objective(model, *data()) under
  bf16 autocast with --amp (torch.compile'd with --variant compile),
  backward, clip_grad_norm_(1.0), AdamW(lr, weight_decay), fused per
  --adamw (auto: fused on CUDA). data() runs in every step, outside the
  autocast and the compile: W1 normalises its graphs there.

  Args:
    res: the result dict; gets 'n_params', 'adamw' and time_torch_step's
      fields.
    args: the flags of add_torch_step_args and add_step_args.
    device: the torch.device (torch_setup).
    model: the model, on `device`, in train mode.
    objective: objective(model, *data()) -> the scalar loss.
    data: () -> the objective's arguments after the model.
    samples_per_step: what one step trains on, for the rates.
    lr: AdamW's learning rate.
    weight_decay: AdamW's weight decay.
    params: AdamW's parameters or groups (default: model.parameters()).
  """
  import torch  # pylint: disable=g-import-not-at-top
  res["n_params"] = sum(p.numel() for p in model.parameters())
  fused = device.type == "cuda" if args.adamw == "auto" else \
      args.adamw == "fused"
  res["adamw"] = "fused" if fused else "foreach"
  opt = torch.optim.AdamW(model.parameters() if params is None else params,
                          lr=lr, weight_decay=weight_decay,
                          **({"fused": True} if fused else {}))

  loss_fn = objective
  if args.variant == "compile":
    loss_fn = torch.compile(objective)  # default mode

  amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)

  def step():
    opt.zero_grad(set_to_none=True)
    step_data = data()
    with amp:
      loss = loss_fn(model, *step_data)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss

  time_torch_step(res, args, device, step, samples_per_step)


# --------------------------------------------------------------- drivers ---

# Peak dense bf16 tensor FLOP/s (no sparsity) by a substring of the device
# name, from the vendors' data sheets; the SXM parts.
PEAK_BF16 = (("H200", 989.4e12), ("H100", 989.4e12), ("A100", 312e12),
             ("L40S", 362.05e12), ("A10G", 70e12), ("L4", 121e12))

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


def run_labelled(variants, args, steps, warmup, out):
  """run_variants for a driver whose variants are (impl, precision,
  row_label, cmd): each named '<impl> <precision> <row_label>', its
  progress the samples/s (or the error)."""
  return run_variants(
      [(f"{impl} {precision} {label}", cmd,
        {"impl": impl, "precision": precision}, {"row_label": label})
       for impl, precision, label, cmd in variants],
      args.python, args.only, steps, warmup, args.timeout, out,
      lambda res: res.get("samples_per_s", res.get("error")))


def mfu_variants(workload, torch_gpu, extra=()):
  """The variants of a driver with an mmjax and a PyTorch script of one
  model (W3, W4: `<workload>_mmjax.py`, `<workload>_torch.py`), as
  run_labelled takes them; `extra` is added to every command.

  The ratios' base row (PyTorch fp32 eager) comes first and the bf16 rows
  last, so that a run cut short keeps the fp32 comparison; the bf16
  autocast rows only where torch has a GPU. The mmjax rows are the same on
  either device.
  """
  jx, pt = f"{workload}_mmjax.py", f"{workload}_torch.py"
  v = [("pytorch", "fp32", "eager", [pt, "--variant", "eager"]),
       ("mmjax", "fp32", "jit", [jx, "--dtype", "float32"]),
       ("pytorch", "fp32", "torch.compile", [pt, "--variant", "compile"]),
       ("mmjax", "bf16 mixed", "jit", [jx, "--dtype", "bfloat16"])]
  if torch_gpu:
    v += [("pytorch", "bf16 autocast", "eager",
           [pt, "--variant", "eager", "--amp"]),
          ("pytorch", "bf16 autocast", "torch.compile",
           [pt, "--variant", "compile", "--amp"])]
  return [(impl, precision, label, cmd + list(extra))
          for impl, precision, label, cmd in v]


def peak_bf16(device):
  """The peak dense bf16 FLOP/s of a result's 'device' string, or None."""
  for name, flops in PEAK_BF16:
    if name in (device or ""):
      return flops
  return None


def _rate(x):
  # A CPU step takes seconds: keep two significant digits there.
  return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def mfu_table(rows, gpu, flops, flops_source):
  """The markdown table of a driver whose rows are (impl, precision,
  row_label): samples/s, the ratio to the PyTorch fp32 eager row, median
  step, pipelined rate, peak memory, compile time and, on a GPU, model FLOPs
  utilisation = `flops` (model FLOPs per step) / median step time / the
  device's peak dense bf16 FLOP/s, for every precision. `flops_source`
  names the function that counted `flops`, for the line under the table."""
  base = next((r for r in rows if r["impl"] == "pytorch" and
               r["precision"] == "fp32" and r.get("row_label") == "eager" and
               r.get("samples_per_s")), None)
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
  lines.append(f"Model FLOPs per step (analytic, `{flops_source}`): "
               f"{flops / 1e9:,.1f} GFLOP.")
  return "\n".join(lines)
