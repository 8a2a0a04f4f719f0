"""Fits one recipe in one workdir: the epoch loop with evaluation, early
stopping, checkpoints, logs and the final results.

Everything that decides the trained parameters (init, data order, dropout
rngs) is a function of (config.seed, step), and the host-side bookkeeping
travels in the checkpoint, so a run resumed from any checkpoint ends with
exactly the parameters of an uninterrupted run.
"""

import contextlib
import functools
import json
import math
import os
import shutil
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from tqdm import tqdm

from mmjax.data import pipeline
from mmjax.data.sources import load_sources
from mmjax.errors import UserError
from mmjax.models.multimodal import build_model
from mmjax.training import logs
from mmjax.training import losses
from mmjax.training import metrics as metrics_lib
from mmjax.training import sharding
from mmjax.training.checkpoint import Checkpointer
from mmjax.training.optim import build_optimizer
from mmjax.training.steps import create_state
from mmjax.training.steps import gather_batch_then
from mmjax.training.steps import make_ensemble_eval_step
from mmjax.training.steps import make_ensemble_train_step


def bound_run_ahead(pending, limit):
  """Blocks until at most `limit` of the dispatched steps are unfinished.

  `pending` holds the outputs of the steps dispatched since the last flush,
  oldest first. Without a bound the loop dispatches up to the next metrics
  flush ahead of the device; signals are handled between steps, so on slow
  steps (3.7 s for extreme_boost on 2 CPU cores) a SIGTERM then took about
  40 steps to be acted on. A few steps in flight still hide dispatch.
  """
  if limit > 0 and len(pending) > limit:
    jax.block_until_ready(pending[-1 - limit])


class Preempted(Exception):
  """Raised on SIGINT/SIGTERM: after a checkpoint was saved when `step` is
  given (inside the training steps), else outside them (loading data,
  compiling, evaluating), where stopping loses nothing already written."""

  def __init__(self, signum, step=None):
    if step is None:
      msg = (f"stopped by signal {signum} outside the training steps; what "
             "the workdir holds is kept, re-run the same command to resume")
    else:
      msg = (f"stopped by signal {signum} at step {step}; checkpoint saved, "
             "re-run the same command to resume")
    super().__init__(msg)
    self.signum = signum


@contextlib.contextmanager
def stop_on_signals():
  """SIGINT/SIGTERM raise `Preempted` wherever the main thread is.

  Around a whole command: the training loop sets its own handler (a flag
  checked between steps, so it checkpoints first); outside it, e.g. while a
  dataset is generated or a step compiles, the default would end the process
  with no message (SIGTERM) or a traceback (SIGINT). Data generation runs in
  spawned processes, which do not inherit these handlers.
  """

  def handle(signum, frame):
    del frame
    raise Preempted(signum)

  old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield
  finally:
    for s, h in old.items():
      signal.signal(s, h)


def prepare_workdir(workdir):
  """Creates the workdir and proves it writable, or raises UserError."""
  path = os.path.abspath(os.path.expanduser(workdir))
  try:
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(path, f".write_probe_{os.getpid()}")
    with open(probe, "w") as f:
      f.write("x" * 4096)
    os.remove(probe)
  except OSError as e:
    raise UserError(f"--workdir {path}: cannot write there "
                    f"({e.strerror or e})") from e
  return path


def _first_difference(a, b, prefix=""):
  for k in sorted(set(a) | set(b)):
    va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
    if isinstance(va, dict) and isinstance(vb, dict):
      d = _first_difference(va, vb, f"{prefix}{k}.")
      if d:
        return d
    elif va != vb:
      return f"{prefix}{k} is {va!r} there, {vb!r} now"
  return None


def write_or_check_config(config, workdir):
  """Saves the resolved config, or checks it equals the one of the run that
  is already in the workdir (resuming another config would mix two runs)."""
  path = os.path.join(workdir, "config.json")
  resolved = json.loads(config.to_json_best_effort())
  if jax.process_index() != 0:
    return
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    diff = _first_difference(old, resolved)
    if diff:
      raise UserError(f"{path}: this workdir holds a run of another config "
                      f"({diff}); use a new --workdir")
    return
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(resolved, f, indent=2)
  os.replace(tmp, path)


