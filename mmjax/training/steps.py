"""Pure train and eval steps: state and batch in, new state and metrics out.

The dropout rng of a step is derived from (seed, step) inside the step, so
results never depend on the history of the process.
"""

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from mmjax.training import losses


@flax.struct.dataclass
class TrainState:
  step: jnp.ndarray
  params: Any
  batch_stats: Any
  opt_state: Any


def create_state(model: nn.Module, tx, batch, seed: int) -> TrainState:
  """Initialises parameters from `seed` using one batch for the shapes."""
  variables = model.init({"params": jax.random.key(seed),
                          "dropout": jax.random.key(seed + 1)},
                         batch, train=False)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=tx.init(params))


def _all_finite(tree):
  leaves = jax.tree.leaves(tree)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _objective(loss_cfg, num_classes):
  """(outputs, batch) -> (total loss, parts) for the configured task."""
  def objective(out, batch):
    mask = batch["sample_mask"]
    if loss_cfg.name in losses.PER_SAMPLE:
      targets = losses.soft_targets(batch["label"], num_classes,
                                    loss_cfg.get("label_smoothing", 0.0))
      targets = batch.get("soft_targets", targets)
      fn = losses.PER_SAMPLE[loss_cfg.name]
      kw = {"gamma": loss_cfg.gamma} if loss_cfg.name == "focal" else {}
      per = fn(out["logits"], targets, **kw)
    else:
      raise ValueError(f"loss.name: unknown loss '{loss_cfg.name}' "
                       f"(known: {', '.join(losses.PER_SAMPLE)})")
    main = losses.masked_mean(per, mask)
    parts = {"loss": main}
    total = main
    w = loss_cfg.get("diversity_weight", 0.0)
    if w:
      div = losses.feature_diversity(out["features"], mask)
      parts["diversity"] = div
      total = total + w * div
    return total, parts
  return objective


def make_train_step(model, tx, schedule, loss_cfg, num_classes, seed,
                    ) -> Callable:
  """Returns train_step(state, batch) -> (state, metrics)."""
  objective = _objective(loss_cfg, num_classes)

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.key(seed), state.step)

    def loss_fn(params):
      out, updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, batch,
          train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
      total, parts = objective(out, batch)
      return total, (out, updates, parts)

    (total, (out, updates, parts)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    new_updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, new_updates)
    finite = jnp.isfinite(total) & _all_finite(grads)
    # apply_if_finite already kept the params; keep BatchNorm stats too.
    batch_stats = jax.tree.map(lambda n, o: jnp.where(finite, n, o),
                               updates.get("batch_stats", {}),
                               state.batch_stats)
    mask = batch["sample_mask"]
    acc = losses.masked_mean(
        (out["logits"].argmax(-1) == batch["label"]).astype(jnp.float32),
        mask)
    # `loss` is the task loss, comparable with the eval loss; `objective`
    # adds the regularisers that the gradient also saw.
    metrics = {"objective": total, "accuracy": acc,
               "grad_norm": optax.tree.norm(grads),
               "lr": jnp.asarray(schedule(state.step), jnp.float32),
               "skipped": 1.0 - finite.astype(jnp.float32), **parts}
    new_state = state.replace(step=state.step + 1, params=params,
                              batch_stats=batch_stats, opt_state=opt_state)
    return new_state, metrics

  return train_step


def make_eval_step(model, loss_cfg, num_classes) -> Callable:
  """Returns eval_step(params, batch_stats, batch) -> (logits, per-sample
  task loss); the caller drops padded samples."""

  def eval_step(params, batch_stats, batch):
    out = model.apply({"params": params, "batch_stats": batch_stats}, batch,
                      train=False)
    targets = losses.soft_targets(batch["label"], num_classes, 0.0)
    fn = losses.PER_SAMPLE.get(loss_cfg.name, losses.cross_entropy)
    kw = {"gamma": loss_cfg.gamma} if loss_cfg.name == "focal" else {}
    return out["logits"], fn(out["logits"], targets, **kw)

  return eval_step
