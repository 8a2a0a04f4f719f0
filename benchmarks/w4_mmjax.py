"""W4 benchmark, mmjax side: times mmjax's real train step on the W4 shapes.

  PYTHONPATH=. python benchmarks/w4_mmjax.py --dtype float32
  PYTHONPATH=. python benchmarks/w4_mmjax.py --dtype bfloat16

The model is `configs/affinity.get_config("")` (the reference scale: the
`cnn3d_transformer` encoder, branches of 32, stage 256, 4 transformer layers
of width 256 and 8 heads, the 512-256-128-64-32 BatchNorm head, batch 8),
built as the Trainer builds it: `build_model(config.model)`, the task from
`build_task(config)` (MSE + 0.5 MAE + 0.3 Huber), `build_optimizer(config,
steps_per_epoch)` (AdamW with the three lr_mults parameter groups, global-norm
clipping 1.0, the non-finite guard), `create_state`, `make_train_step`
(make_member_step for one member), jitted with the state donated. The batch,
run_w4.make_batch() (the same grids as the PyTorch side: 8 x 24^3 x 19,
modality "complex"), is put on the device once. fp32: everything runs under
jax.default_matmul_precision("highest"); `--dtype bfloat16` sets
config.model.dtype (params fp32, activations bf16).

Beside the timing fields of benchmarks/common.py, the JSON line holds XLA's
FLOP count of the compiled step (`xla_flops_per_step`, from the lowered
step's cost analysis) to set against run_w4.model_flops().

Prints one JSON line prefixed with 'RESULT ' (and appends it to --out).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp

from configs.affinity import get_config
from mmjax.models.multimodal import build_model
from mmjax.tasks import build_task
from mmjax.training.optim import build_optimizer
from mmjax.training.steps import create_state, make_train_step
from common import (add_step_args, emit_result, jax_info, peak_memory,
                    step_stats, time_steps)
import run_w4


def build_step(config, batch, steps_per_epoch):
  """(state, step): the affinity train step as the Trainer builds it, jitted
  with the state donated; the state is initialised on `batch`."""
  model = build_model(config.model)
  task = build_task(config)
  tx, schedule = build_optimizer(config, steps_per_epoch)
  state = jax.jit(lambda b: create_state(model, tx, b, config.seed))(batch)
  fn = make_train_step(model, tx, schedule, task, config.loss, config.seed)
  return state, jax.jit(fn, donate_argnums=0)


def xla_flops(step, state, batch):
  """FLOPs of one step by XLA's cost analysis of the lowered step, or None
  where the backend gives none."""
  try:
    cost = step.lower(state, batch).cost_analysis()
    if isinstance(cost, (list, tuple)):
      cost = cost[0] if cost else None
    return float(cost["flops"]) if cost and "flops" in cost else None
  except Exception:  # pylint: disable=broad-except
    return None


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="config.model.dtype (bfloat16: params fp32, "
                      "activations bf16)")
  add_step_args(p, "the compiling first call", steps_per_epoch=True)
  args = p.parse_args(argv)

  config = get_config("")
  config.model.dtype = args.dtype
  assert config.batch_size == run_w4.BATCH
  assert tuple(config.model.modalities) == ("complex",)
  precision = "fp32" if args.dtype == "float32" else "bf16 mixed"
  res = {"workload": "W4", "impl": "mmjax", "precision": precision,
         "variant": f"jit, model dtype {args.dtype}",
         "loadavg_1min_start": os.getloadavg()[0]}

  with jax.default_matmul_precision("highest"):
    t0 = time.perf_counter()
    batch = jax.device_put(
        {k: jnp.asarray(v) for k, v in run_w4.make_batch().items()})
    jax.block_until_ready(batch)
    res["data_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    state, step = build_step(config, batch, args.steps_per_epoch)
    jax.block_until_ready(state)
    res["init_s"] = time.perf_counter() - t0
    res["n_params"] = int(sum(x.size for x in jax.tree.leaves(state.params)))
    # Lowering only traces; the compile stays in the first timed call.
    res["xla_flops_per_step"] = xla_flops(step, state, batch)

    carry = {"state": state}  # the step donates it: hold no other reference
    del state

    def run_step():
      carry["state"], metrics = step(carry["state"], batch)
      return carry["state"], metrics

    _, _, times, pipelined_s, (_, metrics) = time_steps(
        run_step, jax.block_until_ready, args.warmup, args.steps, res,
        "first call: trace + XLA compile + 1 step")

  mem, mem_kind = peak_memory()
  device, versions = jax_info()
  res.update({
      **step_stats(times, run_w4.BATCH, pipelined_s),
      "peak_mem_bytes": mem,
      "peak_mem_kind": mem_kind,
      "final_loss": float(metrics["loss"]),
      "skipped_last": float(metrics["skipped"]),
      "device": device,
      "loadavg_1min_end": os.getloadavg()[0],
      "versions": versions,
  })
  emit_result(res, args.out)


if __name__ == "__main__":
  main()
