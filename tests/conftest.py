"""Shared fixtures: one dataset cache per test session, helpers to run
launch.py in a subprocess."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# One XLA compilation cache for the session, shared by the many launch.py
# subprocesses that compile the same smoke step (test_train.py: 281 s -> 197 s
# on 2 cores). Set before any test module imports jax; a cached executable
# computes bitwise what a fresh compile does, so the exactness tests hold.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="mmjax-test-xla-cache-")
  atexit.register(shutil.rmtree, _cache, True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory):
  """Datasets are built once per session (or reused from $MMJAX_DATA_DIR)."""
  path = os.environ.get("MMJAX_DATA_DIR") or str(
      tmp_path_factory.mktemp("datasets"))
  os.environ["MMJAX_DATA_DIR"] = path
  return path


def launch_cmd(workdir, *overrides, config="configs/optimized.py:smoke"):
  return [sys.executable, os.path.join(ROOT, "launch.py"),
          f"--config={os.path.join(ROOT, config)}", f"--workdir={workdir}",
          *overrides]


def run_launch(workdir, *overrides, env=None, timeout=300, **kw):
  """Runs launch.py to completion; returns the CompletedProcess."""
  full_env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
  return subprocess.run(launch_cmd(workdir, *overrides, **kw), cwd=ROOT,
                        env=full_env, capture_output=True, text=True,
                        timeout=timeout)


def assert_same_trees(a, b, atol=None, context=""):
  """Same leaf paths; leaves bitwise equal (same dtype) or, with atol, within
  atol of each other. Failures name the leaf (and `context`)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  la = jax.tree_util.tree_leaves_with_path(a)
  lb = jax.tree_util.tree_leaves_with_path(b)
  assert [p for p, _ in la] == [p for p, _ in lb]
  for (path, x), (_, y) in zip(la, lb):
    where = f"{jax.tree_util.keystr(path)} {context}".strip()
    if atol is None:
      assert x.dtype == y.dtype and np.array_equal(x, y), where
    else:
      np.testing.assert_allclose(x, y, atol=atol, rtol=0, err_msg=where)
