"""The cardiac dataset (trajectories.py) and its Bayes ceiling (ceiling.py),
on tiny builds: determinism, nested scales, counts, shapes and dtypes,
labels that are the fate reached, stratified splits, continuations that
redraw the pending switches, and the ceiling estimators and class
reweighting on toy posteriors."""

import jax
import numpy as np
import pytest

from mmjax.data.cardiac import ceiling
from mmjax.data.cardiac import dynamics
from mmjax.data.cardiac import network
from mmjax.data.cardiac import trajectories

# Small batches: a few dozen draws fill 3 per fate (the rarest is ~13%).
SMALL = dict(per_type=3, spatial=4, batch=64)
LARGER = dict(per_type=5, spatial=6, batch=64)


@pytest.fixture(scope="module")
def small():
  return trajectories.make(seed=0, **SMALL)


@pytest.fixture(scope="module")
def larger():
  return trajectories.make(seed=0, **LARGER)


def test_scales_are_the_recipes():
  totals = {s: 6 * p + n for s, (p, n) in trajectories.SCALES.items()}
  assert totals == {1: 6500, 2: 9750, 3: 13000}


def test_shapes_dtypes_counts(small):
  n = 6 * 3 + 4
  assert small["x"].shape == (n, 80, 15) and small["x"].dtype == np.float32
  assert small["label"].shape == (n,) and small["label"].dtype == np.int32
  assert small["position"].dtype == np.float32
  assert small["index"].dtype == np.int64
  assert small["kind"].tolist() == ["protocol"] * 18 + ["spatial"] * 4
  assert len(set(small["id"])) == n
  protocol = small["kind"] == "protocol"
  np.testing.assert_array_equal(np.bincount(small["label"][protocol],
                                            minlength=6), [3] * 6)
  assert ((small["label"] >= 0) & (small["label"] < 6)).all()
  assert (small["position"][protocol] == 0.5).all()
  pos = small["position"][~protocol]
  assert ((pos >= 0) & (pos <= 1)).all() and (pos != 0.5).all()
  x = small["x"]
  assert x.min() >= 0 and x.max() <= 1
  assert set(np.unique(x[..., :2])) <= {0.0, 1.0}
  assert (x[:, 0, 0] == 1).all()  # Wnt on at t = dt (window starts at 1)
  np.testing.assert_array_equal(small["last_state"], x[:, -1])
  np.testing.assert_array_equal(small["signal_state"], x[:, -1, :2])
  assert float(small["t_obs"]) == 80 * dynamics.DT
  nat = small["natural_counts"]
  assert nat.shape == (7,) and nat.sum() % 64 == 0
  assert (nat[:6] >= 3).all()
  # Draw order within each kind.
  for k in trajectories.KINDS:
    idx = small["index"][small["kind"] == k]
    assert (np.diff(idx) > 0).all()


def test_same_seed_same_arrays(small):
  again = trajectories.make(seed=0, **SMALL)
  assert again.keys() == small.keys()
  for k in small:
    np.testing.assert_array_equal(again[k], small[k], err_msg=k)
  other = trajectories.make(seed=1, per_type=1, spatial=1, batch=64)
  assert not np.array_equal(other["x"][0], small["x"][0])


def test_scales_nest(small, larger):
  assert set(small["id"]) < set(larger["id"])
  at = {i: r for r, i in enumerate(larger["id"])}
  rows = np.array([at[i] for i in small["id"]])
  for k in ("x", "label", "position", "kind", "index", "last_state",
            "signal_state"):
    np.testing.assert_array_equal(small[k], larger[k][rows], err_msg=k)
  # The smaller scale holds the first examples of each fate and kind.
  for c in range(6):
    big = larger["index"][(larger["kind"] == "protocol")
                          & (larger["label"] == c)]
    sm = small["index"][(small["kind"] == "protocol") & (small["label"] == c)]
    np.testing.assert_array_equal(sm, big[:3])
  np.testing.assert_array_equal(
      small["index"][small["kind"] == "spatial"],
      larger["index"][larger["kind"] == "spatial"][:4])


