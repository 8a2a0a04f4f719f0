"""The plaquette encoder (models/plaquette.py): the mesh is rebuilt in jnp
exactly, its invariants are rotation invariant, they determine the degree
(the Van Oosterom-Strackee solid angles summed over the plaquettes are
chern.degree_from_kspace_nodes), and the encoder is registered and built
from a spec."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmjax.data.materials import chern
from mmjax.data.materials import tb_features
from mmjax.data.materials import tight_binding as tb
from mmjax.models import encoders
from mmjax.models import plaquette

B = 12
FLOAT32_TOL = 1e-3     # a float32 sum of 2,048 solid angles vs float64


@pytest.fixture(scope="module")
def nodes():
  p = tb.sample_models(np.random.default_rng([5, 17]), B - 2)
  on, hp = p["onsite"], p["hops"]
  for m in (1.0, -1.0):  # QWZ with C = +1, -1: degrees -1, +1
    o, h = tb.qwz_params(m)
    on = np.concatenate([on, o[None]])
    hp = np.concatenate([hp, h[None]])
  return tb_features.kspace_node_features(on, hp)


def _rotation(rng):
  """A random SO(3) matrix (QR of a Gaussian, signs fixed, det +1)."""
  q, r = np.linalg.qr(rng.normal(size=(3, 3)))
  q = q * np.sign(np.diag(r))
  return q if np.linalg.det(q) > 0 else -q


def test_jnp_mesh_is_the_numpy_inverse(nodes):
  want = tb_features.kspace_mesh_from_nodes(nodes)
  got = jax.jit(tb_features.kspace_mesh_from_nodes)(jnp.asarray(nodes))
  assert isinstance(got, jax.Array) and got.shape == (B, 32, 32, 4)
  np.testing.assert_array_equal(np.asarray(got), want)
  n = plaquette.unit_mesh(jnp.asarray(nodes))
  np.testing.assert_allclose(
      np.asarray(n), want[..., :3] / np.linalg.norm(want[..., :3], axis=-1,
                                                    keepdims=True),
      atol=1e-6)


def test_invariants_do_not_change_under_rotation(nodes):
  n = np.asarray(plaquette.unit_mesh(jnp.asarray(nodes)))
  rot = _rotation(np.random.default_rng(3))
  f = plaquette.plaquette_invariants(jnp.asarray(n))
  g = plaquette.plaquette_invariants(jnp.asarray(n @ rot.T))
  assert f.shape == (B, 32, 32, 8)
  np.testing.assert_allclose(np.asarray(g), np.asarray(f), atol=1e-5)
  # The coordinates are not invariant (the ablation's point).
  c = plaquette.plaquette_coordinates(jnp.asarray(n))
  assert c.shape == (B, 32, 32, 12)
  assert not np.allclose(
      np.asarray(plaquette.plaquette_coordinates(jnp.asarray(n @ rot.T))),
      np.asarray(c), atol=1e-2)


def test_invariants_determine_the_degree(nodes):
  inv = plaquette.plaquette_invariants(plaquette.unit_mesh(jnp.asarray(nodes)))
  omega = plaquette.solid_angles(inv)                      # [B, 32, 32, 2]
  got = np.asarray(omega.sum(axis=(1, 2, 3))) / (4 * np.pi)
  want = chern.degree_from_kspace_nodes(nodes)
  np.testing.assert_allclose(got, want, atol=FLOAT32_TOL, rtol=0)
  np.testing.assert_allclose(want[-2:], [-1.0, 1.0], atol=1e-4)
  assert len(set(np.round(want).tolist())) >= 2


def test_node_neighbourhood_and_bad_settings():
  n = jnp.ones((2, 32, 32, 3)) / jnp.sqrt(3.0)
  assert plaquette.local_features(n, "node", "coordinates").shape == (
      2, 32, 32, 3)
  with pytest.raises(ValueError, match="inputs='coordinates'"):
    plaquette.local_features(n, "node", "invariants")
  with pytest.raises(ValueError, match="neighbourhood"):
    plaquette.local_features(n, "cell", "invariants")
  with pytest.raises(ValueError, match="inputs"):
    plaquette.local_features(n, "plaquette", "angles")


class _Wrap(nn.Module):
  spec: tuple
  dtype: str = "float32"

  @nn.compact
  def __call__(self, batch):
    info = encoders.encoder_info("kspace", dict(self.spec))
    return info.build(dict(self.spec), jnp.dtype(self.dtype),
                      "kspace_encoder")(batch, "kspace", True, None)


@pytest.mark.parametrize("extra,width", [
    ({}, 64),
    ({"widths": (16, 8), "inputs": "coordinates", "pooling": "max"}, 8),
    ({"widths": (8,), "neighbourhood": "node", "inputs": "coordinates",
      "pooling": "mean"}, 8),
])
def test_registered_and_built_from_a_spec(nodes, extra, width):
  spec = dict(type="plaquette", **extra)
  info = encoders.encoder_info("kspace", spec)
  assert (info.kind, info.mixup, info.noise) == ("graph", "embedding",
                                                 "input")
  batch = {"kspace_nodes": jnp.asarray(nodes)}
  wrap = _Wrap(tuple(spec.items()))
  v = wrap.init(jax.random.key(0), batch)
  k = {"invariants": 8, "coordinates": 12}[spec.get("inputs", "invariants")]
  if spec.get("neighbourhood") == "node":
    k = 3
  assert v["params"]["kspace_encoder"]["phi0"]["kernel"].shape[0] == k
  out = wrap.apply(v, batch)
  assert out.shape == (B, width) and out.dtype == jnp.float32
  assert np.isfinite(np.asarray(out)).all()
  # The same parameters in bfloat16: output in bfloat16, close (without
  # flat_zero: phi minus phi(flat) is a difference of close bfloat16s).
  half = _Wrap(tuple(spec.items()), "bfloat16").apply(v, batch)
  assert half.dtype == jnp.bfloat16 and np.isfinite(np.asarray(
      half, np.float32)).all()
  raw = tuple(spec.items()) + (("flat_zero", False),)
  out, half = (_Wrap(raw, dt).apply(v, batch) for dt in ("float32",
                                                          "bfloat16"))
  np.testing.assert_allclose(np.asarray(half, np.float32), np.asarray(out),
                             rtol=0.1, atol=0.1 * np.abs(out).max())


def test_sum_pooling_is_a_fixed_multiple_of_mean(nodes):
  batch = {"kspace_nodes": jnp.asarray(nodes)}
  outs = {}
  for pooling in ("sum", "mean"):
    wrap = _Wrap((("type", "plaquette"), ("widths", (8,)),
                  ("pooling", pooling)))
    v = wrap.init(jax.random.key(0), batch)
    outs[pooling] = np.asarray(wrap.apply(v, batch))
  np.testing.assert_allclose(outs["sum"], 1024 * outs["mean"], rtol=1e-5)


@pytest.mark.parametrize("inputs", ["invariants", "coordinates"])
def test_flat_zero_makes_a_constant_field_pool_to_zero(nodes, inputs):
  # Every mesh point the same vector: every plaquette is flat.
  flat = np.tile(nodes[:1, :1, :4], (2, 64, 16))          # [2, 64, 64]
  batch = {"kspace_nodes": jnp.asarray(flat)}
  spec = (("type", "plaquette"), ("widths", (8, 8)), ("inputs", inputs))
  wrap = _Wrap(spec)
  v = wrap.init(jax.random.key(0), batch)
  # Zero up to the float32 rounding of |n|^2 = 1 in the invariants.
  np.testing.assert_allclose(np.asarray(wrap.apply(v, batch)), 0.0,
                             atol=1e-3)
  raw = _Wrap(spec + (("flat_zero", False),)).apply(v, batch)
  assert np.abs(np.asarray(raw)).max() > 1.0
  # On a real field the two differ by 1,024 phi(flat) (invariants: the
  # same flat plaquette everywhere).
  real = {"kspace_nodes": jnp.asarray(nodes)}
  if inputs == "invariants":
    np.testing.assert_allclose(
        np.asarray(_Wrap(spec + (("flat_zero", False),)).apply(v, real))
        - np.asarray(wrap.apply(v, real)),
        np.broadcast_to(np.asarray(raw)[:1], (B, 8)), rtol=1e-4, atol=1e-3)
