"""W3 benchmark, mmjax side: times mmjax's real train step on the W3 shapes.

  PYTHONPATH=. python benchmarks/w3_mmjax.py --dtype float32
  PYTHONPATH=. python benchmarks/w3_mmjax.py --dtype bfloat16
  PYTHONPATH=. python benchmarks/w3_mmjax.py --params_only   # count only

The model is reference recipe 003's genome classifier at full scale
(`configs/viral.py` without options) with one change: W3's tokens are given
as 1024-feature vectors, so the genome modality's encoder is the
`transformer` type (mmjax/models/encoders.py: SequenceTransformer on
features [B, T, F], vocab_size 0) where the recipe's `kmer_transformer`
builds the same tokens from base ids. `get_config()` spells the config out:
Dense 1024 -> 512 plus sinusoidal positions, 8 pre-LayerNorm layers (16
heads, MLP 2048, exact GELU, dropout 0.1), a final LayerNorm, mean + max
pooling -> 1024; the model assembly's token Dense 1024 -> 512, concat
fusion (one modality: a pass-through); the head 512 -> 512 -> 256 -> 128 -> 2
with LayerNorm, GELU and dropout 0.1 after each hidden Dense, and the
confidence head 512 -> 256 -> 128 -> 1 (same blocks) on the gradient-stopped
embedding. Loss: focal (alpha 0.25, gamma 2) + 1.0 x the confidence logit's
BCE against "the argmax is right" (ClassificationTask). AdamW (1e-4, weight
decay 1e-5) at a constant lr, global-norm clipping 1.0.

Built as the Trainer builds it (common.jax_train_step):
`build_model(config.model)`, the task from
`build_task(config)`, `build_optimizer(config, steps_per_epoch)` (clipping,
AdamW, the non-finite guard), `create_state`, `make_train_step`
(make_member_step for one member), jitted with the state donated. The
batch, run_w3.make_batch() (the same tokens as the PyTorch side), is put on
the device once. fp32: everything runs under
jax.default_matmul_precision("highest"); `--dtype bfloat16` sets
config.model.dtype (params fp32, activations bf16; the attention softmax,
the logits and the loss stay fp32).

Beside the timing fields of benchmarks/common.py, the JSON line holds XLA's
FLOP count of the compiled step (`xla_flops_per_step`, from the lowered
step's cost analysis) to set against run_w3.model_flops(). `--small` runs
run_w3.SMALL's sizes (tests); `--params_only` reports the parameter count
(from shapes alone, nothing computed) and times nothing.

Prints one JSON line prefixed with 'RESULT ' (and appends it to --out).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # pylint: disable=g-import-not-at-top
import ml_collections

from mmjax.models.multimodal import build_model
from mmjax.tasks import build_task
from mmjax.tasks.classification import ClassificationTask
from common import (add_step_args, emit_result, jax_train_step,
                    put_jax_batch, run_jax_train_step)
import run_w3


def get_config(small=False, dtype="float32", batch=0):
  """The W3 run's config: what build_model, build_task and build_optimizer
  read, at run_w3.FULL's (or SMALL's) sizes."""
  s = run_w3.sizes(small, batch)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.task = "classification"
  c.batch_size = s["batch"]
  c.num_epochs = 1
  c.learning_rate = 1e-4
  c.model = ml_collections.ConfigDict(dict(
      modalities=("genome",),
      encoders=dict(genome=dict(
          type="transformer", vocab_size=0, width=s["width"],
          depth=s["depth"], num_heads=s["heads"], mlp_ratio=s["mlp_ratio"],
          dropout=run_w3.DROPOUT)),
      token_dim=s["token_dim"], fusion="concat", num_heads=4,
      head_widths=tuple(s["head"]), head_norm="layer",
      head_activation="gelu", head_dropout=run_w3.DROPOUT,
      confidence_widths=tuple(s["confidence"]), num_outputs=s["classes"],
      dtype=dtype))
  c.loss = ml_collections.ConfigDict(dict(
      terms=dict(focal=1.0), gamma=2.0, focal_alpha=0.25,
      confidence_weight=1.0, label_smoothing=0.0, diversity_weight=0.0))
  c.optimizer = ml_collections.ConfigDict(dict(
      weight_decay=1e-5, b1=0.9, b2=0.999, eps=1e-8, grad_clip=1.0,
      skip_nonfinite=True))
  # W3 times steps, not a schedule: the PyTorch side's lr is constant too.
  c.schedule = ml_collections.ConfigDict(dict(name="constant"))
  return c


def param_count(config, batch):
  """Parameters of build_model(config.model) on `batch` (arrays or
  ShapeDtypeStructs), from shapes alone (jax.eval_shape)."""
  model = build_model(config.model)
  shapes = jax.eval_shape(
      lambda b: model.init({"params": jax.random.key(0),
                            "dropout": jax.random.key(1)}, b, train=False),
      batch)
  return int(sum(x.size for x in jax.tree.leaves(shapes["params"])))


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="config.model.dtype (bfloat16: params fp32, "
                      "activations bf16)")
  run_w3.add_size_args(p)
  add_step_args(p, "the compiling first call")
  args = p.parse_args(argv)

  config = get_config(args.small, args.dtype, args.batch)
  batch_size = run_w3.sizes(args.small, args.batch)["batch"]
  precision = "fp32" if args.dtype == "float32" else "bf16 mixed"
  res = {"workload": run_w3.workload(args),
         "impl": "mmjax", "precision": precision,
         "variant": f"jit, model dtype {args.dtype}",
         "loadavg_1min_start": os.getloadavg()[0]}

  if args.params_only:
    shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in
              run_w3.make_batch(args.small, batch=args.batch).items()}
    res["n_params"] = param_count(config, shapes)
    emit_result(res, args.out)
    return

  # The focal + confidence loss is ClassificationTask's: check the config.
  task = build_task(config)
  assert isinstance(task, ClassificationTask), type(task)
  batch = put_jax_batch(res, lambda: run_w3.make_batch(args.small,
                                                       batch=args.batch))
  run_jax_train_step(res, args, lambda: jax_train_step(config, batch), batch,
                     batch_size, count_flops=True)


if __name__ == "__main__":
  main()
