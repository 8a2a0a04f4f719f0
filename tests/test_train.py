"""End-to-end tests of training on the `:smoke` config: outputs, a single
compilation, exact resume after SIGTERM and SIGKILL, device-count
equivalence, workdir safety and non-finite guards."""

import json
import os
import signal
import subprocess
import time

import jax
import jax.numpy as jnp
import pytest

from conftest import ROOT, assert_same_trees, launch_cmd, run_launch
from configs.optimized import get_config
from mmjax.errors import UserError
from mmjax.training import checkpoint
from mmjax.training import preemption
from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib


def _assert_same_params(a, b, exact=True, atol=0.0):
  pa, _ = checkpoint.final_params(a)
  pb, _ = checkpoint.final_params(b)
  assert_same_trees(pa, pb, atol=None if exact else atol)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """One uninterrupted smoke run, through the command line."""
  workdir = tmp_path_factory.mktemp("reference")
  proc = run_launch(workdir)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


def test_run_writes_everything(reference):
  names = set(os.listdir(reference))
  assert {"config.json", "metrics.jsonl", "results.json", "curves.png",
          "checkpoints", "tensorboard"} <= names
  assert any(f.startswith("events.out.tfevents")
             for f in os.listdir(reference / "tensorboard"))
  results = json.loads((reference / "results.json").read_text())
  for split in ("test", "val", "train"):
    for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "loss"):
      assert k in results[split]
  assert results["best_step"] > 0 and results["samples_per_s"] > 0
  assert results["final_eval_s"] > 0
  config = json.loads((reference / "config.json").read_text())
  assert config["dataset"]["variant"] == "smoke"
  rows = [json.loads(l) for l in (reference / "metrics.jsonl").open()]
  assert {"train", "train_epoch", "val"} <= {r["split"] for r in rows}
  val = [r for r in rows if r["split"] == "val"]
  assert [r["epoch"] for r in val] == list(range(len(val)))
  steps = [r["step"] for r in rows]
  assert steps == sorted(steps)


def test_rerun_prints_results_without_training(reference):
  before = sorted(os.listdir(reference / "checkpoints"))
  proc = run_launch(reference)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "holds a finished run" in proc.stdout
  assert sorted(os.listdir(reference / "checkpoints")) == before


def test_train_step_compiles_once(tmp_path):
  config = get_config("smoke")
  workdir_lib.write_or_check_config(config, str(tmp_path))
  trainer = trainer_lib.Trainer(config, str(tmp_path))
  results = trainer.run()
  assert trainer.train_step._cache_size() == 1  # pylint: disable=protected-access
  assert trainer.eval_step._cache_size() == 1  # pylint: disable=protected-access
  assert 0.0 <= results["test"]["accuracy"] <= 1.0


def test_device_resident_split_trains_like_host_batches(reference, tmp_path):
  """The default gathers each batch on the device from the resident train
  split; sending host batches instead must give the same parameters."""
  config = json.loads((reference / "config.json").read_text())
  assert config["dataset"]["device_resident"] is True
  proc = run_launch(tmp_path, "--config.dataset.device_resident=False")
  assert proc.returncode == 0, proc.stderr[-3000:]
  _assert_same_params(reference, tmp_path)


def test_dispatch_runs_at_most_limit_steps_ahead():
  """The training loop's bound on steps in flight (each fake step is ~0.1 s
  of matmuls); unbounded (limit 0) all 12 run ahead, which shows that the
  count measures JAX's asynchronous dispatch."""
  w = jnp.eye(700) * 0.5 + 1e-3

  @jax.jit
  def step(x):
    for _ in range(8):
      x = jnp.tanh(x @ w)
    return x

  x0 = jnp.ones((700, 700))
  jax.block_until_ready(step(x0))
  most_ahead = {}
  for limit in (0, 1, 3):
    x, pending, most_ahead[limit] = x0, [], 0
    for _ in range(12):
      x = step(x)
      pending.append(x)
      preemption.bound_run_ahead(pending, limit)
      most_ahead[limit] = max(most_ahead[limit],
                              sum(not p.is_ready() for p in pending))
    jax.block_until_ready(x)
  assert most_ahead[0] > 3, most_ahead
  assert most_ahead[1] <= 1 and most_ahead[3] <= 3, most_ahead


