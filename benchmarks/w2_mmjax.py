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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp

from configs.extreme_boost import get_config
from mmjax.models.multimodal import build_model
from mmjax.tasks import build_task
from mmjax.training.optim import build_optimizer
from mmjax.training.steps import create_state, make_ensemble_train_step
from common import add_step_args, put_jax_batch, run_jax_train_step
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
  assert config.batch_size == w1_data.BATCH
  res = {"workload": "W2", "impl": "mmjax", "precision": "fp32",
         "variant": "jit(vmap(member_step))", "members": k,
         "loadavg_1min_start": os.getloadavg()[0]}

  batch = put_jax_batch(res, w1_data.make_batch)
  # Built after the batch, so that the first device work stays in data_s
  # (as in W1, W3, W4); init_s times create_state alone.
  model = build_model(config.model)
  tx, schedule = build_optimizer(config, args.steps_per_epoch)
  members = jax.device_put(member_table(config, k, args.alpha))
  create = jax.jit(jax.vmap(lambda s, b: create_state(model, tx, b, s),
                            in_axes=(0, None)))
  step = jax.jit(make_ensemble_train_step(
      model, tx, schedule, build_task(config), config.loss, mixup=True,
      smoothing=config.loss.get("label_smoothing", 0.0)),
                 donate_argnums=0)
  run_jax_train_step(res, args, lambda: (create(members["seed"], batch), step),
                     batch, k * w1_data.BATCH, step_args=(members,),
                     members=k)


if __name__ == "__main__":
  main()