def _fresh_meta(k):
  return {"best_val_loss": [None] * k, "best_step": [0] * k,
          "best_epoch": [0] * k, "bad_epochs": [0] * k,
          "stopped": [False] * k, "consecutive_skips": 0,
          "skipped_steps": 0, "epoch_sums": {}, "epoch_count": 0,
          "train_time_s": 0.0, "samples_seen": 0}


def member_table(config):
  """The members of a run (see mmjax.training.steps): numpy arrays [K] and
  the named groups (stages) of member indices."""
  m = config.members
  k = len(m.seeds)
  for key in ("mixup_alpha", "holdout_fold"):
    if len(m[key]) != k:
      raise UserError(f"members.{key} has {len(m[key])} entries, "
                      f"members.seeds has {k}")
  folds = np.asarray(m.holdout_fold, np.int32)
  if folds.max() >= config.kfold.num_folds:
    raise UserError(f"members.holdout_fold: fold {folds.max()} >= "
                    f"kfold.num_folds={config.kfold.num_folds}")
  groups = {g: tuple(v) for g, v in m.groups.items()}
  for g, idx in groups.items():
    if not idx or min(idx) < 0 or max(idx) >= k:
      raise UserError(f"members.groups.{g}: member indices must be in "
                      f"[0, {k})")
  table = {"seed": config.seed + np.asarray(m.seeds, np.int32),
           "fold": folds,
           "alpha": np.asarray(m.mixup_alpha, np.float32),
           "active": np.ones((k,), bool)}
  return table, groups


def assign_folds(labels, num_folds, seed):
  """Stratified k-fold ids [N] for the training examples."""
  rng = np.random.default_rng([seed, 0xF01D])
  folds = np.empty(len(labels), np.int32)
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    folds[rng.permutation(idx)] = np.arange(len(idx)) % num_folds
  return folds