def test_signal_during_a_metrics_flush_still_checkpoints(tmp_path,
                                                        monkeypatch):
  """SIGTERM delivered while the loop blocks in a metrics flush between
  checkpoints (on slow steps, where it usually lands): the run stops with a
  checkpoint of the step it names, not the previous one."""
  config = get_config("smoke")
  config.checkpoint_every_steps = 1000  # only epoch ends and the signal save
  workdir_lib.write_or_check_config(config, str(tmp_path))
  trainer = trainer_lib.Trainer(config, str(tmp_path))
  flush = trainer_lib.Trainer._flush
  sent = []

  def flush_then_signal(self, pending, meta, log, step, bar):
    flush(self, pending, meta, log, step, bar)
    if not sent and step % trainer.steps_per_epoch:
      sent.append(step)
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(trainer_lib.Trainer, "_flush", flush_then_signal)
  with pytest.raises(preemption.Preempted):
    trainer.run()
  assert sent and _checkpoint_steps(tmp_path)[-1] == sent[0]


# Runs launch.py's main with a SIGTERM sent while the trainer loads its data
# (before the training loop sets its own handler).
_SIGTERM_WHILE_LOADING = r"""
import os, signal
import launch
from mmjax.training import trainer
init = trainer.Trainer.__init__
def init_after_sigterm(self, *args, **kwargs):
  os.kill(os.getpid(), signal.SIGTERM)
  init(self, *args, **kwargs)
trainer.Trainer.__init__ = init_after_sigterm
launch.app.run(launch.main, flags_parser=launch.parse_flags)
"""


def test_signal_before_training_stops_with_one_line(tmp_path):
  """SIGTERM outside the training steps (here while data loads) exits 143
  with one line, not silently; the workdir keeps its resolved config."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  python, _, *args = launch_cmd(tmp_path)
  cmd = [python, "-c", _SIGTERM_WHILE_LOADING, *args]
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=240)
  assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode,
                                                   proc.stderr[-2000:])
  assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("stopped by signal 15 outside the training steps"), last
  assert (tmp_path / "config.json").exists()
  assert not _checkpoint_steps(tmp_path)


def _checkpoint_steps(workdir):
  d = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(d):
    return []
  return sorted(int(n) for n in os.listdir(d) if n.isdigit())


def _start_and_signal(workdir, sig, min_step):
  """Starts a run and sends `sig` once a checkpoint >= min_step exists."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  proc = subprocess.Popen(launch_cmd(workdir), cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    steps = _checkpoint_steps(workdir)
    if steps and steps[-1] >= min_step:
      proc.send_signal(sig)
      break
    time.sleep(0.05)
  out, err = proc.communicate(timeout=240)
  return proc.returncode, out, err


def test_sigterm_saves_and_resume_is_exact(reference, tmp_path):
  code, _, err = _start_and_signal(tmp_path, signal.SIGTERM, 5)
  assert code == 128 + signal.SIGTERM, err[-2000:]
  assert "re-run the same command to resume" in err
  assert not (tmp_path / "results.json").exists()
  proc = run_launch(tmp_path)
  assert proc.returncode == 0, proc.stderr[-2000:]
  _assert_same_params(reference, tmp_path)
  ref = json.loads((reference / "results.json").read_text())
  got = json.loads((tmp_path / "results.json").read_text())
  assert got["test"] == ref["test"] and got["best_step"] == ref["best_step"]


