"""W5 benchmark, mmjax side: times a train step of reference recipe 004's
sequence classifier on the W5 shapes.

  PYTHONPATH=. python benchmarks/w5_mmjax.py --dtype float32
  PYTHONPATH=. python benchmarks/w5_mmjax.py --dtype bfloat16
  PYTHONPATH=. python benchmarks/w5_mmjax.py --params_only   # count only

The model (`W5Model`) is mmjax's `residual_attention` encoder
(mmjax/models/resattn.py: ResidualAttentionEncoder) and a linear
classifier: Dense 50 -> 160 (no positional code: W5 lists none), 3
pre-norm residual blocks (BatchNorm -> 4-head self-attention, BatchNorm ->
Dense 640 -> exact GELU -> Dense 160, each branch ending in dropout
0.1 / 0.2 / 0.3 by block), a final BatchNorm, the mean over the 80 steps,
Dense 160 -> 6. Loss: cross-entropy on labels smoothed by 0.15
(mmjax.training.losses.soft_targets: PyTorch's convention), batch mean.
Optimizer: optax.chain(clip_by_global_norm(1.0), adamw(1e-3, weight decay
0.01)) at a constant lr.

The step (`build_step`): forward in training mode (dropout, BatchNorm
batch statistics, its running statistics updated), backward, clipping and
AdamW, jitted with the state (mmjax.training.steps.TrainState) donated; the
dropout key is folded from the step count. It has no non-finite guard, so
its 'skipped' metric is always 0. The batch, run_w5.make_batch() (the same
sequences as the PyTorch side), is put on the device once. fp32:
everything runs under jax.default_matmul_precision("highest"); `--dtype
bfloat16` computes in bf16 with fp32 parameters (BatchNorm statistics, the
attention softmax, the logits and the loss stay fp32).

Beside the timing fields of benchmarks/common.py, the JSON line holds XLA's
FLOP count of the compiled step (`xla_flops_per_step`) to set against
run_w5.model_flops(). `--small` runs run_w5.SMALL's sizes (tests);
`--params_only` reports the parameter count (from shapes alone) and times
nothing.

Prints one JSON line prefixed with 'RESULT ' (and appends it to --out).
"""

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import flax.linen as nn  # pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp
import optax

from mmjax.models.resattn import ResidualAttentionEncoder
from mmjax.training import losses
from mmjax.training.steps import TrainState, create_state
from common import add_step_args, emit_result, put_jax_batch, run_jax_train_step
import run_w5

SEED = 0


class W5Model(nn.Module):
  """ResidualAttentionEncoder (no positions; block i's dropout
  `dropouts[i]`) + Dense(classes): batch {'trajectory' [B, T, F],
  'trajectory_mask' [B, T]} -> logits float32 [B, C]."""
  width: int
  depth: int
  heads: int
  mlp_ratio: int
  classes: int
  dtype: Any = jnp.float32
  dropouts: tuple = run_w5.DROPOUTS

  @nn.compact
  def __call__(self, batch, *, train: bool):
    h = ResidualAttentionEncoder(
        width=self.width, depth=self.depth, num_heads=self.heads,
        mlp_ratio=self.mlp_ratio, dropouts=self.dropouts, positions=False,
        dtype=self.dtype, name="encoder")(
            batch["trajectory"], batch["trajectory_mask"], train=train)
    logits = nn.Dense(self.classes, dtype=self.dtype, name="head")(h)
    return logits.astype(jnp.float32)


def build_model(small=False, dtype="float32"):
  """W5Model at run_w5.FULL's (or SMALL's) sizes."""
  s = run_w5.sizes(small)
  return W5Model(width=s["width"], depth=s["depth"], heads=s["heads"],
                 mlp_ratio=s["mlp_ratio"], classes=s["classes"],
                 dtype=jnp.dtype(dtype))


def optimizer():
  """Global-norm clipping, then AdamW (torch's defaults otherwise)."""
  return optax.chain(
      optax.clip_by_global_norm(run_w5.CLIP),
      optax.adamw(run_w5.LR, b1=0.9, b2=0.999, eps=1e-8,
                  weight_decay=run_w5.WEIGHT_DECAY))


def loss_of(logits, label, classes):
  """Cross-entropy against labels smoothed by run_w5.LABEL_SMOOTHING,
  batch mean: logits [B, C], label int [B] -> scalar."""
  targets = losses.soft_targets(label, classes, run_w5.LABEL_SMOOTHING)
  return losses.cross_entropy(logits, targets).mean()


def build_step(model, batch, classes):
  """(state, step): the state initialised on `batch`, and step(state,
  batch) -> (state, {'loss', 'skipped'}) jitted with the state donated."""
  tx = optimizer()
  state = jax.jit(lambda b: create_state(model, tx, b, SEED))(batch)

  def step(state, batch):
    rng = jax.random.fold_in(jax.random.key(SEED + 1), state.step)

    def objective(params):
      logits, updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, batch,
          train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
      return loss_of(logits, batch["label"], classes), updates["batch_stats"]

    (loss, stats), grads = jax.value_and_grad(objective, has_aux=True)(
        state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new = TrainState(step=state.step + 1,
                     params=optax.apply_updates(state.params, updates),
                     batch_stats=stats, opt_state=opt_state)
    return new, {"loss": loss, "skipped": jnp.zeros((), jnp.float32)}

  return state, jax.jit(step, donate_argnums=0)


def param_count(model, batch):
  """Parameters of `model` on `batch` (arrays or ShapeDtypeStructs), from
  shapes alone (jax.eval_shape)."""
  shapes = jax.eval_shape(
      lambda b: model.init(jax.random.key(0), b, train=False), batch)
  return int(sum(x.size for x in jax.tree.leaves(shapes["params"])))


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="model dtype (bfloat16: params fp32, activations bf16)")
  run_w5.add_size_args(p)
  add_step_args(p, "the compiling first call")
  args = p.parse_args(argv)

  model = build_model(args.small, args.dtype)
  s = run_w5.sizes(args.small)
  precision = "fp32" if args.dtype == "float32" else "bf16 mixed"
  res = {"workload": run_w5.workload(args),
         "impl": "mmjax", "precision": precision,
         "variant": f"jit, model dtype {args.dtype}",
         "loadavg_1min_start": os.getloadavg()[0]}

  if args.params_only:
    shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in
              run_w5.make_batch(args.small).items()}
    res["n_params"] = param_count(model, shapes)
    emit_result(res, args.out)
    return

  batch = put_jax_batch(res, lambda: run_w5.make_batch(args.small))
  run_jax_train_step(res, args,
                     lambda: build_step(model, batch, s["classes"]), batch,
                     s["batch"], count_flops=True)


if __name__ == "__main__":
  main()