def test_labels_are_the_fate_reached(small):
  t_end = trajectories.HORIZON * dynamics.DT
  t0, t1 = trajectories.SWITCH_WINDOW
  for kind in trajectories.KINDS:
    rows = np.flatnonzero(small["kind"] == kind)[[0, -1, 1]]
    full = trajectories.regenerate(0, kind, small["index"][rows], batch=64)
    np.testing.assert_array_equal(full["x"], small["x"][rows])
    np.testing.assert_array_equal(full["label"], small["label"][rows])
    np.testing.assert_array_equal(full["position"], small["position"][rows])
    np.testing.assert_array_equal(full["path"][:, 1:81], small["x"][rows])
    times = full["switch_times"]
    fin = np.isfinite(times)
    assert ((times[fin] >= t0) & (times[fin] <= t1)).all()
    # The signal columns are the protocol of those switch times.
    # Row r shows the signal of step r (the last row repeats the one
    # before).
    s = np.arange(1, trajectories.HORIZON) * dynamics.DT
    np.testing.assert_array_equal(full["path"][:, 1:-1, 0],
                                  s < times[:, :1])
    np.testing.assert_array_equal(full["path"][:, 1:-1, 1],
                                  s >= times[:, 1:])
    # Settling the last noisy state under the final inputs gives the
    # label, a fixed point with those inputs.
    final = np.stack([~fin[:, 0], fin[:, 1]], -1).astype(np.float32)
    np.testing.assert_array_equal(full["path"][:, -1, :2], final)
    settled = jax.vmap(dynamics.settle)(
        jax.random.split(jax.random.PRNGKey(0), len(rows)),
        full["path"][:, -1], final)
    np.testing.assert_array_equal(dynamics.fate_of_continuous(settled),
                                  small["label"][rows])
    np.testing.assert_array_equal(
        network.FIXED_POINTS[small["label"][rows], :2], final.astype(bool))
    assert t_end > t1


def test_split_is_stratified_and_disjoint(small):
  labels = np.repeat(np.arange(6), 100)
  kind = np.array(["protocol"] * 560 + ["spatial"] * 40)
  parts = trajectories.split(labels, seed=3, kind=kind)
  assert list(parts) == ["train", "val", "test"]
  sizes = [len(p) for p in parts.values()]
  assert sizes == [390, 150, 60]
  np.testing.assert_array_equal(np.sort(np.concatenate(list(parts.values()))),
                                np.arange(600))
  for frac, p in zip(trajectories.FRACTIONS, parts.values()):
    per_class = np.bincount(labels[p], minlength=6)
    assert np.abs(per_class - 100 * frac).max() <= 1
    assert abs((kind[p] == "spatial").sum() - 40 * frac) <= 1
  again = trajectories.split(labels, seed=3, kind=kind)
  for k in parts:
    np.testing.assert_array_equal(parts[k], again[k])
  tiny = trajectories.split(small["label"], 0, small["kind"])
  assert sum(len(p) for p in tiny.values()) == len(small["label"])
  assert all(len(p) for p in tiny.values())


def test_continuations_redraw_pending_switches():
  # From each fixed point, noise-free: at position 0 the hazards are ~0
  # (nothing switches, every fate stays); at position 1 they are huge, so
  # a pending Wnt withdrawal and BMP onset happen right after t_obs.
  fp = network.FIXED_POINTS.astype(np.float32)
  opts = dict(system_size=np.inf, switch_window=(1.0, 30.0),
              hazards=(1.0, 1.0), spatial_span=1e12, continuations=4,
              batch=64)
  key = jax.random.PRNGKey(0)
  stay = ceiling.committor(key, fp, fp[:, :2], position=np.zeros(6), **opts)
  np.testing.assert_array_equal(stay, np.eye(6))
  go = ceiling.committor(key, fp, fp[:, :2], position=np.ones(6), **opts)
  # No Wnt, BMP on: non-cardiac / FHF become their BMP twins, Wnt
  # mesoderm and SHF lose Wnt and end under BMP (FHF under BMP here).
  np.testing.assert_array_equal(go.argmax(-1), [2, 3, 2, 3, 3, 3])
  assert (go.max(-1) == 1).all()
  # Switches already past the window's end never happen.
  frozen = ceiling.committor(key, fp, fp[:, :2], position=np.ones(6),
                             window=80, **dict(opts, switch_window=(1., 5.)))
  np.testing.assert_array_equal(frozen, np.eye(6))


