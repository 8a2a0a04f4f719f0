"""W1 benchmark, mmjax side: times mmjax's real train step on the W1 shapes.

  PYTHONPATH=. python benchmarks/w1_mmjax.py --aggregation dense
  PYTHONPATH=. python benchmarks/w1_mmjax.py --aggregation segment

Builds the model, optimizer and step exactly as the trainer does
(configs/optimized.py -> build_model / build_optimizer / create_state /
make_train_step, jit with the state donated), on one random batch of W1 shapes
(benchmarks/w1_data.py) that is put on the device once. A step = forward,
backward, clipping and AdamW for the batch of 64. Reports samples/s from the
median of the timed steps (block_until_ready on every step), the first call
(trace + compile + one step) on its own, and peak memory: on GPU the device's
peak_bytes_in_use, on CPU the process' max RSS (labelled as such).

Prints one JSON line prefixed with 'RESULT ' (and appends it to --out).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # pylint: disable=g-import-not-at-top

from configs.optimized import get_config
from mmjax.models.multimodal import build_model
from mmjax.tasks import build_task
from mmjax.training.optim import build_optimizer
from mmjax.training.steps import (create_state, gather_batch_then,
                                  make_train_step)
from common import add_step_args, put_jax_batch, run_jax_train_step
import w1_data


def build_step(config, batch, steps_per_epoch, resident=False):
  """(state, step): mmjax's train step as the Trainer builds it, jitted with
  the state donated; the state is initialised on `batch` (a device batch).

  step(state, batch), or with resident=True step(state, data, idx): the
  batch gathered in the step from a device-resident split (the Trainer's
  default, config.dataset.device_resident)."""
  model = build_model(config.model)
  tx, schedule = build_optimizer(config, steps_per_epoch)
  state = jax.jit(lambda b: create_state(model, tx, b, config.seed))(batch)
  fn = make_train_step(model, tx, schedule, build_task(config), config.loss,
                       config.seed,
                       smoothing=config.loss.get("label_smoothing", 0.0))
  step = jax.jit(gather_batch_then(fn) if resident else fn, donate_argnums=0)
  return state, step


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--aggregation", choices=("segment", "dense"),
                 default="dense")
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="config.model.dtype (bfloat16: params fp32, "
                      "activations bf16)")
  add_step_args(p, "the compiling first call", steps_per_epoch=True)
  args = p.parse_args(argv)

  config = get_config()
  config.model.encoders.crystal.aggregation = args.aggregation
  config.model.encoders.kspace.aggregation = args.aggregation
  config.model.dtype = args.dtype
  assert config.batch_size == w1_data.BATCH

  precision = "fp32" if args.dtype == "float32" else "bf16 mixed"
  res = {"workload": "W1", "impl": "mmjax", "precision": precision,
         "variant": f"jit, aggregation={args.aggregation}"}
  batch = put_jax_batch(res, w1_data.make_batch)
  run_jax_train_step(
      res, args, lambda: build_step(config, batch, args.steps_per_epoch),
      batch, w1_data.BATCH)


if __name__ == "__main__":
  main()
