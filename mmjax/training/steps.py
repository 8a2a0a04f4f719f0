"""Pure train and eval steps: state and batch in, new state and metrics out.

One step trains one *member*; ensembles, k-fold folds and seeds of an
ablation are members stacked on a leading axis and trained by the same step
under `jax.vmap`. What distinguishes members is data, not code:

  member = {"seed":  int32 []   init and dropout/mixup rngs,
            "fold":  int32 []   held-out k-fold fold, -1 = none,
            "alpha": float32 [] mixup Beta(alpha, alpha), 0 = no mixup,
            "subset": int32 []  trains on rows of level <= subset, 0 = all,
            "active": bool []   False once the member has early-stopped}

Every rng of a step derives from (member seed, step), so results never depend
on the history of the process.
"""

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from mmjax.data import pipeline
from mmjax.training import losses


@flax.struct.dataclass
class TrainState:
  step: jnp.ndarray
  params: Any
  batch_stats: Any
  opt_state: Any


def create_state(model: nn.Module, tx, batch, seed) -> TrainState:
  """Initialises parameters from `seed` using one batch for the shapes."""
  variables = model.init({"params": jax.random.key(seed),
                          "dropout": jax.random.key(seed + 1)},
                         batch, train=False)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=tx.init(params))


def single_member(seed: int):
  return {"seed": jnp.asarray(seed, jnp.int32),
          "fold": jnp.asarray(-1, jnp.int32),
          "alpha": jnp.asarray(0.0, jnp.float32),
          "subset": jnp.asarray(0, jnp.int32),
          "active": jnp.asarray(True)}


def _all_finite(tree):
  leaves = jax.tree.leaves(tree)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _select(pred, new, old):
  return jax.tree.map(lambda n, o: jnp.where(pred, n, o), new, old)


def mixup_partners(rng, mask):
  """A random partner for every sample, drawn among the samples with mask 1.

  Samples a member must not learn from (its held-out fold, batch padding)
  are never partners, so no held-out label leaks through mixing. Returns
  perm [B] int32 (a masked-out sample is its own partner).
  """
  b = mask.shape[0]
  allowed = mask > 0
  order = jnp.argsort(jnp.where(allowed, 0.0, 2.0) +
                      jax.random.uniform(rng, (b,)))
  n_allowed = jnp.maximum(allowed.sum(), 1)
  pos = jnp.arange(b)
  partner_pos = jnp.where(pos < n_allowed, (pos + 1) % n_allowed, pos)
  return jnp.zeros((b,), jnp.int32).at[order].set(order[partner_pos])


def _objective(task, loss_cfg):
  """(outputs, targets, mask [B]) -> (total loss, parts): the task's loss
  averaged over the rows of `mask`, plus the optional feature-diversity
  regulariser."""
  w = loss_cfg.get("diversity_weight", 0.0)

  def objective(out, targets, mask):
    main = losses.masked_mean(task.loss(out["logits"], targets), mask)
    parts = {"loss": main}
    total = main
    if w:
      div = losses.feature_diversity(out["features"], mask,
                                     loss_cfg.get("diversity_mode", "seed"))
      parts["diversity"] = div
      total = total + w * div
    return total, parts
  return objective


def make_member_step(model, tx, schedule, task, loss_cfg, mixup=False,
                     smoothing=0.0) -> Callable:
  """Returns member_step(state, batch, member) -> (state, metrics).

  `task` (mmjax.tasks) owns targets, loss and the on-device train metric.
  `smoothing`: label smoothing, a float or a schedule of the step.
  mixup=False compiles the mixing out (no member has alpha > 0).
  """
  objective = _objective(task, loss_cfg)

  def member_step(state: TrainState, batch, member):
    rng = jax.random.fold_in(jax.random.key(member["seed"]), state.step)
    drop_rng, perm_rng, lam_rng = jax.random.split(rng, 3)
    mask = batch["sample_mask"]
    rows = None
    if "fold" in batch:  # k-fold: the member never learns from its fold,
      # neither through the loss nor through BatchNorm's batch statistics.
      mask = mask * (batch["fold"] != member["fold"]).astype(mask.dtype)
      rows = mask
    if "subset" in batch:  # Nested data subsets (progressive scaling): the
      # same, for the rows above the member's level.
      mine = (member["subset"] <= 0) | (batch["subset"] <= member["subset"])
      mask = mask * mine.astype(mask.dtype)
      rows = mask
    eps = smoothing(state.step) if callable(smoothing) else smoothing
    targets = task.targets(batch["label"], eps)
    mix = None
    if mixup:
      alpha = member["alpha"]
      safe = jnp.maximum(alpha, 1e-3)
      lam = jnp.where(alpha > 0, jax.random.beta(lam_rng, safe, safe), 1.0)
      perm = mixup_partners(perm_rng, mask)
      targets = lam * targets + (1 - lam) * targets[perm]
      mix = (perm, lam)

    def loss_fn(params):
      out, updates = model.apply(
          {"params": params, "batch_stats": state.batch_stats}, batch,
          train=True, rngs={"dropout": drop_rng}, mutable=["batch_stats"],
          mixup=mix, rows=rows)
      total, parts = objective(out, targets, mask)
      return total, (out, updates, parts)

    (total, (out, updates, parts)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    new_updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, new_updates)
    finite = jnp.isfinite(total) & _all_finite(grads)
    # apply_if_finite already kept the params; keep BatchNorm stats too.
    batch_stats = _select(finite, updates.get("batch_stats", {}),
                          state.batch_stats)
    score = losses.masked_mean(
        task.train_metric_fn(out["logits"], batch["label"]), mask)
    # `loss` is the task loss, comparable with the eval loss; `objective`
    # adds the regularisers that the gradient also saw.
    metrics = {"objective": total, task.train_metric: score,
               "grad_norm": optax.tree.norm(grads),
               "lr": jnp.asarray(schedule(state.step), jnp.float32),
               "skipped": 1.0 - finite.astype(jnp.float32), **parts}
    if callable(smoothing):
      metrics["label_smoothing"] = jnp.asarray(eps, jnp.float32)
    new_state = state.replace(step=state.step + 1, params=params,
                              batch_stats=batch_stats, opt_state=opt_state)
    # A member that early-stopped keeps its weights; its step still counts
    # so that all members share one step counter.
    frozen = state.replace(step=state.step + 1)
    return _select(member["active"], new_state, frozen), metrics

  return member_step


