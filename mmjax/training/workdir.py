"""The workdir of a run: created and proved writable, its config guarded
against mixing two runs, its disk checked, its JSON files written
atomically."""

import json
import math
import os
import shutil

import jax
import numpy as np

from mmjax.errors import UserError

_MESSAGE_BYTES = 1024


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


def _check_or_write(resolved, path):
  """Process 0's part: '' when the workdir may hold this run, else why not."""
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    diff = _first_difference(old, resolved)
    if diff:
      return (f"{path}: this workdir holds a run of another config "
              f"({diff}); use a new --workdir")
    return ""
  write_json(path, resolved)
  return ""


def _same_on_every_process(message):
  """Process 0's message, on every process of a multi-host job (one
  collective), so that a refusal stops them all instead of leaving the
  others waiting in the first training step."""
  if jax.process_count() == 1:
    return message
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  raw = np.zeros((_MESSAGE_BYTES,), np.uint8)
  data = message.encode()[:_MESSAGE_BYTES]
  raw[:len(data)] = np.frombuffer(data, np.uint8)
  raw = np.asarray(multihost_utils.broadcast_one_to_all(raw))
  return bytes(raw[raw > 0].tolist()).decode(errors="replace")


def write_or_check_config(config, workdir):
  """Saves the resolved config, or checks it equals the one of the run that
  is already in the workdir (resuming another config would mix two runs).
  Process 0 reads and writes; every process raises the same UserError."""
  path = os.path.join(workdir, "config.json")
  resolved = json.loads(config.to_json_best_effort())
  message = ""
  if jax.process_index() == 0:
    try:
      message = _check_or_write(resolved, path)
    except (OSError, ValueError) as e:
      message = f"{path}: cannot read or write it ({e})"
  message = _same_on_every_process(message)
  if message:
    raise UserError(message)


def check_disk_space(workdir, trees, copies=3):
  """Stops before training if the workdir's disk cannot hold checkpoints:
  `copies` of `trees` (two kept plus one being written) and logs."""
  size = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(trees))
  need = copies * size + (64 << 20)  # + logs, results, plots
  free = shutil.disk_usage(workdir).free
  if free < need:
    raise UserError(
        f"--workdir {workdir}: {free / 2**20:.0f} MiB free on its "
        f"disk, checkpoints of this run need about {need / 2**20:.0f} MiB; "
        "free some space or use another --workdir")


def nan_as_null(tree):
  """JSON has no NaN: undefined metrics become null."""
  if isinstance(tree, dict):
    return {k: nan_as_null(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return [nan_as_null(v) for v in tree]
  if isinstance(tree, float) and not math.isfinite(tree):
    return None
  return tree


def write_json(path, obj):
  """Writes `obj` as JSON (NaN as null) through a temporary file and a
  rename, so a reader never sees half a file."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(nan_as_null(obj), f, indent=2)
  os.replace(tmp, path)
