"""Chaos: the `:smoke` run is SIGKILLed at several seeded-random moments (one
of them while a checkpoint is being written), restarted each time, and must
end with bitwise the parameters and the metrics log of an uninterrupted run;
a checkpoint whose write was cut short is never the one restored."""

import json
import os
import random
import signal
import subprocess
import time

import jax
import pytest

from conftest import ROOT, assert_same_trees, launch_cmd, run_launch
from mmjax.training import checkpoint

SEED = 20240611
RUN_TIMEOUT_S = 180
TMP_MARK = ".orbax-checkpoint-tmp"


def _ckpt_entries(workdir):
  d = os.path.join(workdir, "checkpoints")
  try:
    names = os.listdir(d)
  except FileNotFoundError:
    return [], []
  done = sorted(int(n) for n in names if n.isdigit())
  tmp = sorted(n for n in names if TMP_MARK in n)
  return done, tmp


def _spawn(workdir, log):
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.Popen(launch_cmd(workdir), cwd=ROOT, env=env,
                          stdout=log, stderr=subprocess.STDOUT)


def _kill_when(proc, workdir, log_path, condition, delay_s=0.0,
               poll_s=0.002):
  """SIGKILLs `proc` `delay_s` after `condition(done, tmp)` first holds.

  Returns what the checkpoints folder held right after the kill."""
  deadline = time.time() + RUN_TIMEOUT_S
  try:
    while True:
      if proc.poll() is not None:
        with open(log_path) as f:
          tail = f.read()[-3000:]
        pytest.fail(f"run ended (code {proc.returncode}) before the planned "
                    f"kill:\n{tail}")
      if time.time() > deadline:
        pytest.fail("the planned kill moment never came")
      if condition(*_ckpt_entries(workdir)):
        break
      time.sleep(poll_s)
    if delay_s:
      time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait(timeout=60)
  assert proc.returncode == -signal.SIGKILL, proc.returncode
  return _ckpt_entries(workdir)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("reference")
  proc = run_launch(workdir, timeout=RUN_TIMEOUT_S)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


def test_random_sigkills_then_resume_is_bitwise_exact(reference, tmp_path):
  rng = random.Random(SEED)
  workdir = tmp_path / "run"
  log_path = str(tmp_path / "runs.log")
  kills = []

  def run_and_kill(condition, delay_s=0.0):
    with open(log_path, "a") as log:
      proc = _spawn(workdir, log)
      return _kill_when(proc, workdir, log_path, condition, delay_s)

  # 1. A random moment from the start: startup, compilation or first steps.
  after = run_and_kill(lambda done, tmp: True, rng.uniform(0.5, 6.0))
  kills.append(("from start", after))

  # 2. A random moment after the first checkpoint (step 5) exists.
  after = run_and_kill(lambda done, tmp: done and done[-1] >= 5,
                       rng.uniform(0.0, 1.0))
  kills.append(("mid-training", after))

  # 3. While a checkpoint is being written: the moment orbax's temporary
  # folder for a step past the last finished one appears. The write can
  # finish between the poll and the kill; then try again a little later.
  target = rng.choice([8, 10, 15])
  step_of = lambda name: int(name.split(".")[0])
  for attempt in range(4):
    done_before, stale = _ckpt_entries(workdir)
    floor = max([target - 1] + done_before[-1:])

    def writing(done, tmp, floor=floor, stale=tuple(stale)):
      return any(t not in stale and step_of(t) > floor for t in tmp)

    done, tmp = run_and_kill(writing, 0.0)
    tmp = [t for t in tmp if t not in stale]
    kills.append((f"during checkpoint write (attempt {attempt + 1})",
                  (done, tmp)))
    if tmp:
      break
    target = floor + 2
  assert tmp, f"no kill landed during a checkpoint write: {kills}"
  cut = max(step_of(t) for t in tmp)
  # The unfinished checkpoint is invisible: the latest step is the last
  # finished one, before the cut one, and it restores.
  params, latest = checkpoint.final_params(workdir)
  assert latest == done[-1] and latest < cut, (latest, cut, done, tmp)
  assert jax.tree.leaves(params)

  # 4. A random moment after the run resumed past the cut checkpoint.
  after = run_and_kill(lambda done, tmp: done and done[-1] > cut,
                       rng.uniform(0.0, 1.0))
  kills.append(("after resuming", after))
  assert len(kills) >= 4
  print("kills:", kills)

  proc = run_launch(workdir, timeout=RUN_TIMEOUT_S)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "holds a finished run" not in proc.stdout

  done, tmp = _ckpt_entries(workdir)
  assert done[-1] == _ckpt_entries(reference)[0][-1]
  pa, sa = checkpoint.final_params(reference)
  pb, sb = checkpoint.final_params(workdir)
  assert sa == sb
  assert_same_trees(pa, pb, context=f"kills={kills}")
  ref = json.loads((reference / "results.json").read_text())
  got = json.loads((workdir / "results.json").read_text())
  for k in ("test", "val", "train", "best_step", "best_epoch", "epochs_run",
            "skipped_steps"):
    assert got[k] == ref[k], k
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").open()]
  ref_rows = [json.loads(l) for l in (reference / "metrics.jsonl").open()]
  strip = lambda rs: [(r["step"], r["split"], r.get("loss")) for r in rs]
  assert strip(rows) == strip(ref_rows)