def test_committor_noisy_rows(small):
  args = (small["last_state"][:3], small["signal_state"][:3])
  q, counts = ceiling.committor(jax.random.PRNGKey(5), *args,
                                position=small["position"][:3],
                                continuations=8, batch=64,
                                return_counts=True)
  assert q.shape == (3, 6) and counts.shape == (3, 7)
  assert (counts.sum(1) == 8).all()
  np.testing.assert_allclose(q.sum(1), 1)
  again = ceiling.committor(jax.random.PRNGKey(5), *args,
                            position=small["position"][:3],
                            continuations=8, batch=64)
  np.testing.assert_array_equal(q, again)


def test_bayes_accuracy_exact_on_exact_q():
  rng = np.random.default_rng(0)
  q = rng.dirichlet(np.ones(6) * 0.5, size=50)
  out = ceiling.bayes_accuracy(q, q)
  assert out["n"] == 50
  assert out["plug_in"] == pytest.approx(q.max(-1).mean(), abs=1e-12)
  assert out["split_half"] == pytest.approx(q.max(-1).mean(), abs=1e-12)
  onehot = np.eye(6)[rng.integers(0, 6, 20)]
  assert ceiling.bayes_accuracy(onehot, onehot)["split_half"] == 1.0


def test_bayes_accuracy_brackets_the_truth():
  # Halves of 16 continuations each from known posteriors: on average the
  # plug-in overshoots E[max q] and split-half undershoots it.
  rng = np.random.default_rng(1)
  q = rng.dirichlet(np.ones(6), size=200)
  truth = q.max(-1).mean()
  plug, split = [], []
  for _ in range(100):
    qa = np.stack([rng.multinomial(16, p) for p in q]) / 16
    qb = np.stack([rng.multinomial(16, p) for p in q]) / 16
    out = ceiling.bayes_accuracy(qa, qb)
    plug.append(out["plug_in"])
    split.append(out["split_half"])
  assert np.mean(plug) > truth + 0.01
  assert np.mean(split) < truth - 0.01
  assert np.mean(plug) - np.mean(split) < 0.15


def test_reweighting_is_the_rejection_posterior():
  # Toy: x in {0, 1, 2}, fate y | x ~ q[x]. Balancing the fates by
  # rejection turns P(y | x) into q[x] * w / sum, w = (1/K) / natural share.
  rng = np.random.default_rng(2)
  px = np.array([0.5, 0.3, 0.2])
  q = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]])
  natural = px @ q
  w = ceiling.class_weights(np.full(3, 1 / 3), natural)
  np.testing.assert_allclose(w, (1 / 3) / natural)
  want = ceiling.reweight(q, w)
  np.testing.assert_allclose(want.sum(-1), 1)
  np.testing.assert_allclose(want, q * w / (q * w).sum(-1, keepdims=True))
  x = rng.choice(3, size=400_000, p=px)
  y = (rng.random(len(x))[:, None] > np.cumsum(q[x], -1)).sum(-1)
  per = np.bincount(y).min()
  keep = np.concatenate([np.flatnonzero(y == c)[:per] for c in range(3)])
  for xv in range(3):
    got = np.bincount(y[keep][x[keep] == xv], minlength=3)
    np.testing.assert_allclose(got / got.sum(), want[xv], atol=0.01)
  # A balanced toy is unchanged by its weights.
  np.testing.assert_allclose(ceiling.reweight(q, np.ones(3)), q)


def test_weights_per_example(small):
  w = ceiling.weights(small["kind"], small["natural_counts"])
  nat = ceiling.natural_shares(small["natural_counts"])
  assert nat.sum() == pytest.approx(1.0)
  protocol = small["kind"] == "protocol"
  np.testing.assert_allclose(w[protocol], np.broadcast_to(
      (1 / 6) / nat, (protocol.sum(), 6)))
  assert (w[~protocol] == 1).all()
  q = np.full((len(w), 6), 1 / 6)
  np.testing.assert_allclose(ceiling.reweight(q, w)[protocol][0],
                             ((1 / 6) / nat) / ((1 / 6) / nat).sum())
