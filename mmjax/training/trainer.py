"""Fits one recipe in one workdir: wires the jitted steps, runs the epoch
loop with validation, early stopping and checkpoints, and writes results.

Everything that decides the trained parameters (init, data order, dropout
rngs) is a function of (config.seed, step), and the host-side bookkeeping
travels in the checkpoint, so a run resumed from any checkpoint ends with
exactly the parameters of an uninterrupted run.
"""

import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from tqdm import tqdm

from mmjax.data import pipeline
from mmjax.data.datasets import load_dataset
from mmjax.errors import UserError
from mmjax.models.multimodal import build_model
from mmjax.tasks import build_task
from mmjax.training import early_stopping
from mmjax.training import evaluation
from mmjax.training import logs
from mmjax.training import members as members_lib
from mmjax.training import monitor as monitor_lib
from mmjax.training import sharding
from mmjax.training import steps as steps_lib
from mmjax.training import workdir as workdir_lib
from mmjax.training.checkpoint import Checkpointer
from mmjax.training.monitor import OverfittingMonitor
from mmjax.training.optim import build_optimizer
from mmjax.training.optim import check_lr_mults
from mmjax.training.preemption import bound_run_ahead
from mmjax.training.preemption import Preempted
from mmjax.training.preemption import SignalFlag
from mmjax.training.schedules import build_value_schedule
from mmjax.training.steps import create_state
from mmjax.training.steps import gather_batch_then
from mmjax.training.steps import make_ensemble_eval_step
from mmjax.training.steps import make_ensemble_train_step


def _fresh_meta(k):
  return {"early_stopping": [None] * k, "consecutive_skips": 0,
          "skipped_steps": 0, "epoch_sums": {}, "epoch_count": 0,
          "train_time_s": 0.0, "samples_seen": 0}


