r"""Input-pipeline throughput for W1 shapes, stage by stage and end to end.

  PYTHONPATH=. python benchmarks/input_pipeline.py [--variant smoke]
      [--seconds 3] [--batch_size 64] [--json out.json]

Data: `materials_tb/<variant>` (array_record, built under $MMJAX_DATA_DIR if
absent), train split. Shapes: W1 budgets (crystal 32 nodes / 384 edges,
k-space 64 nodes / 256 edges, `configs/optimized.py`), batch 64.

Stages, each timed on its own for about --seconds (examples/s, median of 3):
  (a) decode    source[i]: array_record read + TFDS feature decoding
  (b) pad       pipeline.pad_example on decoded examples
  (c) batch     PaddedSplit.take(idx) of random batch indices (host gather)
  (d) transfer  sharding.put_batch of one host batch + block_until_ready
End to end:
  stream      per batch: decode + pad + stack + put_batch (no preloading)
  trainer, host batches   take + put_batch from the preloaded PaddedSplit
              (config.dataset.device_resident=False; the preload, (a)+(b)
              once per run, is reported as its own line)
  trainer, resident split   what Trainer does per step by default: the
              batch's indices (train_batch_indices) + put_batch of them; the
              split was put on the device once (its time is reported)
Against the train step (--steps N, 0 to skip): W1's mmjax train step
(benchmarks/w1_mmjax.build_step, fp32 "highest") on this data,
  consume     N steps on one batch already on the device: what the step eats
  fed, host batches   N steps fed as Trainer.run feeds them with
              device_resident=False: pipeline.prefetch over take + put_batch
              of train_batch_indices(seed, step)
  fed, resident split   likewise with the default: prefetch over the
              indices' put_batch, the batch gathered inside the step
The time blocked in next() is reported as the step's wait. Each is timed
from the first dispatch to block_until_ready of the last state, after one
compiling call and 30 warm-up steps, so dispatch may run ahead as in
training.
"""

import argparse
import json
import os
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs.optimized import get_config  # pylint: disable=g-import-not-at-top
from mmjax.data import pipeline  # pylint: disable=g-import-not-at-top
from mmjax.data.materials.materials_tb import load_materials_tb  # pylint: disable=g-import-not-at-top
from mmjax.data.datasets import data_dir as resolve_data_dir  # pylint: disable=g-import-not-at-top
from mmjax.data.materials.registered import materials_spec  # pylint: disable=g-import-not-at-top
from mmjax.training import sharding  # pylint: disable=g-import-not-at-top
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from w1_mmjax import build_step  # pylint: disable=g-import-not-at-top


def rate(fn, items_per_call, seconds, repeats=3):
  """Median examples/s of `fn` called repeatedly for ~`seconds`, 3 times."""
  fn()  # warm-up (page cache, first-call allocations, jit of device_put)
  rates = []
  for _ in range(repeats):
    n, t0 = 0, time.perf_counter()
    while True:
      fn()
      n += 1
      dt = time.perf_counter() - t0
      if dt >= seconds / repeats:
        break
    rates.append(n * items_per_call / dt)
  return statistics.median(rates)


def _fed(step, state, batches, n_steps, *data):
  """Runs n_steps fed from `batches` -> (state, seconds, seconds blocked in
  next())."""
  wait = 0.0
  t0 = time.perf_counter()
  it = pipeline.prefetch(batches)
  for _ in range(n_steps):
    tw = time.perf_counter()
    b = next(it)
    wait += time.perf_counter() - tw
    state, _ = step(state, *data, b)
  jax.block_until_ready(state)
  return state, time.perf_counter() - t0, wait


