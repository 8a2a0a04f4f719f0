"""Tests of the tight-binding physics and the materials_tb TFDS builder."""

import os
import subprocess
import sys

import numpy as np
import pytest

from mmjax.data.materials import chern
from mmjax.data.materials import schema
from mmjax.data.materials import tb_features
from mmjax.data.materials import tb_generation
from mmjax.data.materials import tight_binding as tb

QWZ_MASSES = (-3.0, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.0)


def _expected_qwz(m):
  """Textbook QWZ phase diagram in the FHS sign convention."""
  if abs(m) > 2:
    return 0
  return 1 if m > 0 else -1


@pytest.mark.parametrize("m", QWZ_MASSES)
def test_qwz_phase_diagram(m):
  c = chern.chern_number_fhs(tb.qwz_hamiltonian(m), 24)
  assert abs(c - round(c)) < 1e-6
  assert round(c) == _expected_qwz(m)


@pytest.mark.parametrize("m", QWZ_MASSES)
def test_fhs_sign_matches_skyrmion_number(m):
  # Independent check of the sign convention: C_FHS(lower) = -deg(d/|d|).
  c = chern.chern_number_fhs(tb.qwz_hamiltonian(m), 32)
  deg = chern.skyrmion_number(tb.qwz_hamiltonian(m), 32)
  assert abs(deg - round(deg)) < 1e-6
  assert round(c) == -round(deg)


def test_qwz_params_match_closed_form():
  k = tb.k_mesh(7, offset=0.3)
  onsite, hops = tb.qwz_params(1.3)
  np.testing.assert_allclose(tb.bloch_hamiltonian(onsite, hops, k),
                             tb.qwz_hamiltonian(1.3)(k), atol=1e-12)


def test_upper_band_has_opposite_chern():
  hk = tb.qwz_hamiltonian(-1.2)(tb.k_mesh(24))
  c_low, _ = chern.fhs_from_mesh(hk, occupied=1)
  c_all, _ = chern.fhs_from_mesh(hk, occupied=2)
  c_up, _ = chern.fhs_from_mesh(-hk, occupied=1)  # lowest band of -H = upper.
  assert round(c_low) == -1 and round(c_up) == 1 and abs(c_all) < 1e-6


def test_multiband_occupied_subspace():
  # Direct sum of QWZ(m=1) - 10 eV (bands C = +1, -1) and QWZ(m=-1) + 10 eV
  # (bands C = -1, +1): occupying 1, 2, 3 bands gives C = 1, 0, -1.
  k = tb.k_mesh(24)
  h = np.zeros(k.shape[:-1] + (4, 4), complex)
  h[..., :2, :2] = tb.qwz_hamiltonian(1.0)(k) - 10.0 * np.eye(2)
  h[..., 2:, 2:] = tb.qwz_hamiltonian(-1.0)(k) + 10.0 * np.eye(2)
  assert round(chern.fhs_from_mesh(h, 1)[0]) == 1
  assert round(chern.fhs_from_mesh(h, 2)[0]) == 0
  assert round(chern.fhs_from_mesh(h, 3)[0]) == -1


def test_random_models_stable_under_refinement_and_basis_change():
  rng = np.random.default_rng(123)
  p = tb.sample_models(rng, 64)
  c, ok, gap, _ = chern.label_models(p["onsite"], p["hops"], n_k=16)
  assert ok.mean() > 0.5 and np.all(gap[ok] >= tb.DEFAULT_GAP_MIN)
  on, hp = p["onsite"][ok], p["hops"][ok]
  c_fine = chern.chern_number_fhs((on, hp), 64)
  np.testing.assert_allclose(c_fine, c[ok], atol=1e-6)
  # A k-independent U(2) basis change leaves C of the occupied band alone.
  z = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
  u, _ = np.linalg.qr(z)
  ud = u.conj().T
  c_rot = chern.chern_number_fhs((u @ on @ ud, u @ hp @ ud), 32)
  np.testing.assert_allclose(c_rot, c[ok], atol=1e-6)
  assert {0, 1} <= set(np.abs(c[ok]).tolist())


def test_hermiticity_and_periodicity():
  p = tb.sample_models(np.random.default_rng(5), 4)
  k = tb.k_mesh(6, offset=0.25)
  h = tb.bloch_hamiltonian(p["onsite"], p["hops"], k)
  np.testing.assert_allclose(h, np.conj(np.swapaxes(h, -1, -2)), atol=1e-12)
  h2 = tb.bloch_hamiltonian(p["onsite"], p["hops"], k + 2 * np.pi)
  np.testing.assert_allclose(h, h2, atol=1e-10)


