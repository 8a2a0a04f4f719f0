"""The degree of n = d/|d| from the stored k-space node features of
materials_tb (chern.degree_from_kspace_nodes): the layout is undone exactly,
the degree is skyrmion_number's on the same mesh, and minus it is the exact
Chern number wherever that mesh provably resolves it."""

import numpy as np
import pytest

from mmjax.data.materials import chern
from mmjax.data.materials import tb_features
from mmjax.data.materials import tight_binding as tb

MESH = tb_features.KSPACE_CELLS * tb_features.KSPACE_SUB   # 32
OFFSET = 0.5              # kspace_node_features' mesh: k_mesh(32, 0.5)
FLOAT32_TOL = 1e-4        # degree from float32 features vs float64


def _shifted(hops, offset, n_k):
  """Hoppings of H'(k) = H(k + 2 pi offset / n_k (1, 1)): T_R e^{i delta.R}.

  FHS / degree of H' on k_mesh(n_k) are those of H on k_mesh(n_k, offset),
  so `chern.gap_bounds` of H' certifies the offset mesh of H.
  """
  delta = np.full(2, 2 * np.pi * offset / n_k)
  return hops * np.exp(1j * tb.HALF_R @ delta)[:, None, None]


@pytest.fixture(scope="module")
def models():
  p = tb.sample_models(np.random.default_rng([11, 3]), 48)
  on, hp = p["onsite"], p["hops"]
  # QWZ with C = +1, -1, 0, 0 as fixed points.
  for m in (1.0, -1.0, 3.0, -3.0):
    o, h = tb.qwz_params(m)
    on = np.concatenate([on, o[None]])
    hp = np.concatenate([hp, h[None]])
  return on, hp


def test_mesh_layout_is_undone_exactly(models):
  on, hp = models
  nodes = tb_features.kspace_node_features(on, hp)
  mesh = tb_features.kspace_mesh_from_nodes(nodes)
  assert mesh.shape == (len(on), MESH, MESH, 4) and mesh.dtype == np.float32
  d = np.moveaxis(tb.d_field(on, hp, MESH, OFFSET), 0, -1)   # [B, 32, 32, 3]
  np.testing.assert_allclose(
      mesh[..., :3], d / np.linalg.norm(d, axis=-1, keepdims=True),
      atol=1e-6)
  # Leading axes are kept; a wrong shape is refused.
  one = tb_features.kspace_mesh_from_nodes(nodes[3])
  np.testing.assert_array_equal(one, mesh[3])
  with pytest.raises(ValueError):
    tb_features.kspace_mesh_from_nodes(nodes[:, :32])


def test_degree_is_skyrmion_number_on_the_same_mesh(models):
  on, hp = models
  nodes = tb_features.kspace_node_features(on, hp)
  got = chern.degree_from_kspace_nodes(nodes)
  assert got.shape == (len(on),) and got.dtype == np.float64
  want = chern.skyrmion_number((on, hp), MESH, OFFSET)
  np.testing.assert_allclose(got, want, atol=FLOAT32_TOL, rtol=0)
  # float64 features give the same degree to rounding.
  np.testing.assert_allclose(
      chern.degree_from_kspace_nodes(nodes.astype(np.float64)), got,
      atol=FLOAT32_TOL, rtol=0)
  # skyrmion_number is degree_of_unit_field of d/|d| (offset 0 by default).
  d = np.moveaxis(tb.d_field(on, hp, 16), 0, -1)
  np.testing.assert_allclose(
      chern.degree_of_unit_field(d / np.linalg.norm(d, axis=-1,
                                                    keepdims=True)),
      chern.skyrmion_number((on, hp), 16), atol=1e-12, rtol=0)
  # Batches of batches: [2, B / 2, 64, 64] -> [2, B / 2].
  half = len(on) // 2
  np.testing.assert_array_equal(
      chern.degree_from_kspace_nodes(nodes[:2 * half].reshape(
          2, half, 64, 64)), got[:2 * half].reshape(2, half))


def test_minus_degree_is_the_chern_number_where_the_mesh_resolves_it(models):
  on, hp = models
  # The shift trick: H' on k_mesh(32) is H on k_mesh(32, 0.5).
  np.testing.assert_allclose(tb.d_field(on, _shifted(hp, OFFSET, MESH), MESH),
                             tb.d_field(on, hp, MESH, OFFSET), atol=1e-12)
  # Exact labels where the dataset's rule accepts the model (direct gap
  # certified >= gap_min).
  c, ok = chern.label_models(on, hp)[:2]
  assert ok[-4:].all() and ok.mean() > 0.5
  np.testing.assert_array_equal(c[-4:], [1, -1, 0, 0])
  lower, _ = chern.gap_bounds(on, _shifted(hp, OFFSET, MESH), MESH)
  # The certificate of chern.py on this mesh.
  resolved = ok & (lower > 0)
  assert resolved[-4:].all() and resolved.sum() > 0.5 * ok.sum()
  deg = chern.degree_from_kspace_nodes(
      tb_features.kspace_node_features(on, hp))
  fhs = chern.fhs_two_band(tb.d_field(on, hp, MESH, OFFSET))
  r = resolved
  np.testing.assert_allclose(deg[r], np.round(deg[r]), atol=FLOAT32_TOL)
  np.testing.assert_array_equal(-np.round(deg[r]), c[r])
  np.testing.assert_allclose(-deg[r], fhs[r], atol=FLOAT32_TOL, rtol=0)
  assert len(set(c[r].tolist())) >= 2