class Trainer:
  """Holds the jitted steps and data of one run; `run()` trains to the end.

  A run trains K members at once (K = 1 for a single model): parameters and
  optimizer states stacked on a leading member axis, one vmapped step.
  """

  def __init__(self, config, workdir):
    self.config = config
    self.workdir = workdir
    # Config mistakes in the model, task or schedule surface before any
    # data work.
    try:
      self.task = build_task(config)
      build_model(config.model)
      build_optimizer(config, 1)
      self.smoothing = _smoothing(config, 1)
      self.stoppers = early_stopping.for_members(config.early_stopping, 1)
      if config.get("member_loop", "vmap") not in steps_lib.MEMBER_LOOPS:
        steps_lib.over_members(None, (0,), config.member_loop)  # Raises.
    except ValueError as e:
      raise UserError(str(e)) from e
    self.es_metric = config.early_stopping.get("metric", "loss")
    self.members, self.groups = members_lib.member_table(config)
    self.k = len(self.members["seed"])
    self.mesh = sharding.make_mesh(config.get("member_parallel", 1))
    if self.k % self.mesh.shape["member"]:
      raise UserError(f"member_parallel={self.mesh.shape['member']} does not "
                      f"divide the {self.k} members")
    sharding.check_batch_size(config.batch_size, self.mesh)
    sharding.check_batch_size(config.eval_batch_size, self.mesh,
                              "eval_batch_size")
    self._load_data()
    self.steps_per_epoch = self.train.size // config.batch_size
    if self.steps_per_epoch == 0:
      raise UserError(f"batch_size={config.batch_size} is larger than the "
                      f"{self.train.size} training examples")
    self.total_steps = config.num_epochs * self.steps_per_epoch
    self.tx, self.schedule = build_optimizer(config, self.steps_per_epoch)
    self.smoothing = _smoothing(config, self.steps_per_epoch)
    self._build_steps()

  def _load_data(self):
    c = self.config
    dataset = load_dataset(c.dataset)
    self.spec = dataset.spec
    if self.spec.task != self.task.name:
      raise UserError(f"task: '{self.task.name}', but dataset "
                      f"{c.dataset.name} holds {self.spec.task} labels")
    try:  # Checked before any split is loaded: a bad key stops at once.
      build_model(c.model, self.spec)
    except ValueError as e:
      raise UserError(str(e)) from e
    self.sources = dataset.sources
    self.budgets = c.dataset.get("budgets", {})
    self.budgets = self.budgets.to_dict() if hasattr(
        self.budgets, "to_dict") else dict(self.budgets)
    self.train = self._split("train")
    self.val = self._split("val")
    if (self.members["subset"] > 0).any():
      levels = getattr(self.sources["train"], "levels", None)
      if levels is None:
        raise UserError(f"members.subset: dataset {c.dataset.name} gives no "
                        "per-example levels to take subsets of")
      self.train.arrays["subset"] = np.asarray(levels, np.int32)
    max_train = c.dataset.get("max_train", 0)
    if max_train and max_train < self.train.size:  # Smaller studies.
      self.train.keep_subset(max_train, c.dataset.split_seed)
    if (self.members["fold"] >= 0).any():
      self.train.arrays["fold"] = members_lib.fold_ids(
          self.task, self.train.labels, c)
    self.model = build_model(c.model, self.spec, targets=self.train.labels)

  def _split(self, name):
    try:
      return pipeline.PaddedSplit(self.sources[name], self.spec, self.budgets,
                                  name)
    except ValueError as e:
      raise UserError(str(e)) from e

  def _build_steps(self):
    c = self.config
    msh = sharding.member_sharding(self.mesh)
    rep = sharding.replicated(self.mesh)
    bsh = sharding.batch_sharding(self.mesh)
    mixup = bool((self.members["alpha"] > 0).any())
    loop = c.get("member_loop", "vmap")
    step = make_ensemble_train_step(self.model, self.tx, self.schedule,
                                    self.task, c.loss, mixup, self.smoothing,
                                    loop)
    # A device-resident train split: per step the host sends the batch's
    # indices, not the batch (benchmarks/README.md, input pipeline).
    self.resident = None
    if c.dataset.get("device_resident", False) and _fits_on_device(
        sum(v.nbytes for v in self.train.arrays.values())):
      self.resident = sharding.put_replicated(self.train.arrays, self.mesh)
      step = gather_batch_then(step, bsh)  # (state, data, idx, members)
    else:
      step = functools.partial(_without_data, step)  # data is None
    self.train_step = jax.jit(step, in_shardings=(msh, rep, bsh, msh),
                              out_shardings=(msh, msh), donate_argnums=0)
    eval_shardings = dict(in_shardings=(msh, msh, bsh, msh, rep),
                          out_shardings=(msh, msh))
    self.eval_step = jax.jit(
        make_ensemble_eval_step(self.model, self.task, loop),
        **eval_shardings)
    tta = c.get("tta", None)
    self.tta_step = None
    if tta is not None and tta.passes:
      self.tta_step = jax.jit(
          make_ensemble_eval_step(self.model, self.task, loop,
                                  tta_passes=tta.passes, tta_noise=tta.noise,
                                  tta_seed=c.seed), **eval_shardings)
    self.evaluator = evaluation.Evaluator(
        self.task, self.mesh, self.eval_step, self.tta_step,
        c.eval_batch_size, self.members["seed"])
    self.monitor = None
    if c.get("monitor", {}).get("train_subset", 0):
      self.monitor = OverfittingMonitor(
          self.evaluator, self.train.subset(c.monitor.train_subset,
                                            c.dataset.split_seed),
          self.members, c.monitor)
    # Weight copies and per-member selections keep the member sharding, so
    # the eval step never sees a new layout (and never compiles twice).
    self._copy = jax.jit(lambda t: jax.tree.map(jnp.copy, t),
                         out_shardings=msh)
    self._select = jax.jit(
        lambda pick, new, old: jax.tree.map(
            lambda n, o: jnp.where(
                pick.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old),
        out_shardings=msh)
    init_batch = self.train.take(np.arange(c.batch_size)[
        sharding.process_slice(c.batch_size)])
    if c.optimizer.get("lr_mults", ()):
      shapes = jax.eval_shape(lambda b: self.model.init(
          jax.random.key(0), b, train=False), init_batch)["params"]
      try:
        check_lr_mults(c, shapes)
      except ValueError as e:
        raise UserError(str(e)) from e
    self.init_state = jax.jit(
        jax.vmap(lambda s, b: create_state(self.model, self.tx, b, s),
                 in_axes=(0, None)),
        out_shardings=msh)(jnp.asarray(self.members["seed"]),
                           sharding.put_batch(init_batch, self.mesh))

  def _snapshot(self, state):
    """A copy of the weights: the train step donates (frees) the state's."""
    return self._copy({"params": state.params,
                       "batch_stats": state.batch_stats})

  def _train_batches(self, start):
    c = self.config
    for step in range(start, self.total_steps):
      idx = pipeline.train_batch_indices(c.seed, step, self.train.size,
                                         c.batch_size)
      if self.resident is not None:
        yield sharding.put_indices(idx, self.mesh)
      else:
        yield sharding.put_batch(
            self.train.take(idx[sharding.process_slice(len(idx))]),
            self.mesh)

  def _member_table(self):
    table = dict(self.members)
    table["active"] = ~np.asarray([s.stopped for s in self.stoppers], bool)
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
      state, best, meta = ckpt.restore(resume, state, best)
      logging.info("Resuming from step %d", resume)
    self.stoppers = early_stopping.for_members(c.early_stopping, self.k,
                                               meta["early_stopping"])
    workdir_lib.check_disk_space(self.workdir, (state, best))
    log = logs.MetricsLog(self.workdir, resume,
                          enabled=jax.process_index() == 0)
    step = int(state.step[0])
    bar = tqdm(total=self.total_steps, initial=step, dynamic_ncols=True,
               desc="train", disable=jax.process_index() != 0)
    pending = []
    members = self._member_table()
    t0 = time.time()
    samples0 = step * c.batch_size
    first = True
    batches = pipeline.prefetch(self._train_batches(step))
    try:
      with SignalFlag() as sig:
        while step < self.total_steps and not all(
            s.stopped for s in self.stoppers):
          state, m = self.train_step(state, self.resident, next(batches),
                                     members)
          pending.append(m)
          step += 1
          bound_run_ahead(pending, c.max_steps_in_flight)
          if c.max_steps_in_flight > 0:
            # All but the last max_steps_in_flight steps are finished now, so
            # the bar moves between metric flushes.
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
            members = self._member_table()
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
            self._save(ckpt, step, state, best, meta)
          if stop:
            raise Preempted(stop, step)
    finally:
      batches.close()  # Stops the prefetch thread (and what it holds).
      bar.close()
      log.close()
    meta["train_time_s"] += time.time() - t0
    meta["samples_seen"] += (step * c.batch_size) - samples0
    results = self._finish(state, best, meta, ckpt)
    ckpt.close()
    return results

  def _save(self, ckpt, step, state, best, meta):
    meta["early_stopping"] = [s.state for s in self.stoppers]
    ckpt.save(step, state, best, meta)

  def _flush(self, pending, meta, log, step, bar):
    """Brings the pending step metrics to the host, logs them, guards NaNs.

    Metrics are averaged over the members that are still training."""
    host = jax.device_get(pending)
    active = ~np.asarray([s.stopped for s in self.stoppers], bool)
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
    tm = self.task.train_metric
    bar.set_postfix({"epoch": epoch + 1, "loss": f"{last['loss']:.4f}",
                     tm: f"{last[tm]:.3f}"}, refresh=False)

  def _end_epoch(self, state, best, meta, log, step, bar):
    """Validation, the train/val gap, epoch logs and per-member early
    stopping; returns the best weights of every member."""
    epoch = step // self.steps_per_epoch - 1
    n = max(meta["epoch_count"], 1)
    train_m = {k: v / n for k, v in meta["epoch_sums"].items()}
    meta["epoch_sums"], meta["epoch_count"] = {}, 0
    vals = self.evaluator.member_metrics(self.val, state.params,
                                         state.batch_stats)
    log.write(step, epoch, "train_epoch", train_m)
    improved = np.zeros((self.k,), bool)
    newly = []
    for i, (val, stopper) in enumerate(zip(vals, self.stoppers)):
      if stopper.stopped:
        continue
      if self.es_metric not in val:
        raise UserError(f"early_stopping.metric: '{self.es_metric}' is not "
                        f"a {self.task.name} metric (known: "
                        f"{', '.join(sorted(val))})")
      improved[i], stop = stopper.update(val[self.es_metric], step, epoch)
      if stop:
        newly.append(i)
    main = self.task.main_metric
    val = {k: float(np.mean([v[k] for v in vals])) for k in vals[0]}
    msg = (f"epoch {epoch + 1}: train loss {train_m['loss']:.4f} | val loss "
           f"{val['loss']:.4f} {main} {val[main]:.4f}")
    if self.monitor is not None:
      active = [not st.stopped for st in self.stoppers]
      row, note = self.monitor.check(state.params, state.batch_stats, val,
                                     active)
      log.write(step, epoch, "train_eval", row)
      msg += note
    if self.k > 1:
      val[f"{main}_members"] = [v[main] for v in vals]
      val["loss_members"] = [v["loss"] for v in vals]
      msg += f" (mean of {self.k} members)"
    log.write(step, epoch, "val", val)
    if improved.any():
      best = self._select(jnp.asarray(improved), self._snapshot(state), best)
    es = self.config.early_stopping
    for i in newly:
      s = self.stoppers[i].state
      msg += (f"  early stop{'' if self.k == 1 else f' member {i}'}: no "
              f"val {self.es_metric} gain for {es.patience} epochs, best "
              f"epoch {s['best_epoch'] + 1}")
    if jax.process_index() == 0:
      bar.write(msg)
    return best

  def _finish(self, state, best, meta, ckpt):
    """Evaluates the best (or last) weights once, writes results: every
    member, every group of members (stage) by combined outputs, and the
    stage that validation picks. The last checkpoint keeps the last state."""
    c = self.config
    weights = best if c.early_stopping.restore_best else {
        "params": state.params, "batch_stats": state.batch_stats}
    self.evaluator.params = weights["params"]
    self.evaluator.batch_stats = weights["batch_stats"]
    splits = {"val": self.val, "test": self._split("test"),
              "train": self.train}
    member_info = dict(self.members)
    member_info["best_step"] = [s.state["best_step"] for s in self.stoppers]
    member_info["best_epoch"] = [s.state["best_epoch"] for s in self.stoppers]
    es = c.early_stopping
    selection = (es.get("stage_metric", self.task.main_metric),
                 es.get("stage_mode", self.task.main_mode))
    results = evaluation.final_results(
        self.evaluator, splits, member_info,
        members_lib.reported_groups(self.groups, self.k), selection,
        c.tta.passes if self.tta_step is not None else 0,
        self.spec.metric_groups,
        predictions_path=(os.path.join(self.workdir, "predictions.npz")
                          if jax.process_index() == 0 else None))
    results.update({
        "task": self.task.name,
        "best_step": int(max(member_info["best_step"])),
        "best_epoch": int(max(member_info["best_epoch"])) + 1,
        "epochs_run": int(state.step[0]) // self.steps_per_epoch,
        "stopped_early": all(s.stopped for s in self.stoppers),
        "skipped_steps": int(meta["skipped_steps"]),
        "train_time_s": round(meta["train_time_s"], 2),
        "compile_s": round(meta.get("compile_s", 0.0), 2),
        "samples_per_s": round(meta["samples_seen"] /
                               max(meta["train_time_s"], 1e-9), 1),
        "members_trained": self.k,
        "devices": jax.device_count(),
        "processes": jax.process_count(),
    })
    if self.monitor is not None and jax.process_index() == 0:
      # The primary process writes the log, so only it can read it back.
      results["overfitting"] = monitor_lib.gap_report(
          logs.read_metrics(self.workdir), c.monitor.gap_notice,
          c.monitor.gap_warning)
    self._save(ckpt, int(state.step[0]) + 1, state, best,
               {**meta, "final": True})
    if jax.process_index() == 0:
      workdir_lib.write_json(os.path.join(self.workdir, "results.json"),
                             results)
      logs.plot_curves(self.workdir, self.task.main_metric)
    return results


def _smoothing(config, steps_per_epoch):
  """loss.label_smoothing: a number, or a schedule dict(start, end, shape)
  over the epochs."""
  spec = config.loss.get("label_smoothing", 0.0)
  if isinstance(spec, (int, float)):
    return float(spec)
  return build_value_schedule(spec, config.num_epochs, steps_per_epoch,
                              name="loss.label_smoothing")


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


def train_and_evaluate(config, workdir):
  """Runs (or resumes, or reports) the run of `config` in `workdir`."""
  workdir = workdir_lib.prepare_workdir(workdir)
  results_path = os.path.join(workdir, "results.json")
  workdir_lib.write_or_check_config(config, workdir)
  if os.path.exists(results_path):
    with open(results_path) as f:
      return json.load(f), True
  return Trainer(config, workdir).run(), False