def _check_edges(snd, rcv, n_nodes, n_edges, degree):
  assert snd.dtype == np.int32 and rcv.dtype == np.int32
  assert snd.shape == rcv.shape == (n_edges,)
  assert np.all(snd != rcv)
  pairs = set(zip(snd.tolist(), rcv.tolist()))
  assert len(pairs) == n_edges                      # no duplicate edges
  assert pairs == {(r, s) for s, r in pairs}        # both directions stored
  np.testing.assert_array_equal(np.bincount(snd, minlength=n_nodes), degree)
  assert snd.min() >= 0 and snd.max() < n_nodes


def test_graph_edges():
  _check_edges(*tb_features.crystal_edges(), 32, 384, 12)
  _check_edges(*tb_features.kspace_edges(), 64, 256, 4)


@pytest.fixture(scope="module")
def batch():
  return tb_generation.generate(200, seed=3, n_k=16, processes=1)


def test_generated_batch(batch):
  assert batch["label"].shape == (200,)
  np.testing.assert_array_equal(np.bincount(batch["label"]), [100, 100])
  np.testing.assert_array_equal(batch["label"], batch["chern"] != 0)
  shapes = dict(crystal_nodes=(200, 32, 3), kspace_nodes=(200, 64, 64),
                scalar=(200, 10), decomp=(200, 64))
  for key, shape in shapes.items():
    assert batch[key].shape == shape and batch[key].dtype == np.float32, key
    assert np.all(np.isfinite(batch[key])), key
  np.testing.assert_allclose(batch["decomp"].sum(1), 1.0, atol=1e-5)
  # Pseudo-spin unit vectors really are unit vectors.
  n = batch["kspace_nodes"].reshape(200, 64, 16, 4)[..., :3]
  np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-5)
  # Every scalar is genuinely variable (no constant column).
  assert np.all(batch["scalar"].std(0) > 0)


def test_generation_is_deterministic(batch):
  again = tb_generation.generate(200, seed=3, n_k=16, processes=2)
  for key in ("label", "candidate", "scalar", "kspace_nodes", "decomp",
              "crystal_nodes"):
    np.testing.assert_array_equal(batch[key], again[key], err_msg=key)
  other = tb_generation.generate(200, seed=4, n_k=16, processes=1)
  assert not np.array_equal(batch["scalar"], other["scalar"])


def test_smoke_builder(tmp_path, monkeypatch):
  from mmjax.data.materials import materials_tb  # pylint: disable=g-import-not-at-top
  sources = materials_tb.load_materials_tb("smoke", str(tmp_path))
  sizes = {s: len(src) for s, src in sources.items()}
  assert sizes == {"train": 280, "val": 60, "test": 60}
  ids = set()
  for split, src in sources.items():
    labels = []
    for i in range(len(src)):
      ex = src[i]
      schema.validate_example(ex, f"{split}[{i}]")
      assert ex["crystal_nodes"].shape == (32, 3)
      assert ex["kspace_nodes"].shape == (64, 64)
      assert ex["crystal_senders"].shape == (384,)
      assert ex["kspace_senders"].shape == (256,)
      np.testing.assert_array_equal(ex["modality_mask"], np.ones(4))
      assert ex["label"].dtype == np.int64 and ex["id"].startswith("tb-")
      labels.append(int(ex["label"]))
      ids.add(ex["id"])
    np.testing.assert_array_equal(np.bincount(labels), [len(src) // 2] * 2)
  assert len(ids) == 400                             # splits are disjoint
  # Second call reuses the prepared files: generating again would fail.
  def fail(*args, **kwargs):
    raise AssertionError("regenerated")
  monkeypatch.setattr(tb_generation, "generate", fail)
  again = materials_tb.load_materials_tb("smoke", str(tmp_path))
  assert len(again["train"]) == 280


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_auto_processes_follows_the_affinity_mask():
  from mmjax.data.materials import materials_tb  # pylint: disable=g-import-not-at-top
  # A child restricted to one core (as taskset or a container would) must
  # start one generation worker, not one per core of the host.
  code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
          "from mmjax.data.materials import materials_tb as m; print(m.auto_processes())")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True, timeout=120, cwd=root)
  assert out.stdout.strip() == "1"
  assert 1 <= materials_tb.auto_processes() <= materials_tb.MAX_AUTO_PROCESSES
