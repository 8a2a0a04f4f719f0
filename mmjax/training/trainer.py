"""Fits one recipe in one workdir: the epoch loop with evaluation, early
stopping, checkpoints, logs and the final results.

Everything that decides the trained parameters (init, data order, dropout
rngs) is a function of (config.seed, step), and the host-side bookkeeping
travels in the checkpoint, so a run resumed from any checkpoint ends with
exactly the parameters of an uninterrupted run.
"""

import json
import math
import os
import signal
import time

import jax
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
from mmjax.training.steps import create_state, make_eval_step, make_train_step


class Preempted(Exception):
  """Raised after a checkpoint was saved on SIGINT/SIGTERM."""

  def __init__(self, signum, step):
    super().__init__(f"stopped by signal {signum} at step {step}; checkpoint "
                     "saved, re-run the same command to resume")
    self.signum = signum


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


def _fresh_meta():
  return {"best_val_loss": None, "best_step": 0, "best_epoch": 0,
          "bad_epochs": 0, "stopped_early": False, "consecutive_skips": 0,
          "skipped_steps": 0, "epoch_sums": {}, "epoch_count": 0,
          "train_time_s": 0.0, "samples_seen": 0}


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
  """Holds the jitted steps and data of one run; `run()` trains to the end."""

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
    except ValueError as e:
      raise UserError(str(e)) from e
    self.mesh = sharding.make_mesh()
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
    self.budgets = budgets
    self.steps_per_epoch = self.train.size // config.batch_size
    if self.steps_per_epoch == 0:
      raise UserError(f"batch_size={config.batch_size} is larger than the "
                      f"{self.train.size} training examples")
    self.total_steps = config.num_epochs * self.steps_per_epoch
    self.tx, self.schedule = build_optimizer(config, self.steps_per_epoch)
    num_classes = config.model.num_outputs
    rep = sharding.replicated(self.mesh)
    bsh = sharding.batch_sharding(self.mesh)
    self.train_step = jax.jit(
        make_train_step(self.model, self.tx, self.schedule, config.loss,
                        num_classes, config.seed),
        in_shardings=(rep, bsh), out_shardings=(rep, rep), donate_argnums=0)
    self.eval_step = jax.jit(make_eval_step(self.model, config.loss,
                                            num_classes),
                             in_shardings=(rep, rep, bsh),
                             out_shardings=(rep, rep))
    init_batch = self._host_batch(self.train, np.arange(config.batch_size))
    self.init_state = jax.jit(
        lambda b: create_state(self.model, self.tx, b, config.seed),
        out_shardings=rep)(sharding.put_batch(init_batch, self.mesh))

  def _host_batch(self, split, idx):
    return split.take(idx[sharding.process_slice(len(idx))])

  def _train_batches(self, start):
    c = self.config
    for step in range(start, self.total_steps):
      idx = pipeline.train_batch_indices(c.seed, step, self.train.size,
                                         c.batch_size)
      yield sharding.put_batch(self._host_batch(self.train, idx), self.mesh)

  def evaluate(self, split, params, batch_stats):
    """Metrics of `split` with the given weights (eval mode)."""
    logits, losses = [], []
    for idx in pipeline.eval_batch_indices(split.size,
                                           self.config.eval_batch_size):
      batch = sharding.put_batch(self._host_batch(split, idx), self.mesh)
      lg, per = self.eval_step(params, batch_stats, batch)
      logits.append(sharding.to_host(lg))
      losses.append(sharding.to_host(per))
    logits = np.concatenate(logits)[:split.size]
    loss = float(np.concatenate(losses)[:split.size].mean())
    if self.task == "classification":
      return metrics_lib.classification_metrics(logits, split.labels, loss)
    return metrics_lib.regression_metrics(logits[:, 0], split.labels, loss)

  def run(self):
    """Trains from the latest checkpoint to the end; returns results."""
    c = self.config
    state = self.init_state
    best = _snapshot(state)
    meta = _fresh_meta()
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
    log = logs.MetricsLog(self.workdir, resume,
                          enabled=jax.process_index() == 0)
    step = int(state.step)
    bar = tqdm(total=self.total_steps, initial=step, dynamic_ncols=True,
               desc="train", disable=jax.process_index() != 0)
    pending = []
    t0 = time.time()
    samples0 = step * c.batch_size
    first = True
    try:
      with _Signals() as sig:
        batches = pipeline.prefetch(self._train_batches(step))
        while step < self.total_steps and not meta["stopped_early"]:
          state, m = self.train_step(state, next(batches))
          pending.append(m)
          step += 1
          if first:  # Compilation is timed on its own, not as throughput.
            jax.block_until_ready(state)
            meta["compile_s"] = meta.get("compile_s", 0.0) + time.time() - t0
            t0, samples0, first = time.time(), step * c.batch_size, False
          epoch_end = step % self.steps_per_epoch == 0
          save = (epoch_end or step % c.checkpoint_every_steps == 0 or
                  sig.received)
          # Pending metrics are flushed before a save, so the epoch sums in
          # the checkpoint cover exactly the steps taken.
          if save or step % c.log_every_steps == 0:
            self._flush(pending, meta, log, step, bar)
            pending = []
          if epoch_end:
            best = self._end_epoch(state, best, meta, log, step, bar)
          if save:
            meta["train_time_s"] += time.time() - t0
            meta["samples_seen"] += (step * c.batch_size) - samples0
            t0, samples0 = time.time(), step * c.batch_size
            ckpt.save(step, state, best, meta)
          if sig.received:
            raise Preempted(sig.received, step)
    finally:
      bar.close()
      log.close()
    meta["train_time_s"] += time.time() - t0
    meta["samples_seen"] += (step * c.batch_size) - samples0
    results = self._finish(state, best, meta, ckpt)
    ckpt.close()
    return results

  def _flush(self, pending, meta, log, step, bar):
    """Brings the pending step metrics to the host, logs them, guards NaNs."""
    host = jax.device_get(pending)
    for m in host:
      skipped = float(m["skipped"]) > 0
      meta["consecutive_skips"] = meta["consecutive_skips"] + 1 if skipped else 0
      meta["skipped_steps"] += int(skipped)
      if meta["consecutive_skips"] >= self.config.optimizer.max_nonfinite:
        raise UserError(
            f"training diverged: {meta['consecutive_skips']} consecutive steps "
            f"with a non-finite loss or gradient (up to step {step}); the last "
            "good checkpoint is kept in checkpoints/")
      for k, v in m.items():
        meta["epoch_sums"][k] = meta["epoch_sums"].get(k, 0.0) + float(v)
      meta["epoch_count"] += 1
    last = {k: float(v) for k, v in host[-1].items()}
    last["skipped_steps"] = meta["skipped_steps"]
    epoch = (step - 1) // self.steps_per_epoch
    log.write(step, epoch, "train", last)
    bar.update(len(host))
    bar.set_postfix(epoch=epoch + 1, loss=f"{last['loss']:.4f}",
                    acc=f"{last['accuracy']:.3f}", refresh=False)

  def _end_epoch(self, state, best, meta, log, step, bar):
    """Validation, epoch logs, early stopping; returns the best weights."""
    es = self.config.early_stopping
    epoch = step // self.steps_per_epoch - 1
    n = max(meta["epoch_count"], 1)
    train_m = {k: v / n for k, v in meta["epoch_sums"].items()}
    meta["epoch_sums"], meta["epoch_count"] = {}, 0
    val = self.evaluate(self.val, state.params, state.batch_stats)
    log.write(step, epoch, "train_epoch", train_m)
    gap = train_m["accuracy"] - val.get("accuracy", 0.0)
    val["train_val_gap"] = gap
    log.write(step, epoch, "val", val)
    prev = meta["best_val_loss"]
    if prev is None or val["loss"] < prev - es.min_delta:
      meta.update(best_val_loss=val["loss"], best_step=step, best_epoch=epoch,
                  bad_epochs=0)
      best = _snapshot(state)
    else:
      meta["bad_epochs"] += 1
      if meta["bad_epochs"] >= es.patience:
        meta["stopped_early"] = True
    msg = (f"epoch {epoch + 1}: train loss {train_m['loss']:.4f} acc "
           f"{train_m['accuracy']:.4f} | val loss {val['loss']:.4f} "
           f"{self.main_metric} {val[self.main_metric]:.4f}")
    if self.task == "classification":
      if gap > self.config.gap_warning:
        msg += f"  WARNING: train/val accuracy gap {gap:.3f} (overfitting?)"
      elif gap > self.config.gap_notice:
        msg += f"  note: train/val accuracy gap {gap:.3f}"
    if meta["stopped_early"]:
      msg += (f"  early stop: no val-loss gain for {es.patience} epochs, "
              f"best epoch {meta['best_epoch'] + 1}")
    if jax.process_index() == 0:
      bar.write(msg)
    return best

  def _finish(self, state, best, meta, ckpt):
    """Restores the best weights, evaluates val/test once, writes results."""
    c = self.config
    if c.early_stopping.restore_best:
      params, batch_stats = best["params"], best["batch_stats"]
      state = state.replace(params=params, batch_stats=batch_stats)
    else:
      params, batch_stats = state.params, state.batch_stats
    try:
      test = pipeline.PaddedSplit(self.sources["test"], self.budgets, "test")
    except ValueError as e:
      raise UserError(str(e)) from e
    results = {
        "test": self.evaluate(test, params, batch_stats),
        "val": self.evaluate(self.val, params, batch_stats),
        "train": self.evaluate(self.train, params, batch_stats),
        "best_step": int(meta["best_step"]),
        "best_epoch": int(meta["best_epoch"]) + 1,
        "epochs_run": int(state.step) // self.steps_per_epoch,
        "stopped_early": bool(meta["stopped_early"]),
        "skipped_steps": int(meta["skipped_steps"]),
        "train_time_s": round(meta["train_time_s"], 2),
        "compile_s": round(meta.get("compile_s", 0.0), 2),
        "samples_per_s": round(meta["samples_seen"] /
                               max(meta["train_time_s"], 1e-9), 1),
        "devices": jax.device_count(),
        "processes": jax.process_count(),
    }
    if self.task == "classification":
      results["train_val_gap"] = (results["train"]["accuracy"] -
                                  results["val"]["accuracy"])
    if jax.process_index() == 0:
      ckpt.save(int(state.step) + 1, state, best, {**meta, "final": True})
      tmp = os.path.join(self.workdir, "results.json.tmp")
      with open(tmp, "w") as f:
        json.dump(_finite(results), f, indent=2)
      os.replace(tmp, os.path.join(self.workdir, "results.json"))
      logs.plot_curves(self.workdir, self.main_metric)
    else:
      ckpt.save(int(state.step) + 1, state, best, {**meta, "final": True})
    return results


def _snapshot(state):
  """A copy of the weights: the train step donates (frees) the state's."""
  return jax.tree.map(lambda x: x.copy(), {"params": state.params,
                                           "batch_stats": state.batch_stats})


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