class _Signals:
  """Turns SIGINT/SIGTERM into a flag checked between steps."""

  def __init__(self):
    self.received = None
    self._old = {}

  def __enter__(self):
    for s in (signal.SIGINT, signal.SIGTERM):
      self._old[s] = signal.signal(s, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.received = signum

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


class Trainer:
  """Holds the jitted steps and data of one run; `run()` trains to the end.

  A run trains K members at once (K = 1 for a single model): parameters and
  optimizer states stacked on a leading member axis, one vmapped step.
  """

  def __init__(self, config, workdir):
    self.config = config
    self.workdir = workdir
    self.task = config.get("task", "classification")
    self.main_metric = metrics_lib.MAIN_METRIC[self.task]
    # Config mistakes in the model or schedule surface before any data work.
    try:
      self.model = build_model(config.model)
      build_optimizer(config, 1)
      if config.loss.name not in losses.PER_SAMPLE:
        raise ValueError(f"loss.name: unknown loss '{config.loss.name}' "
                         f"(known: {', '.join(losses.PER_SAMPLE)})")
      if config.loss.get("diversity_mode", "seed") not in losses.DIVERSITY_MODES:
        raise ValueError(
            f"loss.diversity_mode: unknown '{config.loss.diversity_mode}' "
            f"(known: {', '.join(losses.DIVERSITY_MODES)})")
    except ValueError as e:
      raise UserError(str(e)) from e
    self.members, self.groups = member_table(config)
    self.k = len(self.members["seed"])
    self.mesh = sharding.make_mesh(config.get("member_parallel", 1))
    if self.k % self.mesh.shape["member"]:
      raise UserError(f"member_parallel={self.mesh.shape['member']} does not "
                      f"divide the {self.k} members")
    sharding.check_batch_size(config.batch_size, self.mesh)
    sharding.check_batch_size(config.eval_batch_size, self.mesh,
                              "eval_batch_size")
    self.sources = load_sources(config.dataset)
    budgets = config.dataset.budgets.to_dict()
    try:
      self.train = pipeline.PaddedSplit(self.sources["train"], budgets,
                                        "train")
      self.val = pipeline.PaddedSplit(self.sources["val"], budgets, "val")
    except ValueError as e:
      raise UserError(str(e)) from e
    max_train = config.dataset.get("max_train", 0)
    if max_train and max_train < self.train.size:  # Smaller studies.
      self.train.keep_subset(max_train, config.dataset.split_seed)
    if (self.members["fold"] >= 0).any():
      self.train.arrays["fold"] = assign_folds(
          self.train.labels, config.kfold.num_folds, config.dataset.split_seed)
    self.budgets = budgets
    self.steps_per_epoch = self.train.size // config.batch_size
    if self.steps_per_epoch == 0:
      raise UserError(f"batch_size={config.batch_size} is larger than the "
                      f"{self.train.size} training examples")
    self.total_steps = config.num_epochs * self.steps_per_epoch
    self.tx, self.schedule = build_optimizer(config, self.steps_per_epoch)
    num_classes = config.model.num_outputs
    msh = sharding.member_sharding(self.mesh)
    rep = sharding.replicated(self.mesh)
    bsh = sharding.batch_sharding(self.mesh)
    mixup = bool((self.members["alpha"] > 0).any())
    step = make_ensemble_train_step(self.model, self.tx, self.schedule,
                                    config.loss, num_classes, mixup)
    # A device-resident train split: per step the host sends the batch's
    # indices, not the batch (on an H200 the host-batch path fed the W1 step
    # 22k examples/s against the 56k it consumes; benchmarks/README.md).
    self.resident = None
    if config.dataset.get("device_resident", False) and _fits_on_device(
        sum(v.nbytes for v in self.train.arrays.values())):
      self.resident = sharding.put_replicated(self.train.arrays, self.mesh)
      step = gather_batch_then(step, bsh)  # (state, data, idx, members)
    else:
      step = functools.partial(_without_data, step)  # data is None
    self.train_step = jax.jit(step, in_shardings=(msh, rep, bsh, msh),
                              out_shardings=(msh, msh), donate_argnums=0)
    self.eval_step = jax.jit(
        make_ensemble_eval_step(self.model, config.loss, num_classes),
        in_shardings=(msh, msh, bsh), out_shardings=(msh, msh))
    tta = config.get("tta", None)
    self.tta_step = None
    if tta is not None and tta.passes:
      self.tta_step = jax.jit(
          make_ensemble_eval_step(self.model, config.loss, num_classes,
                                  tta_passes=tta.passes, tta_noise=tta.noise,
                                  tta_seed=config.seed),
          in_shardings=(msh, msh, bsh), out_shardings=(msh, msh))
    # Weight copies and per-member selections keep the member sharding, so
    # the eval step never sees a new layout (and never compiles twice).
    self._copy = jax.jit(lambda t: jax.tree.map(jnp.copy, t),
                         out_shardings=msh)
    self._select = jax.jit(
        lambda pick, new, old: jax.tree.map(
            lambda n, o: jnp.where(
                pick.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old),
        out_shardings=msh)
    init_batch = self._host_batch(self.train, np.arange(config.batch_size))
    self.init_state = jax.jit(
        jax.vmap(lambda s, b: create_state(self.model, self.tx, b, s),
                 in_axes=(0, None)),
        out_shardings=msh)(jnp.asarray(self.members["seed"]),
                           sharding.put_batch(init_batch, self.mesh))

  def _snapshot(self, state):
    """A copy of the weights: the train step donates (frees) the state's."""
    return self._copy({"params": state.params,
                       "batch_stats": state.batch_stats})

  def _host_batch(self, split, idx):
    return split.take(idx[sharding.process_slice(len(idx))])

  def _train_batches(self, start):
    c = self.config
    for step in range(start, self.total_steps):
      idx = pipeline.train_batch_indices(c.seed, step, self.train.size,
                                         c.batch_size)
      if self.resident is not None:
        yield sharding.put_indices(idx, self.mesh)
      else:
        yield sharding.put_batch(self._host_batch(self.train, idx), self.mesh)

  def predict(self, split, params, batch_stats, tta=False, desc=None):
    """Logits [K, N, C] and per-sample task losses [K, N] of every member.

    `desc`: show a progress bar with this label (extreme_boost's final
    evaluation took 35 min on 2 CPU cores).
    """
    step = self.tta_step if tta and self.tta_step else self.eval_step
    logits, losses_ = [], []
    batches = pipeline.eval_batch_indices(split.size,
                                          self.config.eval_batch_size)
    if desc is not None:
      batches = tqdm(batches, desc=desc, dynamic_ncols=True,
                     disable=jax.process_index() != 0)
    for idx in batches:
      batch = sharding.put_batch(self._host_batch(split, idx), self.mesh)
      lg, per = step(params, batch_stats, batch)
      logits.append(sharding.to_host(lg))
      losses_.append(sharding.to_host(per))
    return (np.concatenate(logits, axis=1)[:, :split.size],
            np.concatenate(losses_, axis=1)[:, :split.size])

  def _metrics(self, logits, labels, loss):
    if self.task == "classification":
      return metrics_lib.classification_metrics(logits, labels, loss)
    return metrics_lib.regression_metrics(logits[:, 0], labels, loss)

  def evaluate(self, split, params, batch_stats, tta=False):
    """Per-member metrics of `split` with the given weights (eval mode)."""
    logits, per = self.predict(split, params, batch_stats, tta)
    return [self._metrics(logits[i], split.labels, per[i].mean())
            for i in range(self.k)]

  def _member_table(self, meta):
    table = dict(self.members)
    table["active"] = ~np.asarray(meta["stopped"], bool)
    return jax.device_put(table, sharding.member_sharding(self.mesh))

  def run(self):
    """Trains from the latest checkpoint to the end; returns results."""
    c = self.config
    state = self.init_state
    best = self._snapshot(state)
    meta = _fresh_meta(self.k)
    ckpt = Checkpointer(self.workdir)
    resume = ckpt.latest_step()
    if resume is not None:
      try:
        state, best, meta = ckpt.restore(resume, state, best)
      except Exception as e:  # pylint: disable=broad-except
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(
            f"{ckpt.directory}: checkpoint {resume} does not fit this config's "
            f"model ({type(e).__name__}: {first[:200]})") from e
      logging.info("Resuming from step %d", resume)
    self._check_disk_space(state, best)
    log = logs.MetricsLog(self.workdir, resume,
                          enabled=jax.process_index() == 0)
    step = int(state.step[0])
    bar = tqdm(total=self.total_steps, initial=step, dynamic_ncols=True,
               desc="train", disable=jax.process_index() != 0)
    pending = []
    members = self._member_table(meta)
    t0 = time.time()
    samples0 = step * c.batch_size
    first = True
    try:
      with _Signals() as sig:
        batches = pipeline.prefetch(self._train_batches(step))
        while step < self.total_steps and not all(meta["stopped"]):
          state, m = self.train_step(state, self.resident, next(batches),
                                     members)
          pending.append(m)
          step += 1
          bound_run_ahead(pending, c.max_steps_in_flight)
          if c.max_steps_in_flight > 0:
            # All but the last max_steps_in_flight steps are finished now, so
            # the bar moves between metric flushes (log_every_steps apart:
            # the first 50 steps of the 45-member ablation row took 21 min on
            # 2 CPU cores, compilation included).
            bar.update(max(0, step - c.max_steps_in_flight - bar.n))
          if first:  # Compilation is timed on its own, not as throughput.
            jax.block_until_ready(state)
            meta["compile_s"] = meta.get("compile_s", 0.0) + time.time() - t0
            t0, samples0, first = time.time(), step * c.batch_size, False
          epoch_end = step % self.steps_per_epoch == 0
          scheduled = epoch_end or step % c.checkpoint_every_steps == 0
          if scheduled or step % c.log_every_steps == 0:
            self._flush(pending, meta, log, step, bar)
            pending = []
          if epoch_end:
            best = self._end_epoch(state, best, meta, log, step, bar)
            members = self._member_table(meta)
          # Read once, after the flush and evaluation above: those block on
          # the device, which is when a signal usually arrives on slow steps.
          stop = sig.received
          # Pending metrics are flushed before a save, so the epoch sums in
          # the checkpoint cover exactly the steps taken.
          if stop and pending:
            self._flush(pending, meta, log, step, bar)
            pending = []
          if scheduled or stop:
            meta["train_time_s"] += time.time() - t0
            meta["samples_seen"] += (step * c.batch_size) - samples0
            t0, samples0 = time.time(), step * c.batch_size
            ckpt.save(step, state, best, meta)
          if stop:
            raise Preempted(stop, step)
    finally:
      bar.close()
      log.close()
    meta["train_time_s"] += time.time() - t0
    meta["samples_seen"] += (step * c.batch_size) - samples0
    results = self._finish(state, best, meta, ckpt)
    ckpt.close()
    return results

  def _check_disk_space(self, state, best):
    """Stops before training if the workdir's disk cannot hold checkpoints:
    two kept plus one being written, each holding the state and the best
    weights."""
    size = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(
        (state, best)))
    need = 3 * size + (64 << 20)  # + logs, results, plots
    free = shutil.disk_usage(self.workdir).free
    if free < need:
      raise UserError(
          f"--workdir {self.workdir}: {free / 2**20:.0f} MiB free on its "
          f"disk, checkpoints of this run need about {need / 2**20:.0f} MiB; "
          "free some space or use another --workdir")

  def _flush(self, pending, meta, log, step, bar):
    """Brings the pending step metrics to the host, logs them, guards NaNs.

    Metrics are averaged over the members that are still training."""
    host = jax.device_get(pending)
    active = ~np.asarray(meta["stopped"], bool)
    for m in host:
      skipped = float(np.max(m["skipped"][active])) > 0
      meta["consecutive_skips"] = meta["consecutive_skips"] + 1 if skipped else 0
      meta["skipped_steps"] += int(skipped)
      if meta["consecutive_skips"] >= self.config.optimizer.max_nonfinite:
        raise UserError(
            f"training diverged: {meta['consecutive_skips']} consecutive steps "
            f"with a non-finite loss or gradient (up to step {step}); the last "
            "good checkpoint is kept in checkpoints/")
      for k, v in m.items():
        meta["epoch_sums"][k] = meta["epoch_sums"].get(k, 0.0) + float(
            np.mean(np.asarray(v)[active]))
      meta["epoch_count"] += 1
    last = {k: float(np.mean(np.asarray(v)[active]))
            for k, v in host[-1].items()}
    if self.k > 1:
      last["loss_members"] = np.asarray(host[-1]["loss"]).tolist()
    last["skipped_steps"] = meta["skipped_steps"]
    epoch = (step - 1) // self.steps_per_epoch
    log.write(step, epoch, "train", last)
    bar.update(step - bar.n)
    bar.set_postfix(epoch=epoch + 1, loss=f"{last['loss']:.4f}",
                    acc=f"{last['accuracy']:.3f}", refresh=False)

  def _end_epoch(self, state, best, meta, log, step, bar):
    """Validation, epoch logs, per-member early stopping; returns the best
    weights of every member."""
    es = self.config.early_stopping
    epoch = step // self.steps_per_epoch - 1
    n = max(meta["epoch_count"], 1)
    train_m = {k: v / n for k, v in meta["epoch_sums"].items()}
    meta["epoch_sums"], meta["epoch_count"] = {}, 0
    vals = self.evaluate(self.val, state.params, state.batch_stats)
    log.write(step, epoch, "train_epoch", train_m)
    improved = np.zeros((self.k,), bool)
    for i, val in enumerate(vals):
      if meta["stopped"][i]:
        continue
      prev = meta["best_val_loss"][i]
      if prev is None or val["loss"] < prev - es.min_delta:
        improved[i] = True
        meta["best_val_loss"][i] = val["loss"]
        meta["best_step"][i], meta["best_epoch"][i] = step, epoch
        meta["bad_epochs"][i] = 0
      else:
        meta["bad_epochs"][i] += 1
        if meta["bad_epochs"][i] >= es.patience:
          meta["stopped"][i] = True
    val = {k: float(np.mean([v[k] for v in vals])) for k in vals[0]}
    gap = train_m["accuracy"] - val.get("accuracy", 0.0)
    val["train_val_gap"] = gap
    if self.k > 1:
      val[f"{self.main_metric}_members"] = [v[self.main_metric] for v in vals]
      val["loss_members"] = [v["loss"] for v in vals]
    log.write(step, epoch, "val", val)
    if improved.any():
      best = self._select(jnp.asarray(improved), self._snapshot(state), best)
    who = "" if self.k == 1 else f" (mean of {self.k} members)"
    msg = (f"epoch {epoch + 1}: train loss {train_m['loss']:.4f} acc "
           f"{train_m['accuracy']:.4f} | val loss {val['loss']:.4f} "
           f"{self.main_metric} {val[self.main_metric]:.4f}{who}")
    if self.task == "classification":
      if gap > self.config.gap_warning:
        msg += f"  WARNING: train/val accuracy gap {gap:.3f} (overfitting?)"
      elif gap > self.config.gap_notice:
        msg += f"  note: train/val accuracy gap {gap:.3f}"
    newly = [i for i in range(self.k) if meta["stopped"][i] and
             meta["bad_epochs"][i] == es.patience]
    for i in newly:
      meta["bad_epochs"][i] += 1  # Reported once.
      msg += (f"  early stop{'' if self.k == 1 else f' member {i}'}: no "
              f"val-loss gain for {es.patience} epochs, best epoch "
              f"{meta['best_epoch'][i] + 1}")
    if jax.process_index() == 0:
      bar.write(msg)
    return best

  def _finish(self, state, best, meta, ckpt):
    """Restores the best weights, evaluates val/test once, writes results:
    every member, every group of members (stage) by averaged logits, and the
    stage that validation picks."""
    c = self.config
    if c.early_stopping.restore_best:
      state = state.replace(params=best["params"],
                            batch_stats=best["batch_stats"])
    params, batch_stats = state.params, state.batch_stats
    try:
      test = pipeline.PaddedSplit(self.sources["test"], self.budgets, "test")
    except ValueError as e:
      raise UserError(str(e)) from e
    tta = self.tta_step is not None
    t0 = time.time()
    how = f"{c.tta.passes} TTA passes" if tta else "plain"
    out = {s: self.predict(split, params, batch_stats, tta,
                           desc=f"final eval: {s} ({how})")
           for s, split in (("val", self.val), ("test", test),
                            ("train", self.train))}
    labels = {"val": self.val.labels, "test": test.labels,
              "train": self.train.labels}
    # With TTA, the plain test predictions too, so its gain can be measured.
    plain = (self.predict(test, params, batch_stats, False,
                          desc="final eval: test (plain)") if tta else None)
    eval_s = time.time() - t0  # Host arrays: every pass has finished.
    member_results = []
    for i in range(self.k):
      r = {s: self._metrics(out[s][0][i], labels[s], out[s][1][i].mean())
           for s in out}
      r.update(seed=int(self.members["seed"][i]),
               holdout_fold=int(self.members["fold"][i]),
               mixup_alpha=float(self.members["alpha"][i]),
               best_step=int(meta["best_step"][i]),
               best_epoch=int(meta["best_epoch"][i]) + 1)
      if plain is not None:
        r["test_no_tta"] = self._metrics(plain[0][i], labels["test"],
                                         plain[1][i].mean())
      if r["holdout_fold"] >= 0:  # The k-fold estimate: its own fold only.
        sel = self.train.arrays["fold"] == r["holdout_fold"]
        r["holdout"] = self._metrics(out["train"][0][i][sel],
                                     labels["train"][sel],
                                     out["train"][1][i][sel].mean())
      member_results.append(r)
    groups = dict(self.groups)
    if len(groups) > 1 or self.k > 1:
      groups.setdefault("super_ensemble", tuple(range(self.k)))
    stages = {}
    for g, idx in groups.items():
      stages[g] = {s: self._metrics(out[s][0][list(idx)].mean(0), labels[s],
                                    out[s][1][list(idx)].mean())
                   for s in ("val", "test", "train")}
      stages[g]["members"] = list(idx)
      if plain is not None:
        stages[g]["test_no_tta"] = self._metrics(
            plain[0][list(idx)].mean(0), labels["test"],
            plain[1][list(idx)].mean())
    best_stage = max(stages, key=lambda g: stages[g]["val"][self.main_metric])
    chosen = stages[best_stage]
    results = {
        "test": chosen["test"], "val": chosen["val"], "train": chosen["train"],
        "best_stage": best_stage,
        "best_stage_rule": f"highest val {self.main_metric}",
        "best_step": int(max(meta["best_step"])),
        "best_epoch": int(max(meta["best_epoch"])) + 1,
        "epochs_run": int(state.step[0]) // self.steps_per_epoch,
        "stopped_early": bool(all(meta["stopped"])),
        "skipped_steps": int(meta["skipped_steps"]),
        "train_time_s": round(meta["train_time_s"], 2),
        "compile_s": round(meta.get("compile_s", 0.0), 2),
        # The evaluation above: val, test and train (with TTA if on), plus
        # the plain test pass; wall time, its compilation included.
        "final_eval_s": round(eval_s, 2),
        "samples_per_s": round(meta["samples_seen"] /
                               max(meta["train_time_s"], 1e-9), 1),
        "members_trained": self.k,
        "tta_passes": c.tta.passes if tta else 0,
        "devices": jax.device_count(),
        "processes": jax.process_count(),
    }
    if self.task == "classification":
      results["train_val_gap"] = (results["train"]["accuracy"] -
                                  results["val"]["accuracy"])
    results["stages"] = stages
    results["members"] = member_results
    ckpt.save(int(state.step[0]) + 1, state, best, {**meta, "final": True})
    if jax.process_index() == 0:
      tmp = os.path.join(self.workdir, "results.json.tmp")
      with open(tmp, "w") as f:
        json.dump(_finite(results), f, indent=2)
      os.replace(tmp, os.path.join(self.workdir, "results.json"))
      logs.plot_curves(self.workdir, self.main_metric)
    return results


def _fits_on_device(nbytes, fraction=0.25):
  """Whether a split of `nbytes` may live on each device: at most `fraction`
  of the first device's memory where JAX reports it (not on CPU)."""
  stats = jax.local_devices()[0].memory_stats() or {}
  limit = stats.get("bytes_limit")
  if limit is None or nbytes <= fraction * limit:
    return True
  logging.warning("dataset.device_resident: the train split (%d MiB) is over "
                  "%d%% of device memory; sending host batches instead",
                  nbytes >> 20, round(100 * fraction))
  return False


def _without_data(step, state, data, batch, members):
  """The host-batch train step in the device-resident step's signature."""
  del data
  return step(state, batch, members)


def _finite(tree):
  """JSON has no NaN: undefined metrics become null."""
  if isinstance(tree, dict):
    return {k: _finite(v) for k, v in tree.items()}
  if isinstance(tree, float) and not math.isfinite(tree):
    return None
  return tree


def train_and_evaluate(config, workdir):
  """Runs (or resumes, or reports) the run of `config` in `workdir`."""
  workdir = prepare_workdir(workdir)
  results_path = os.path.join(workdir, "results.json")
  if os.path.exists(results_path):
    write_or_check_config(config, workdir)
    with open(results_path) as f:
      return json.load(f), True
  write_or_check_config(config, workdir)
  return Trainer(config, workdir).run(), False


def final_params(workdir):
  """The parameters in the run's last checkpoint, as a nested numpy dict.

  Restores onto this process's first device, whatever topology wrote it.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  mngr = ocp.CheckpointManager(directory)
  step = mngr.latest_step()
  mngr.close()
  path = os.path.join(directory, str(step), "state")
  ckptr = ocp.StandardCheckpointer()
  meta = ckptr.metadata(path).item_metadata
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
      dict(meta))
  state = ckptr.restore(path, target)
  return jax.tree.map(np.asarray, state["params"]), step
