"""scripts/topology_checks.py: its rotation keeps the invariant and moves
the vectors, its scoring by |C|, and its errors."""

import os
import sys

import numpy as np
import pytest

from mmjax.data.materials import chern
from mmjax.data.materials import tb_features
from mmjax.data.materials import tight_binding as tb

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import topology_checks  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope="module")
def nodes():
  p = tb.sample_models(np.random.default_rng([5, 1]), 24)
  on, hp = p["onsite"], p["hops"]
  for m in (1.0, -1.0, 3.0):  # QWZ: C = +1, -1, 0
    o, h = tb.qwz_params(m)
    on, hp = np.concatenate([on, o[None]]), np.concatenate([hp, h[None]])
  return tb_features.kspace_node_features(on, hp)


def test_rotation_keeps_the_degree_and_moves_the_vectors(nodes):
  turned = topology_checks.rotated(nodes, seed=3)
  np.testing.assert_allclose(chern.degree_from_kspace_nodes(turned),
                             chern.degree_from_kspace_nodes(nodes),
                             atol=1e-4)
  f, g = nodes.reshape(len(nodes), 64, 16, 4), turned.reshape(
      len(nodes), 64, 16, 4)
  np.testing.assert_allclose(np.linalg.norm(g[..., :3], axis=-1), 1.0,
                             atol=1e-5)
  np.testing.assert_array_equal(g[..., 3], f[..., 3])  # the gap stays
  assert np.abs(g[..., :3] - f[..., :3]).max() > 0.5
  assert list(topology_checks.abs_chern(nodes)[-3:]) == [1, 1, 0]


def test_score_splits_the_accuracy_by_abs_chern():
  labels = np.array([0, 1, 1, 1])
  c_abs = np.array([0, 1, 2, 1])
  right = np.eye(2)[labels]
  wrong_c2 = right.copy()
  wrong_c2[2] = [1.0, 0.0]
  e = topology_checks.score(np.stack([right, wrong_c2]), labels, c_abs)
  assert e["accuracy"]["members"] == [1.0, 0.75]
  assert e["by_abs_chern"]["2"]["accuracy"]["members"] == [1.0, 0.0]
  assert e["by_abs_chern"]["1"]["n"] == 2
  assert "abs(C) = 2" in topology_checks.markdown({"test": e})


def test_a_missing_run_is_a_one_line_error(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    topology_checks.main(["--workdir", str(tmp_path)])
  assert e.value.code == 2
  err = capsys.readouterr().err.strip()
  assert "no results.json" in err and len(err.splitlines()) == 1