def time_step(split, mesh, config, n_steps, n_warmup=30):
  """Examples/s of the W1 train step on one resident batch vs fed by the
  trainer's prefetching input paths, and the fractions of time spent
  waiting."""
  bs = config.batch_size
  with jax.default_matmul_precision("highest"):
    batch0 = sharding.put_batch(split.take(np.arange(bs) % split.size), mesh)
    state, step = build_step(config, batch0, max(1, split.size // bs))
    # The first call compiles; in a CPU probe the 30 asynchronously
    # dispatched steps after it averaged 360 ms/step, later ones 79-87.
    for _ in range(1 + n_warmup):
      state, _ = step(state, batch0)
    jax.block_until_ready(state)

    t0 = time.perf_counter()
    for _ in range(n_steps):
      state, _ = step(state, batch0)
    jax.block_until_ready(state)
    consume = n_steps * bs / (time.perf_counter() - t0)

    def idx_of(i):
      return pipeline.train_batch_indices(config.seed, i, split.size, bs)

    def host_batches():
      for i in range(n_steps):
        yield sharding.put_batch(split.take(idx_of(i)), mesh)

    state, fed_s, wait = _fed(step, state, host_batches(), n_steps)
    del state

    data = sharding.put_replicated(split.arrays, mesh)
    state, rstep = build_step(config, batch0, max(1, split.size // bs),
                              resident=True)
    idx0 = sharding.put_indices(idx_of(0), mesh)
    for _ in range(1 + n_warmup):
      state, _ = rstep(state, data, idx0)
    jax.block_until_ready(state)

    def indices():
      for i in range(n_steps):
        yield sharding.put_indices(idx_of(i), mesh)

    _, res_s, res_wait = _fed(rstep, state, indices(), n_steps, data)
  return {"steps": n_steps, "consume": consume,
          "fed_host": n_steps * bs / fed_s, "wait_fraction_host": wait / fed_s,
          "fed_resident": n_steps * bs / res_s,
          "wait_fraction_resident": res_wait / res_s}


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--variant", default="smoke", choices=["smoke", "default"])
  p.add_argument("--seconds", type=float, default=3.0)
  p.add_argument("--batch_size", type=int, default=64)
  p.add_argument("--steps", type=int, default=30,
                 help="train steps for consume/fed (0: skip them)")
  p.add_argument("--json", default=None)
  args = p.parse_args()

  config = get_config()
  config.dataset.variant = args.variant
  budgets = config.dataset.budgets.to_dict()
  bs = args.batch_size
  spec = materials_spec()
  source = load_materials_tb(args.variant, resolve_data_dir(config.dataset))[
      "train"]
  n = len(source)
  rng = np.random.default_rng(0)
  load_before = os.getloadavg()

  decoded = [source[i] for i in range(n)]
  t0 = time.perf_counter()
  split = pipeline.PaddedSplit(source, spec, budgets, "train")
  preload_s = time.perf_counter() - t0
  mesh = sharding.make_mesh()
  host_batch = split.take(rng.integers(0, n, bs))

  counter = iter(range(10**12))

  def decode():
    source[next(counter) % n]

  def pad():
    pipeline.pad_example(decoded[next(counter) % n], spec, budgets)

  def batch():
    split.take(rng.integers(0, n, bs))

  def transfer():
    jax.block_until_ready(sharding.put_batch(host_batch, mesh))

  def stream():
    idx = rng.integers(0, n, bs)
    exs = [pipeline.pad_example(source[int(i)], spec, budgets) for i in idx]
    b = {k: np.stack([e[k] for e in exs]) for k in exs[0]}
    b["sample_mask"] = np.ones((bs,), np.float32)
    jax.block_until_ready(sharding.put_batch(b, mesh))

  def trainer_step():
    jax.block_until_ready(sharding.put_batch(
        split.take(rng.integers(0, n, bs)), mesh))

  t0 = time.perf_counter()
  jax.block_until_ready(sharding.put_replicated(split.arrays, mesh))
  resident_put_s = time.perf_counter() - t0
  steps = iter(range(10**12))

  def trainer_resident():
    idx = pipeline.train_batch_indices(0, next(steps), n, bs)
    jax.block_until_ready(sharding.put_indices(idx, mesh))

  rows = [
      ("(a) decode: source[i]", rate(decode, 1, args.seconds)),
      ("(b) pad: pad_example", rate(pad, 1, args.seconds)),
      ("(c) batch: PaddedSplit.take", rate(batch, bs, args.seconds)),
      ("(d) transfer: put_batch", rate(transfer, bs, args.seconds)),
      ("stream: decode+pad+stack+put", rate(stream, bs, args.seconds)),
      ("trainer, host batches: take+put (preloaded)",
       rate(trainer_step, bs, args.seconds)),
      ("trainer, resident split: indices+put",
       rate(trainer_resident, bs, args.seconds)),
  ]
  step_rates = time_step(split, mesh, config, args.steps) if args.steps else {}
  load_after = os.getloadavg()
  batch_mb = sum(v.nbytes for v in host_batch.values()) / 2**20
  print(f"materials_tb/{args.variant} train: {n} examples; batch {bs} "
        f"({batch_mb:.2f} MiB host); devices: {jax.device_count()} x "
        f"{jax.devices()[0].platform}; load average {load_before[0]:.2f} -> "
        f"{load_after[0]:.2f} (1 min)")
  print(f"preload (decode + pad of the split, once per run): {preload_s:.2f} "
        f"s = {n / preload_s:,.0f} examples/s; the split put on the device "
        f"(resident, once per run): {resident_put_s:.3f} s")
  print()
  print("| stage | examples/s | batches/s |")
  print("|---|---:|---:|")
  for name, r in rows:
    print(f"| {name} | {r:,.0f} | {r / bs:,.1f} |")
  if step_rates:
    print()
    r = step_rates
    print(f"train step ({args.steps} steps, {jax.devices()[0].device_kind}): "
          f"consume {r['consume']:,.0f} examples/s; fed host batches "
          f"{r['fed_host']:,.0f} examples/s (waited for input "
          f"{100 * r['wait_fraction_host']:.1f}% of the time); fed from the "
          f"resident split {r['fed_resident']:,.0f} examples/s (waited "
          f"{100 * r['wait_fraction_resident']:.1f}%)")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"variant": args.variant, "examples": n, "batch_size": bs,
                 "batch_mib": batch_mb, "platform": jax.devices()[0].platform,
                 "devices": jax.device_count(),
                 "loadavg_before": load_before, "loadavg_after": load_after,
                 "preload_s": preload_s, "resident_put_s": resident_put_s,
                 "rates": {name: r for name, r in rows},
                 "step": step_rates,
                 "device_kind": jax.devices()[0].device_kind,
                 "date": time.strftime("%Y-%m-%d")}, f, indent=2)


if __name__ == "__main__":
  main()
