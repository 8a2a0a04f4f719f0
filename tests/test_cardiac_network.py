"""The Herrmann et al. (2012) cardiac Boolean network and its HillCube
Langevin simulator: fixed points as published, truth tables against the
rules, exact corners, fixed points that stay fixed, jit/vmap shapes and the
signal protocol."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.cardiac import dynamics
from mmjax.data.cardiac import network

# The research notes' table A0..A5: (BMP2_I, CanWnt_I) and the ON genes.
_NOTES = (
    ((0, 0), ()),
    ((0, 0), ("GATAs", "Nkx2_5", "Tbx5")),
    ((1, 0), ("Bmp2",)),
    ((1, 0), ("Bmp2", "GATAs", "Nkx2_5", "Tbx5")),
    ((0, 1), ("canWnt", "Mesp1", "Dkk1", "Foxc1_2", "Tbx1", "Isl1",
              "GATAs", "Nkx2_5")),
    ((1, 1), ("canWnt", "Foxc1_2", "Tbx1", "Fgf8", "Isl1", "GATAs",
              "Nkx2_5")),
)


def _notes_state(bmp, wnt, genes):
  relays = (("exogen_BMP2_I", "exogen_BMP2_II") if bmp else ()) + (
      ("exogen_CanWnt_I", "exogen_canWnt_II") if wnt else ())
  return network.state_of(relays + genes)


def test_fixed_points_are_the_six_of_the_notes():
  found = {tuple(s) for s in network.fixed_points()}
  notes = [tuple(_notes_state(*inputs, genes)) for inputs, genes in _NOTES]
  assert found == set(notes)
  assert [tuple(s) for s in network.FIXED_POINTS] == notes
  assert len(network.FATES) == 6
  np.testing.assert_array_equal(network.fate_of(network.FIXED_POINTS),
                                np.arange(6))
  assert network.fate_of(np.zeros(15, bool)) == 0
  assert network.fate_of(network.state_of(("Tbx5",))) == -1


def test_truth_tables_agree_with_update_on_all_states():
  states = network.all_states()
  want = network.update(states)
  tables = network.truth_tables()
  assert sum(len(r) for r, _ in tables[2:]) == 37  # regulations, no inputs
  for i, (regs, table) in enumerate(tables):
    assert list(regs) == sorted(regs) and table.shape == (2 ** len(regs),)
    m = len(regs)
    row = (states[:, list(regs)] << np.arange(m - 1, -1, -1)).sum(-1)
    np.testing.assert_array_equal(table[row].astype(bool), want[:, i],
                                  err_msg=network.NODES[i])
  # Inputs hold their value.
  np.testing.assert_array_equal(want[:, :2], states[:, :2])


def test_hillcube_equals_truth_tables_at_corners():
  assert float(dynamics.hill(jnp.float32(0.0))) == 0.0
  assert float(dynamics.hill(jnp.float32(1.0))) == 1.0
  states = network.all_states()
  corners = dynamics.hill(jnp.asarray(states, jnp.float32))
  np.testing.assert_array_equal(np.asarray(dynamics.cube(corners)),
                                network.update(states).astype(np.float32))
  # Multilinear in each regulator: a midpoint is the mean of the corners.
  x = states[:64].astype(np.float32)
  lo, hi = x.copy(), x.copy()
  j = network.INDEX["Mesp1"]
  lo[:, j], hi[:, j] = 0.0, 1.0
  mid = lo.copy()
  mid[:, j] = 0.5
  np.testing.assert_allclose(
      dynamics.cube(jnp.asarray(mid)),
      (dynamics.cube(jnp.asarray(lo)) + dynamics.cube(jnp.asarray(hi))) / 2,
      atol=1e-6)
  # drift vanishes at every fixed point (input columns set by the signal).
  fp = jnp.asarray(network.FIXED_POINTS, jnp.float32)
  assert float(jnp.abs(dynamics.drift(fp, fp[:, :2])).max()) == 0.0


def test_simulate_shapes_and_fixed_points_stay():
  steps = 40
  sim = jax.jit(jax.vmap(functools.partial(
      dynamics.simulate, dt=dynamics.DT, steps=steps,
      system_size=jnp.inf)))
  fp = network.FIXED_POINTS.astype(np.float32)
  # The 6 fixed points under their own inputs, plus the progenitor (all
  # OFF) under Wnt, which the notes' synchronous run takes to A4.
  x0 = np.concatenate([fp, np.zeros((1, 15), np.float32)])
  sig = np.concatenate([fp[:, :2], [[1.0, 0.0]]]).astype(np.float32)
  signals = np.repeat(sig[:, None], steps, 1)
  keys = jax.random.split(jax.random.PRNGKey(0), 7)
  path = np.asarray(sim(keys, x0, signals))
  assert path.shape == (7, steps + 1, 15) and path.dtype == np.float32
  np.testing.assert_array_equal(path[:6], np.repeat(fp[:, None], steps + 1,
                                                    1))
  np.testing.assert_array_equal(
      dynamics.fate_of_continuous(path[:, -1])[:6], np.arange(6))
  settled = jax.vmap(functools.partial(dynamics.settle, steps=160))(
      keys[6:], path[6:, -1], sig[6:])
  assert int(dynamics.fate_of_continuous(settled)[0]) == 4


def test_simulate_noisy_jit_vmap_protocol():
  steps, n = 48, 5
  keys = jax.random.split(jax.random.PRNGKey(1), 2 * n)
  signals, _ = jax.vmap(lambda k: dynamics.protocol(k, steps))(keys[:n])
  assert signals.shape == (n, steps, 2) and signals.dtype == jnp.float32
  sim = functools.partial(dynamics.simulate, dt=dynamics.DT, steps=steps,
                          system_size=dynamics.SYSTEM_SIZE)
  path = jax.jit(jax.vmap(sim))(keys[n:], jnp.zeros((n, 15)), signals)
  assert path.shape == (n, steps + 1, 15)
  path = np.asarray(path)
  assert path.min() >= 0.0 and path.max() <= 1.0
  np.testing.assert_array_equal(path[:, :-1, :2], signals)
  assert np.std(path[:, 1:, 2:]) > 0  # noise is on
  # One trajectory alone (jitted) equals its row of the batch.
  one = jax.jit(sim)(keys[n], jnp.zeros(15), signals[0])
  np.testing.assert_allclose(one, path[0], atol=1e-6)


def test_protocol_switch_times_in_window():
  steps, dt, window = 120, 0.125, (1.0, 12.0)
  keys = jax.random.split(jax.random.PRNGKey(2), 400)
  signals, times = jax.vmap(
      lambda k: dynamics.protocol(k, steps, dt, window=window))(keys)
  signals, times = np.asarray(signals), np.asarray(times)
  fin = np.isfinite(times)
  assert ((times[fin] >= window[0]) & (times[fin] <= window[1])).all()
  # P(no Wnt withdrawal in the window) = exp(-0.12 * 11) = 0.27; BMP 0.46.
  assert 0.15 < (~fin[:, 0]).mean() < 0.40
  assert 0.33 < (~fin[:, 1]).mean() < 0.60
  t = np.arange(steps) * dt
  np.testing.assert_array_equal(signals[..., 0], t < times[:, :1])
  np.testing.assert_array_equal(signals[..., 1], t >= times[:, 1:])
  assert (signals[:, 0] == [1.0, 0.0]).all()
