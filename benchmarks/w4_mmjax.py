"""W4 benchmark, mmjax side: times mmjax's real train step on the W4 shapes.

  PYTHONPATH=. python benchmarks/w4_mmjax.py --dtype float32
  PYTHONPATH=. python benchmarks/w4_mmjax.py --dtype bfloat16

The model is `configs/affinity.get_config("")` (the reference scale: the
`cnn3d_transformer` encoder, branches of 32, stage 256, 4 transformer layers
of width 256 and 8 heads, the 512-256-128-64-32 BatchNorm head, batch 8),
built as the Trainer builds it (common.jax_train_step):
`build_model(config.model)`, the task from
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from configs.affinity import get_config  # pylint: disable=g-import-not-at-top
from common import (add_step_args, jax_train_step, put_jax_batch,
                    run_jax_train_step)
import run_w4


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

  batch = put_jax_batch(res, run_w4.make_batch)
  run_jax_train_step(
      res, args, lambda: jax_train_step(config, batch, args.steps_per_epoch),
      batch, run_w4.BATCH, count_flops=True)


if __name__ == "__main__":
  main()