def make_train_step(model, tx, schedule, task, loss_cfg, seed,
                    smoothing=0.0) -> Callable:
  """Returns train_step(state, batch) -> (state, metrics) for one model."""
  member_step = make_member_step(model, tx, schedule, task, loss_cfg,
                                 smoothing=smoothing)
  return lambda state, batch: member_step(state, batch, single_member(seed))


MEMBER_LOOPS = ("vmap", "unroll")


def over_members(fn, in_axes, loop="vmap") -> Callable:
  """fn over a leading member axis of the arguments whose in_axes is 0
  (None: shared by every member); outputs stacked on that axis.

  loop 'vmap': jax.vmap, one batched computation (the default).
  'unroll': a Python loop over the K members inside the traced function:
  K copies of the computation in one jitted program (compile time grows
  with K). The same values; faster where the backend runs a vmapped
  operation slowly, e.g. 3D convolutions with a member axis on the
  weights on XLA's CPU backend.
  """
  if loop not in MEMBER_LOOPS:
    raise ValueError(f"member_loop: unknown '{loop}' (known: "
                     f"{', '.join(MEMBER_LOOPS)})")
  if loop == "vmap":
    return jax.vmap(fn, in_axes=in_axes)

  def unrolled(*args):
    k = next(jax.tree.leaves(a)[0].shape[0]
             for a, ax in zip(args, in_axes) if ax == 0)
    outs = [fn(*[a if ax is None else jax.tree.map(lambda x: x[i], a)
                 for a, ax in zip(args, in_axes)]) for i in range(k)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  return unrolled


def make_ensemble_train_step(model, tx, schedule, task, loss_cfg,
                             mixup=False, smoothing=0.0,
                             loop="vmap") -> Callable:
  """Returns step(states [K,...], batch, members [K]) -> (states, metrics
  [K]): every member trained on the same batch by one step (over_members)."""
  member_step = make_member_step(model, tx, schedule, task, loss_cfg, mixup,
                                 smoothing)
  return over_members(member_step, (0, None, 0), loop)


def gather_batch_then(step, batch_sharding=None) -> Callable:
  """step(state, batch, *rest) -> fn(state, data, idx, *rest).

  The batch is gathered inside the jitted step from a device-resident split
  `data` {key: [N, ...]} by indices idx [B] (-1 = padding), so the host
  sends B integers per step instead of the batch; batch_sharding, if given,
  is the layout the gathered batch is constrained to.
  """

  def fn(state, data, idx, *rest):
    batch = pipeline.take_rows(data, idx, jnp)
    if batch_sharding is not None:
      batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
    return step(state, batch, *rest)

  return fn


def make_eval_step(model, task, tta_passes=0, tta_noise=0.0,
                   tta_seed=0) -> Callable:
  """Returns eval_step(params, batch_stats, batch, member_seed, batch_index)
  -> (outputs [B, C], per-sample task loss [B]); the caller drops padded
  samples.

  With tta_passes > 0 the outputs are the mean over that many passes with
  Gaussian noise (test-time augmentation, in eval mode). The noise of pass p
  derives from (tta_seed, member_seed, batch_index, p), so every batch and
  every member draws its own.
  """

  def eval_step(params, batch_stats, batch, member_seed, batch_index):
    variables = {"params": params, "batch_stats": batch_stats}
    if tta_passes:
      key = jax.random.fold_in(jax.random.fold_in(
          jax.random.key(tta_seed), member_seed), batch_index)
      keys = jax.random.split(key, tta_passes)
      logits = jax.vmap(lambda k: model.apply(
          variables, batch, train=False, noise=(k, tta_noise))["logits"])(
              keys).mean(0)
    else:
      logits = model.apply(variables, batch, train=False)["logits"]
    return logits, task.loss(logits, task.targets(batch["label"]))

  return eval_step


def make_ensemble_eval_step(model, task, loop="vmap", **tta) -> Callable:
  """eval_step over stacked member weights and seeds (over_members):
  outputs [K, B, C], losses [K, B]."""
  return over_members(make_eval_step(model, task, **tta),
                      (0, 0, None, 0, None), loop)