def test_sigkill_twice_then_resume_is_exact(reference, tmp_path):
  for min_step in (5, 15):
    code, _, _ = _start_and_signal(tmp_path, signal.SIGKILL, min_step)
    assert code == -signal.SIGKILL
  proc = run_launch(tmp_path)
  assert proc.returncode == 0, proc.stderr[-2000:]
  _assert_same_params(reference, tmp_path)
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").open()]
  ref_rows = [json.loads(l) for l in (reference / "metrics.jsonl").open()]
  strip = lambda rs: [(r["step"], r["split"], r.get("loss")) for r in rs]
  assert strip(rows) == strip(ref_rows)


def test_eight_devices_match_one(reference, tmp_path):
  proc = run_launch(tmp_path, env={
      "XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
  assert proc.returncode == 0, proc.stderr[-2000:]
  got = json.loads((tmp_path / "results.json").read_text())
  ref = json.loads((reference / "results.json").read_text())
  assert got["devices"] == 8 and ref["devices"] == 1
  assert abs(got["test"]["loss"] - ref["test"]["loss"]) < 1e-3
  _assert_same_params(reference, tmp_path, exact=False, atol=2e-3)


def test_other_config_in_same_workdir_is_refused(reference):
  before = (reference / "results.json").read_text()
  proc = run_launch(reference, "--config.model.token_dim=48")
  assert proc.returncode == 2
  line = proc.stderr.strip().splitlines()[-1]
  assert "model.token_dim" in line and "Traceback" not in proc.stderr
  assert (reference / "results.json").read_text() == before


def test_nonfinite_updates_are_skipped_then_stop(tmp_path):
  proc = run_launch(tmp_path, "--config.learning_rate=1e30")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "non-finite" in proc.stderr.strip().splitlines()[-1]
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").open()]
  assert max(r.get("skipped_steps", 0) for r in rows) > 0
  # The last checkpoint written is intact and restorable.
  params, step = checkpoint.final_params(tmp_path)
  assert step is not None and jax.tree.leaves(params)


def test_workdir_check_happens_first(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(UserError, match="cannot write"):
    workdir_lib.prepare_workdir(str(blocker / "sub"))


def test_full_disk_stops_before_training(tmp_path, monkeypatch):
  config = get_config("smoke")
  workdir_lib.prepare_workdir(str(tmp_path))
  workdir_lib.write_or_check_config(config, str(tmp_path))
  trainer = trainer_lib.Trainer(config, str(tmp_path))
  usage = workdir_lib.shutil.disk_usage(str(tmp_path))
  monkeypatch.setattr(workdir_lib.shutil, "disk_usage",
                      lambda p: usage._replace(free=10 << 20))
  with pytest.raises(UserError, match="MiB free"):
    trainer.run()
  assert not (tmp_path / "metrics.jsonl").exists()
  assert (tmp_path / "config.json").exists()


def test_failed_checkpoint_write_is_one_line_and_keeps_the_last(
    tmp_path, monkeypatch):
  config = get_config("smoke")
  workdir_lib.prepare_workdir(str(tmp_path))
  workdir_lib.write_or_check_config(config, str(tmp_path))
  trainer = trainer_lib.Trainer(config, str(tmp_path))
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  state = trainer.init_state
  best = {"params": state.params, "batch_stats": state.batch_stats}
  ckpt.save(1, state, best, {"ok": True})

  def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(ckpt.manager, "save", disk_full)
  with pytest.raises(UserError) as err:
    ckpt.save(2, state, best, {"ok": True})
  msg = str(err.value)
  assert "cannot write checkpoint 2" in msg and "No space left" in msg
  assert "checkpoint (1) is kept" in msg and "\n" not in msg
  assert _checkpoint_steps(tmp_path) == [1]


def test_resident_split_over_a_quarter_of_device_memory_falls_back(
    monkeypatch):
  class Device:
    def memory_stats(self):
      return {"bytes_limit": 1000}

  monkeypatch.setattr(trainer_lib.jax, "local_devices", lambda: [Device()])
  assert trainer_lib._fits_on_device(250)  # pylint: disable=protected-access
  assert not trainer_lib._fits_on_device(251)  # pylint: disable=protected-access
