"""Multi-host training on JAX's distributed runtime, on one machine: two
launch.py processes joined through jax.distributed.initialize on 127.0.0.1
(gloo CPU collectives) train the `:smoke` recipe into one workdir, and end
with the metrics and parameters of the one-process run (float tolerance:
the gradient all-reduce sums in another order)."""

import json
import os
import socket
import subprocess
import time

import pytest

from conftest import ROOT, assert_same_trees, launch_cmd, run_launch
from mmjax.training import checkpoint

TIMEOUT_S = 240


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run_job(workdir, num_processes, env=None, timeout=TIMEOUT_S,
             check=True):
  """Runs `num_processes` launch.py processes of one job to completion.

  Returns [(returncode, stdout, stderr)]; on a timeout or a failed process
  every child still running is killed before the assertion fails (with
  check=False: before returning)."""
  port = _free_port()
  full_env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
  logs = [(open(os.path.join(workdir.parent, f"{workdir.name}.{i}.out"),
                "w+"),
           open(os.path.join(workdir.parent, f"{workdir.name}.{i}.err"),
                "w+")) for i in range(num_processes)]
  procs = [subprocess.Popen(
      launch_cmd(workdir, f"--coordinator_address=127.0.0.1:{port}",
                 f"--num_processes={num_processes}", f"--process_id={i}"),
      cwd=ROOT, env=full_env, stdout=out, stderr=err)
           for i, (out, err) in enumerate(logs)]
  deadline = time.time() + timeout
  try:
    while time.time() < deadline:
      codes = [p.poll() for p in procs]
      if all(c is not None for c in codes):
        break
      if check and any(c not in (None, 0) for c in codes):  # One died.
        time.sleep(2)
        break
      time.sleep(0.2)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
      p.wait(timeout=30)
  results = []
  for p, (out, err) in zip(procs, logs):
    out.seek(0)
    err.seek(0)
    results.append((p.returncode, out.read(), err.read()))
    out.close()
    err.close()
  for i, (code, _, err) in enumerate(results):
    assert code == 0 or not check, f"process {i} exited {code}:\n{err[-3000:]}"
  return results


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("reference")
  proc = run_launch(workdir, timeout=TIMEOUT_S)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


def _assert_close_to(reference, workdir, processes, devices, atol=2e-3):
  ref = json.loads((reference / "results.json").read_text())
  got = json.loads((workdir / "results.json").read_text())
  assert got["processes"] == processes and got["devices"] == devices
  assert ref["processes"] == 1 and ref["devices"] == 1
  for split in ("test", "val", "train"):
    assert abs(got[split]["loss"] - ref[split]["loss"]) < 1e-3, split
  assert got["epochs_run"] == ref["epochs_run"]
  assert got["skipped_steps"] == ref["skipped_steps"] == 0
  pa, sa = checkpoint.final_params(reference)
  pb, sb = checkpoint.final_params(workdir)
  assert sa == sb
  assert_same_trees(pa, pb, atol=atol)
  # Metrics are written once (by process 0), not once per process.
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").open()]
  ref_rows = [json.loads(l) for l in (reference / "metrics.jsonl").open()]
  assert [(r["step"], r["split"]) for r in rows] == [
      (r["step"], r["split"]) for r in ref_rows]


def test_two_processes_match_one(reference, tmp_path):
  workdir = tmp_path / "job"
  outs = _run_job(workdir, 2)
  _assert_close_to(reference, workdir, processes=2, devices=2)
  # Both processes computed the same final metrics.
  summaries = [json.loads(o[o.index("{"):o.rindex("}") + 1]) for _, o, _ in
               outs]
  assert summaries[0]["test"] == summaries[1]["test"]


def test_two_processes_of_four_devices_match_one(reference, tmp_path):
  workdir = tmp_path / "job"
  _run_job(workdir, 2, env={
      "XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
  _assert_close_to(reference, workdir, processes=2, devices=8)


def test_a_refused_workdir_stops_every_process(tmp_path):
  """Process 0 refuses a workdir that holds another run; the others stop
  with the same one-line error instead of waiting for it in training."""
  workdir = tmp_path / "job"
  workdir.mkdir()
  (workdir / "config.json").write_text(json.dumps({"seed": 12345}))
  results = _run_job(workdir, 2, timeout=150, check=False)
  for i, (code, _, err) in enumerate(results):
    assert code == 2, f"process {i} exited {code}:\n{err[-2000:]}"
    assert "holds a run of another config" in err.strip().splitlines()[-1]


@pytest.mark.parametrize("flags,message", [
    (("--num_processes=2",), "also needs"),
    (("--coordinator_address=127.0.0.1:1", "--num_processes=2",
      "--process_id=2"), "--process_id=2 is not in"),
    (("--distributed", "--num_processes=2"), "detects the job by itself"),
])
def test_bad_distributed_flags_are_one_line_errors(tmp_path, flags, message):
  proc = run_launch(tmp_path, *flags, timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert message in last and "Traceback" not in proc.stderr
