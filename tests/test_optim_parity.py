"""Parity of mmjax's parameter groups (lr multipliers), warmup + warm-restart
schedule and scheduled weight decay with torch.optim, on equal weights and
an equal gradient sequence; their optimizer states through an orbax
checkpoint; and today's recipes still building today's chain.

Every reference value comes from torch (or a plain-python transcription of
the intended curve), never from the code under test.
"""

import functools
import importlib
import math
import warnings

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
import torch

import parity_helpers

from mmjax.training import optim
from mmjax.training import schedules

BASE_LR = 1e-2


# Optimizer state after many steps: tighter than the layers' 1e-5.
close = functools.partial(parity_helpers.close, rtol=1e-6, atol=1e-6)
t = parity_helpers.t


def flat(tree):
  """{'a/b/kernel': leaf} of a nested dict."""
  return {optim.param_path(k): v
          for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def config(schedule, lr_mults=(), weight_decay=0.05, grad_clip=0.0,
           num_epochs=10):
  return ml_collections.ConfigDict(dict(
      learning_rate=BASE_LR, num_epochs=num_epochs,
      optimizer=dict(weight_decay=weight_decay, b1=0.9, b2=0.999, eps=1e-8,
                     grad_clip=grad_clip, skip_nonfinite=True,
                     lr_mults=lr_mults),
      schedule=schedule))


RESTARTS = dict(name="warmup_cosine_restarts", warmup_epochs=2, t_0=3,
                t_mult=2, eta_min=0.0)


def grouped_params(seed, n_steps):
  """Params with the paths of a CNN + transformer + head model, and a
  gradient sequence (numpy float32)."""
  rng = np.random.default_rng(seed)
  shapes = {"cnn": {"conv0": {"kernel": (3, 3, 2, 4), "bias": (4,)},
                    "conv1": {"kernel": (3, 3, 4, 4)}},
            "transformer": {"layer0": {"query": {"kernel": (4, 4)},
                                       "mlp": {"kernel": (4, 8)}}},
            "head": {"dense0": {"kernel": (8, 2), "bias": (2,)}},
            "norm": {"scale": (4,)}}
  params = jax.tree.map(lambda s: rng.normal(size=s).astype(np.float32),
                        shapes, is_leaf=lambda x: isinstance(x, tuple))
  grads = [jax.tree.map(
      lambda p: (rng.normal(size=p.shape) * 0.7).astype(np.float32), params)
           for _ in range(n_steps)]
  return params, grads


def run_optax(tx, params, grads):
  update = jax.jit(tx.update)
  p = jax.tree.map(jnp.asarray, params)
  state = tx.init(p)
  for g in grads:
    upd, state = update(jax.tree.map(jnp.asarray, g), state, p)
    p = optax.apply_updates(p, upd)
  return p, state


def torch_restarts(opt, warmup, t_0, t_mult, eta_min, start_factor):
  """The torch construction warmup_cosine_restarts reproduces."""
  sched = torch.optim.lr_scheduler
  cawr = sched.CosineAnnealingWarmRestarts(opt, t_0, t_mult, eta_min)
  if not warmup:
    return cawr
  linear = sched.LinearLR(opt, start_factor=start_factor, end_factor=1.0,
                          total_iters=warmup)
  return sched.SequentialLR(opt, [linear, cawr], milestones=[warmup])


def torch_lr_per_epoch(base, warmup, t_0, t_mult, eta_min, start_factor,
                       num_epochs):
  """The lr torch trains epoch e with (set by e scheduler steps)."""
  p = torch.nn.Parameter(torch.zeros(1))
  opt = torch.optim.SGD([p], lr=base)
  sched = torch_restarts(opt, warmup, t_0, t_mult, eta_min, start_factor)
  lrs = []
  for _ in range(num_epochs):
    lrs.append(opt.param_groups[0]["lr"])
    opt.step()
    sched.step()
  return np.array(lrs)


# --------------------------------------------------------------------------
# Today's recipes: the same chain as before the new keys
# --------------------------------------------------------------------------


@pytest.mark.parametrize("module,arg", [("optimized", None),
                                        ("optimized", "smoke"),
                                        ("extreme_boost", None)])
def test_todays_configs_build_todays_chain(module, arg):
  cfg = importlib.import_module(f"configs.{module}").get_config(arg)
  assert not cfg.optimizer.get("lr_mults", ())
  o, spe = cfg.optimizer, 5
  tx, schedule = optim.build_optimizer(cfg, spe)
  want_tx = optax.apply_if_finite(
      optax.chain(optax.clip_by_global_norm(1.0),
                  optax.adamw(schedules.build_schedule(cfg, spe), b1=o.b1,
                              b2=o.b2, eps=o.eps,
                              weight_decay=o.weight_decay)), 2**30)
  params, grads = grouped_params(0, 12)
  grads[3] = jax.tree.map(lambda g: g * np.nan, grads[3])  # One skip.
  got_p, got = run_optax(tx, params, grads)
  want_p, want = run_optax(want_tx, params, grads)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  jax.tree.map(np.testing.assert_array_equal, got, want)
  jax.tree.map(np.testing.assert_array_equal, got_p, want_p)
  assert schedule(3 * spe) == schedules.build_schedule(cfg, spe)(3 * spe)


# --------------------------------------------------------------------------
# Warmup + cosine annealing with warm restarts
# --------------------------------------------------------------------------


@pytest.mark.parametrize("warmup,t_0,t_mult,eta_min,start", [
    (10, 15, 2, 1e-6, None),   # Restarts at epochs 10, 25 and 55.
    (10, 15, 1, 0.0, 0.25),
    (3, 4, 3, 1e-5, 0.5),
    (0, 7, 2, 1e-5, None),     # No warmup: CosineAnnealingWarmRestarts.
])
def test_warmup_cosine_restarts_matches_torch(warmup, t_0, t_mult, eta_min,
                                              start):
  k, epochs = 3, 60
  cfg = config(dict(name="warmup_cosine_restarts", warmup_epochs=warmup,
                    t_0=t_0, t_mult=t_mult, eta_min=eta_min,
                    warmup_start_factor=start), num_epochs=epochs)
  sched = schedules.build_schedule(cfg, k)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    want = torch_lr_per_epoch(BASE_LR, warmup, t_0, t_mult, eta_min,
                              start or (1 / warmup if warmup else 1.0),
                              epochs)
  steps = np.arange(epochs * k)
  got = np.asarray(jax.vmap(sched)(jnp.asarray(steps)))
  close(got, want[steps // k], rtol=1e-6, atol=1e-6 * BASE_LR)
  for s in (0, k - 1, 10 * k, 25 * k + 2, epochs * k - 1):  # Python ints.
    close(sched(s), want[s // k], rtol=1e-6, atol=1e-6 * BASE_LR)


def test_warmup_cosine_restarts_beyond_many_restarts():
  """Restart epochs stay exact far out (T_mult = 2: 1, 3, 7, ..., 2^n - 1)."""
  sched = schedules.warmup_cosine_restarts(1.0, 0, 1, 2, 0.0, 1)
  for n in range(1, 25):
    close(sched(2**n - 1), 1.0)
    close(sched(2**n - 2), 0.5 * (1 + math.cos(math.pi * (2**(n - 1) - 1)
                                               / 2**(n - 1))), atol=1e-6)


# --------------------------------------------------------------------------
# Parameter groups with lr multipliers
# --------------------------------------------------------------------------

LR_MULTS = (("cnn/.*", 0.5), ("transformer/.*", 1.5), ("head/.*", 1.0))
GROUP_OF = {"cnn": 0, "transformer": 1, "head": 2, "norm": 2}


@pytest.mark.parametrize("eta_min", [0.0, 1e-3])
def test_lr_mults_match_torch_param_groups(eta_min):
  """AdamW groups of lr base x {0.5, 1.5, 1.0} under warmup + restarts.

  mmjax's group lr is mult x schedule. With eta_min = 0 that is torch's
  SequentialLR on the grouped optimizer itself; with eta_min > 0 torch's
  CosineAnnealingWarmRestarts would floor every group at the same absolute
  eta_min, so the reference scales each group by one factor (LambdaLR) taken
  from torch's scheduler on a single group of lr base.
  """
  spe, n = 2, 20  # 10 epochs: warmup 2, restarts at epochs 2 and 5.
  sched_cfg = dict(RESTARTS, eta_min=eta_min)
  tx, _ = optim.build_optimizer(config(sched_cfg, LR_MULTS), spe)
  params, grads = grouped_params(1, n)
  got, _ = run_optax(tx, params, grads)

  tp = {k: torch.nn.Parameter(t(v)) for k, v in flat(params).items()}
  groups = [{"params": [], "lr": BASE_LR * m} for _, m in LR_MULTS]
  for k, p in tp.items():
    groups[GROUP_OF[k.split("/")[0]]]["params"].append(p)
  topt = torch.optim.AdamW(groups, lr=BASE_LR, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=0.05)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if eta_min == 0.0:
      tsched = torch_restarts(topt, 2, 3, 2, 0.0, 0.5)
    else:
      factor = torch_lr_per_epoch(BASE_LR, 2, 3, 2, eta_min, 0.5,
                                  n // spe + 1) / BASE_LR
      tsched = torch.optim.lr_scheduler.LambdaLR(topt, lambda e: factor[e])
    for step, g in enumerate(grads):
      for k, v in flat(g).items():
        tp[k].grad = t(v)
      topt.step()
      if (step + 1) % spe == 0:
        tsched.step()
  for k, v in flat(got).items():
    close(v, tp[k], rtol=1e-6, atol=2e-6)
  mult = {"cnn": 0.5, "transformer": 1.5, "head": 1.0, "norm": 1.0}
  assert optim.check_lr_mults(config(sched_cfg, LR_MULTS), params) == {
      k: mult[k.split("/")[0]] for k in tp}


def test_lr_mults_first_match_wins_and_unmatched_get_one():
  params, _ = grouped_params(2, 0)
  cfg = config(RESTARTS, (("cnn/conv0/.*", 3.0), ("cnn/.*", 0.5),
                          (".*kernel", 2.0)))
  mults = optim.check_lr_mults(cfg, params)
  assert mults["cnn/conv0/kernel"] == 3.0
  assert mults["cnn/conv1/kernel"] == 0.5
  assert mults["head/dense0/kernel"] == 2.0
  assert mults["head/dense0/bias"] == 1.0
  assert mults["norm/scale"] == 1.0


def test_lr_mults_pattern_matching_nothing_raises():
  params, _ = grouped_params(3, 0)
  cfg = config(RESTARTS, (("cnn/.*", 0.5), ("vit/.*", 1.5)))
  msg = "optimizer.lr_mults: pattern 'vit/.*' matches no parameter"
  with pytest.raises(ValueError, match=msg.replace(".", r"\.").replace(
      "*", r"\*")):
    optim.check_lr_mults(cfg, params)
  tx, _ = optim.build_optimizer(cfg, 2)  # Builds; the params are unknown.
  with pytest.raises(ValueError, match="matches no parameter"):
    tx.init(params)
  # Whole-path matching: a prefix alone is no match.
  with pytest.raises(ValueError, match="pattern 'cnn' matches no parameter"):
    optim.check_lr_mults(config(RESTARTS, (("cnn", 0.5),)), params)


@pytest.mark.parametrize("lr_mults,msg", [
    ((("cnn/.*", 0.5), "head"), "optimizer.lr_mults: entry 1 must be "
     r"\(regex, multiplier\)"),
    ((("cnn/.*", 0.5, 1.0),), "entry 0 must be"),
    (((3, 0.5),), "entry 0 must be"),
    ((("cnn/.*", "0.5"),), "entry 0 must be"),
    ((("cnn/.*", -1.0),), "entry 0 multiplier must be finite and >= 0"),
    ((("cnn/(", 0.5),), r"entry 0 pattern 'cnn/\(' is not a regex"),
    ("cnn/.*", "optimizer.lr_mults: must be a tuple"),
])
def test_bad_lr_mults_raise(lr_mults, msg):
  cfg = config(RESTARTS, lr_mults)
  with pytest.raises(ValueError, match=msg):
    optim.build_optimizer(cfg, 2)


@pytest.mark.parametrize("key,value,msg", [
    ("t_mult", 0, "schedule.t_mult: must be an integer >= 1"),
    ("t_mult", 1.5, "schedule.t_mult: must be an integer >= 1"),
    ("t_0", 0, "schedule.t_0: must be an integer >= 1"),
    ("warmup_epochs", -1, "schedule.warmup_epochs: must be an integer >= 0"),
    ("eta_min", -1e-3, "schedule.eta_min: must be a number >= 0"),
    ("warmup_start_factor", 0.0, r"schedule.warmup_start_factor: must be in"),
])
def test_bad_restarts_schedule_raises(key, value, msg):
  cfg = config(dict(RESTARTS, **{key: value}))
  with pytest.raises(ValueError, match=msg):
    optim.build_optimizer(cfg, 2)


# --------------------------------------------------------------------------
# Hyperparameter schedules: label smoothing, weight decay
# --------------------------------------------------------------------------


def value_by_epoch(start, end, shape, epoch, num_epochs):
  f = min(epoch / max(num_epochs - 1, 1), 1.0)
  if shape == "linear":
    return start + (end - start) * f
  return end + (start - end) * 0.5 * (1 + math.cos(math.pi * f))


@pytest.mark.parametrize("shape", ["linear", "cosine"])
def test_value_schedule_by_epoch(shape):
  k, epochs = 4, 30
  sched = schedules.build_value_schedule(
      ml_collections.ConfigDict(dict(start=0.15, end=0.045, shape=shape)),
      epochs, k, "loss.label_smoothing")
  steps = np.arange((epochs + 2) * k)  # Past the end: stays at `end`.
  got = np.asarray(jax.vmap(sched)(jnp.asarray(steps)))
  want = [value_by_epoch(0.15, 0.045, shape, s // k, epochs) for s in steps]
  close(got, want, rtol=1e-6, atol=1e-7)
  close(sched(0), 0.15)
  close(sched(epochs * k - 1), 0.045)


def test_value_schedule_constant_is_the_number():
  sched = schedules.build_value_schedule(0.2, 30, 4)
  assert sched(17) == 0.2 and isinstance(sched(17), float)


@pytest.mark.parametrize("spec,msg", [
    (dict(start=0.1, end=0.2, shape="step"),
     "loss.label_smoothing.shape: unknown shape 'step'"),
    (dict(start=0.1, stop=0.2),
     r"loss.label_smoothing: unknown keys \['stop'\]"),
    (dict(start=0.1), "loss.label_smoothing.end: must be a number"),
    ("0.1", "loss.label_smoothing: must be a number or dict"),
])
def test_bad_value_schedule_raises(spec, msg):
  with pytest.raises(ValueError, match=msg):
    schedules.build_value_schedule(spec, 10, 2, "loss.label_smoothing")


def test_bad_weight_decay_spec_names_the_key():
  cfg = config(RESTARTS, weight_decay=dict(start=0.01, end=0.1, shape="exp"))
  with pytest.raises(ValueError, match="optimizer.weight_decay.shape"):
    optim.build_optimizer(cfg, 2)


@pytest.mark.parametrize("shape", ["linear", "cosine"])
def test_scheduled_weight_decay_matches_torch(shape):
  """torch AdamW whose group weight_decay is set before every epoch (the
  recipe-004 loop), with clipping and a warmup-cosine lr, vs mmjax's chain."""
  spe, epochs = 4, 6
  wd = dict(start=0.01, end=0.10, shape=shape)
  cfg = config(dict(name="warmup_cosine", warmup_epochs=2, eta_min=0.0,
                    per_epoch=True), weight_decay=wd, grad_clip=1.0,
               num_epochs=epochs)
  tx, _ = optim.build_optimizer(cfg, spe)
  params, grads = grouped_params(4, epochs * spe)
  grads = [jax.tree.map(lambda g: g * 2.0, g) for g in grads]  # Clips.
  got, _ = run_optax(tx, params, grads)

  tp = {k: torch.nn.Parameter(t(v)) for k, v in flat(params).items()}
  topt = torch.optim.AdamW(list(tp.values()), lr=cfg.learning_rate,
                           betas=(0.9, 0.999), eps=1e-8)
  for step, g in enumerate(grads):
    e = step // spe
    for group in topt.param_groups:
      group["weight_decay"] = value_by_epoch(0.01, 0.10, shape, e, epochs)
      group["lr"] = cfg.learning_rate * (
          (e + 1) / 2 if e < 2 else
          0.5 * (1 + math.cos(math.pi * (e - 2) / (epochs - 2))))
    for k, v in flat(g).items():
      tp[k].grad = t(v)
    torch.nn.utils.clip_grad_norm_(list(tp.values()), 1.0)
    topt.step()
  for k, v in flat(got).items():
    close(v, tp[k], rtol=1e-6, atol=2e-6)


# --------------------------------------------------------------------------
# Checkpoints of the new optimizer states
# --------------------------------------------------------------------------

def save_and_restore(directory, state, like):
  """A round trip as mmjax.training.checkpoint saves: a CheckpointManager,
  StandardSave, StandardRestore onto an abstract target."""
  mngr = ocp.CheckpointManager(
      str(directory), options=ocp.CheckpointManagerOptions(
          create=True, enable_async_checkpointing=False))
  mngr.save(5, args=ocp.args.Composite(state=ocp.args.StandardSave(state)),
            force=True)
  mngr.wait_until_finished()
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  got = mngr.restore(5, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract)))
  mngr.close()
  return got.state


CHAINS = {
    "scheduled_weight_decay": dict(weight_decay=dict(start=0.01, end=0.1)),
    "param_groups": dict(lr_mults=LR_MULTS),
    # Every parameter matched, none x1.0: the default group holds nothing.
    "groups_and_decay": dict(
        lr_mults=(("cnn/.*", 0.5), ("transformer/.*", 1.5), (".*", 2.0)),
        weight_decay=dict(start=0.01, end=0.1, shape="cosine")),
}


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_optimizer_state_survives_checkpoint(chain, tmp_path):
  spe = 2
  cfg = config(RESTARTS, grad_clip=1.0, num_epochs=6, **CHAINS[chain])
  tx, _ = optim.build_optimizer(cfg, spe)
  update = jax.jit(tx.update)
  params, grads = grouped_params(5, 12)
  grads[2] = jax.tree.map(lambda g: g * np.nan, grads[2])  # A skip too.

  def train(state, gs):
    for g in gs:
      upd, opt = update(jax.tree.map(jnp.asarray, g), state["opt_state"],
                        state["params"])
      state = dict(params=optax.apply_updates(state["params"], upd),
                   opt_state=opt)
    return state

  p = jax.tree.map(jnp.asarray, params)
  state = train(dict(params=p, opt_state=tx.init(p)), grads[:5])
  restored = save_and_restore(tmp_path, state,
                              dict(params=p, opt_state=tx.init(p)))
  assert jax.tree.structure(restored) == jax.tree.structure(state)
  jax.tree.map(np.testing.assert_array_equal, restored, state)
  straight = train(state, grads[5:])
  resumed = train(restored, grads[5:])
  jax.tree.map(np.testing.assert_array_equal, resumed, straight)
