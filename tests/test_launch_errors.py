"""Bad input stops at once with one line naming the problem, no traceback."""

import os

from conftest import run_launch


def _one_line_error(proc):
  assert proc.returncode != 0, proc.stdout
  err = proc.stderr.strip()
  assert "Traceback" not in err, err
  return err.splitlines()[-1]


def test_unknown_config_key(tmp_path):
  proc = run_launch(tmp_path / "w", "--config.model.widht=3")
  line = _one_line_error(proc)
  assert "widht" in line


def test_wrong_type(tmp_path):
  proc = run_launch(tmp_path / "w", "--config.batch_size=many")
  line = _one_line_error(proc)
  assert "batch_size" in line


def test_unknown_variant(tmp_path):
  proc = run_launch(tmp_path / "w", config="configs/optimized.py:huge")
  line = _one_line_error(proc)
  assert "huge" in line


def test_unwritable_workdir(tmp_path):
  ro = tmp_path / "ro"
  ro.mkdir()
  (ro / "keep.txt").write_text("precious")
  os.chmod(ro, 0o500)
  try:
    proc = run_launch(ro / "sub")
    if os.access(ro, os.W_OK):  # Running as root: use a path under a file.
      proc = run_launch(ro / "keep.txt" / "sub")
  finally:
    os.chmod(ro, 0o700)
  line = _one_line_error(proc)
  assert "--workdir" in line and "cannot write" in line
  assert (ro / "keep.txt").read_text() == "precious"


def test_bad_semantic_value(tmp_path):
  proc = run_launch(tmp_path / "w", "--config.model.fusion=telepathy")
  line = _one_line_error(proc)
  assert "model.fusion" in line and "telepathy" in line
