"""W2 benchmark, mmjax side: K ensemble members trained by one vmapped step.

  PYTHONPATH=. python benchmarks/w2_mmjax.py --members 1
  PYTHONPATH=. python benchmarks/w2_mmjax.py --members 5

The W2 model is `configs/extreme_boost.get_config()` at full size (512-wide
GCN and MLP encoders, cross-modal fusion, 2048->1024->512->256->128->2 head,
cross-entropy with label smoothing 0.2, AdamW + global-norm clipping 1.0 +
the non-finite guard, the cyclic cosine schedule). K members are built as the
Trainer does (mmjax/training/trainer.py): a jitted `jax.vmap` of
`create_state` over the members' seeds, and one jitted
`make_ensemble_train_step(..., mixup=True)` with the stacked states donated.
Member table: seeds = config.members.seeds[:K], fold -1 (no k-fold masking),
mixup alpha 0.2 for every member, all active. Every member sees the same
random batch of 64 with the W1 shapes (benchmarks/w1_data.py), put on the
device once. fp32: everything runs under jax.default_matmul_precision
("highest").

samples/s counts K * 64 samples per step. Timing, peak memory and the JSON
line follow benchmarks/w1_mmjax.py (both use benchmarks/common.py).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp

from configs.extreme_boost import get_config
from mmjax.models.multimodal import build_model
from mmjax.training.optim import build_optimizer
from mmjax.training.steps import create_state, make_ensemble_train_step
from common import (add_step_args, emit_result, jax_info, peak_memory,
                    step_stats, time_steps)
import w1_data


def member_table(config, k, alpha):
  seeds = list(config.members.seeds)[:k]
  assert len(seeds) == k, f"config has only {len(seeds)} member seeds"
  return {"seed": jnp.asarray(seeds, jnp.int32) + config.seed,
          "fold": jnp.full((k,), -1, jnp.int32),
          "alpha": jnp.full((k,), alpha, jnp.float32),
          "active": jnp.ones((k,), bool)}


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--members", type=int, default=5, help="K")
  p.add_argument("--alpha", type=float, default=0.2, help="mixup alpha")
  add_step_args(p, "the compiling first call", steps_per_epoch=True)
  args = p.parse_args(argv)
  k = args.members

  config = get_config()
  num_classes = config.model.num_outputs
  assert config.batch_size == w1_data.BATCH
  res = {"workload": "W2", "impl": "mmjax", "precision": "fp32",
         "variant": "jit(vmap(member_step))", "members": k,
         "loadavg_1min_start": os.getloadavg()[0]}

  with jax.default_matmul_precision("highest"):
    t0 = time.perf_counter()
    batch = jax.device_put(
        {n: jnp.asarray(v) for n, v in w1_data.make_batch().items()})
    jax.block_until_ready(batch)
    res["data_s"] = time.perf_counter() - t0

    model = build_model(config.model)
    tx, schedule = build_optimizer(config, args.steps_per_epoch)
    members = jax.device_put(member_table(config, k, args.alpha))
    t0 = time.perf_counter()
    states = jax.jit(jax.vmap(lambda s, b: create_state(model, tx, b, s),
                              in_axes=(0, None)))(members["seed"], batch)
    jax.block_until_ready(states)
    res["init_s"] = time.perf_counter() - t0
    res["n_params_per_member"] = int(
        sum(x[0].size for x in jax.tree.leaves(states.params)))

    step = jax.jit(make_ensemble_train_step(model, tx, schedule, config.loss,
                                            num_classes, mixup=True),
                   donate_argnums=0)

    carry = {"states": states}  # the step donates it: hold no other reference
    del states

    def run_step():
      carry["states"], metrics = step(carry["states"], batch, members)
      return carry["states"], metrics

    _, _, times, pipelined_s, (states, metrics) = time_steps(
        run_step, jax.block_until_ready, args.warmup, args.steps, res,
        "first call: trace + XLA compile + 1 step")

  mem, mem_kind = peak_memory()
  device, versions = jax_info()
  res.update({
      **step_stats(times, k * w1_data.BATCH, pipelined_s),
      "peak_mem_bytes": mem,
      "peak_mem_kind": mem_kind,
      "final_loss_members": [float(x) for x in metrics["loss"]],
      "skipped_last": float(metrics["skipped"].sum()),
      "device": device,
      "loadavg_1min_end": os.getloadavg()[0],
      "versions": versions,
  })
  emit_result(res, args.out)


if __name__ == "__main__":
  main()
