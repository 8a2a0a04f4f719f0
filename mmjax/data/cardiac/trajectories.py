"""The examples of the cardiac dataset (reference recipe 004): early windows
of noisy differentiation trajectories of the Herrmann et al. (2012) cardiac
GRN (`network`, `dynamics`), labelled by the fixed point (one of the 6
`network.FATES`) each trajectory settles in. Deterministic in the seed.

One trajectory (`_trajectory`): start in the iPSC state (every gene 0), Wnt
on, BMP off; draw the signal protocol (`dynamics.protocol`: inside the
switching window t in SWITCH_WINDOW Wnt is withdrawn with hazard
hazards[0] and BMP switched on with hazard hazards[1], memoryless and
one-way, frozen after the window); integrate the chemical-Langevin
HillCube dynamics (`dynamics.simulate`, dt = DT, system size
SYSTEM_SIZE) for HORIZON steps (t = 44 tau, past the switching window by
32 tau); settle the last state noise-free under the final inputs
(`dynamics.settle`, 256 steps) and read its fixed point
(`dynamics.fate_of_continuous`). The label is that fixed point; the rare
trajectory that settles on no fixed point (label -1) is dropped.

What a model sees: `x` float32 [N, window, 15], the states after each of
the first `window` Euler steps (rows 1..window of the path: t = dt ..
window dt; row 0, the fixed start, carries nothing), all 15 nodes in
`network.NODES` order: the 13 integrated genes and, in columns 0 and 1,
the 2 input signals (Wnt, BMP; 0 or 1) that drive the next step. So the
window is the whole Markov state at every observed step, and the
probability of each fate given the window is the committor from its last
row (ceiling.py). Dropping the signal columns would make that only an
upper bound: keep them.

Two kinds of example:
  'protocol'  the plain protocol (HAZARDS), drawn by rejection on the
              label: trajectories are drawn in order (index 0, 1, ...;
              one key each) and each fate keeps the first `per_type` that
              reach it. Each kept trajectory is then an exact draw from
              the protocol's trajectories given their fate, and the
              classes are balanced (1/6 each) whatever the protocol's own
              (natural) fate frequencies. That changes the prior: the
              posterior of a protocol example under this dataset is the
              natural committor reweighted by (1/6) / natural share
              (ceiling.py); `natural_counts` counts the fates of every
              trajectory drawn, the estimate of the natural shares.
  'spatial'   position-dependent signalling: a position p ~ U[0, 1] on a
              medial (0) - lateral (1) axis sets both hazards to
              HAZARDS * SPATIAL_SPAN ** (p - 0.5), so Wnt is withdrawn
              later and BMP comes later medially, earlier laterally
              (Wnt kept medially, BMP laterally, as in the research
              notes), and p = 0.5 is the plain protocol. Not rejected:
              the label is whatever fate the trajectory reaches (natural
              prior given p).
`position` is p for a spatial example and 0.5 for a protocol one: the
plain protocol's hazards are exactly those at p = 0.5, so the feature is
the true hazard setting of every example and finite for any model (no
NaN to mask). A spatial position is exactly 0.5 with probability 0, so
position (or `kind`) still tells the kinds apart, which matters because
their class priors differ.

Scales (SCALES): per_type 1,000 / 1,500 / 2,000 per fate plus 500 / 750 /
1,000 spatial: 6,500 / 9,750 / 13,000 examples, the same 12:1 mix of
protocol and spatial at every scale. Scales are nested: the keys depend
only on (seed, kind, index) and batches have a fixed size (`batch`), so a
smaller scale's examples are exactly the first per_type of each fate and
the first spatial examples of a larger scale's (same `id`, same arrays):
the progressive-scaling driver compares like with like.

`make(...)` returns a dict of numpy arrays (N examples: protocol ones in
draw order, then spatial ones in draw order):
  x             float32 [N, window, 15] expression and signals, NODES order
  label         int32 [N] index into network.FATES
  position      float32 [N] p in [0, 1]; 0.5 for protocol examples
  kind          str [N] 'protocol' | 'spatial'
  id            str [N] '<kind>-<index:07d>', stable across scales
  index         int64 [N] draw index within the kind
  last_state    float32 [N, 15] = x[:, -1], the state the ceiling continues
  signal_state  float32 [N, 2] = x[:, -1, :2], (Wnt, BMP) at t_obs; a
                switch not yet made is pending (its hazard is memoryless,
                so ceiling.py redraws it given it has not happened)
  t_obs         float32 [] = window * dt, the time of last_state
  natural_counts int64 [7] fates 0..5 and -1 (last) of every protocol
                trajectory drawn (all batches computed): the natural
                shares' estimate (stopping once the rarest fate fills
                biases it by O(1 / draws), negligible)
Switch times are not returned (they are the future the label depends
on); `regenerate` recomputes any example's full record.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data import splits as splits_lib
from mmjax.data.cardiac import dynamics
from mmjax.data.cardiac import network

KINDS = ("protocol", "spatial")
NUM_FATES = len(network.FATES)
SCALES = {1: (1000, 500), 2: (1500, 750), 3: (2000, 1000)}  # per_type, spatial
WINDOW = 80
DT = dynamics.DT
SYSTEM_SIZE = dynamics.SYSTEM_SIZE
# Noisy steps per trajectory (t = 44 tau): the inputs freeze at t = 12,
# and 32 tau later a trajectory has long settled into its basin.
HORIZON = 352
SETTLE_STEPS = 256
SWITCH_WINDOW = (1.0, 12.0)
HAZARDS = (0.12, 0.07)        # Wnt withdrawal, BMP onset; per tau
# Hazard ratio from medial (p = 0) to lateral (p = 1): x0.5 .. x2.
SPATIAL_SPAN = 4.0
# Trajectories per jitted call; fixed (not scale-dependent) so that every
# scale computes the same batches and the scales nest bitwise.
BATCH = 512
FRACTIONS = (0.65, 0.25, 0.10)   # train, val, test (splits.SPLITS order)

# The simulation options (make, regenerate, ceiling.committor share them).
DEFAULTS = dict(dt=DT, horizon=HORIZON, system_size=SYSTEM_SIZE,
                switch_window=SWITCH_WINDOW, hazards=HAZARDS,
                spatial_span=SPATIAL_SPAN, settle_steps=SETTLE_STEPS)


def hazards_at(position, hazards=HAZARDS, spatial_span=SPATIAL_SPAN):
  """(Wnt withdrawal, BMP onset) hazards [..., 2] per tau at position
  [...] in [0, 1]: hazards * spatial_span ** (position - 0.5)."""
  p = jnp.asarray(position, jnp.float32)[..., None]
  return jnp.asarray(hazards, jnp.float32) * spatial_span ** (p - 0.5)


def label_of(key, x, signal, *, dt=DT, settle_steps=SETTLE_STEPS,
             **unused):
  """Fate index (int32; -1 for none) of a final state x [15] under its
  final inputs signal [2]: the labelling rule, shared with ceiling.py."""
  del unused
  settled = dynamics.settle(key, x, signal, dt=dt, steps=settle_steps)
  return dynamics.fate_of_continuous(settled)


def _trajectory(key, spatial, *, window, dt, horizon, system_size,
                switch_window, hazards, spatial_span, settle_steps):
  """One trajectory: (window [window, 15], label int32, position,
  switch times [2], full path [horizon + 1, 15])."""
  k_pos, k_sig, k_sim, k_settle = jax.random.split(key, 4)
  position = jnp.where(spatial, jax.random.uniform(k_pos), 0.5)
  rates = hazards_at(position, hazards, spatial_span)
  signals, times = dynamics.protocol(k_sig, horizon, dt,
                                     window=switch_window, hazards=rates)
  path = dynamics.simulate(k_sim, jnp.zeros(len(network.NODES)), signals,
                           dt=dt, steps=horizon, system_size=system_size)
  label = label_of(k_settle, path[-1], signals[-1], dt=dt,
                   settle_steps=settle_steps)
  return path[1:window + 1], label, position, times, path


@functools.lru_cache(maxsize=None)
def _batch_fn(window, options):
  fn = functools.partial(_trajectory, window=window, **dict(options))

  def run(seed, kind_index, indices):
    base = jax.random.fold_in(jax.random.PRNGKey(seed), kind_index)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(indices)
    spatial = kind_index == KINDS.index("spatial")
    return jax.vmap(fn, in_axes=(0, None))(keys, spatial)
  return jax.jit(run)


def simulation_options(**overrides):
  """DEFAULTS with `overrides`, as hashable Python scalars and tuples;
  TypeError on an unknown name."""
  unknown = set(overrides) - set(DEFAULTS)
  if unknown:
    raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))} "
                    f"(known: {', '.join(DEFAULTS)})")
  opts = dict(DEFAULTS, **overrides)
  opts["switch_window"] = tuple(float(v) for v in opts["switch_window"])
  opts["hazards"] = tuple(float(v) for v in opts["hazards"])
  for k in ("dt", "system_size", "spatial_span"):
    opts[k] = float(opts[k])
  for k in ("horizon", "settle_steps"):
    opts[k] = int(opts[k])
  return opts


def _run_batch(seed, kind, start, batch, window, opts):
  """(window, label, position, switch times, path) of trajectories
  start .. start + batch - 1 of `kind`, numpy. One compiled function for
  both kinds and make / regenerate, so both compute the same numbers."""
  if not 0 <= int(seed) < 2 ** 32:
    raise ValueError(f"seed {seed} must lie in [0, 2^32)")
  fn = _batch_fn(window, tuple(sorted(opts.items())))
  indices = jnp.arange(start, start + batch, dtype=jnp.uint32)
  out = fn(jnp.uint32(seed), jnp.uint32(KINDS.index(kind)), indices)
  return [np.asarray(a) for a in out]


def regenerate(seed, kind, indices, *, window=WINDOW, batch=BATCH,
               **options):
  """Recomputes examples `indices` (draw indices of `kind`) of make(seed,
  ...) with the same options and batch, in full: dict of
  x [n, window, 15], label int32 [n], position [n], switch_times [n, 2]
  (Wnt withdrawal, BMP onset; inf for none) and path [n, horizon + 1, 15]
  (row 0 the start). The same batches as make, so the same numbers."""
  opts = simulation_options(**options)
  indices = np.asarray(indices, np.int64)
  out = {k: [] for k in ("x", "label", "position", "switch_times", "path")}
  where = []
  for b in np.unique(indices // batch):
    at = np.flatnonzero(indices // batch == b)
    res = _run_batch(seed, kind, int(b * batch), batch, window, opts)
    for k, a in zip(out, res):
      out[k].append(a[indices[at] - b * batch])
    where.append(at)
  order = np.argsort(np.concatenate(where))
  cat = {k: np.concatenate(v)[order] for k, v in out.items()}
  cat["label"] = cat["label"].astype(np.int32)
  return cat


def make(scale=1, seed=0, *, window=WINDOW, per_type=None, spatial=None,
         batch=BATCH, max_draws=None, **options):
  """The examples of one scale (module docstring: fields and rules).

  Args:
    scale: 1, 2 or 3 (SCALES); per_type / spatial override its counts.
    seed: int; the examples depend only on (seed, options, batch).
    window: observed steps per example (its last at t_obs = window * dt).
    per_type: protocol examples per fate (rejection on the label).
    spatial: spatial examples (natural labels).
    batch: trajectories per jitted call; keep it fixed for nesting.
    max_draws: protocol draws after which an unfilled fate is an error
      (default 200 * 6 * per_type, at least one batch).
    **options: simulation options (DEFAULTS: dt, horizon, system_size,
      switch_window, hazards, spatial_span, settle_steps).

  Returns:
    dict of numpy arrays (module docstring).
  """
  if scale not in SCALES and (per_type is None or spatial is None):
    raise ValueError(f"scale {scale!r} is not one of {sorted(SCALES)}")
  opts = simulation_options(**options)
  if not 0 < window < opts["horizon"]:
    raise ValueError(f"window {window} must lie in (0, horizon "
                     f"{opts['horizon']})")
  per_type = SCALES[scale][0] if per_type is None else int(per_type)
  n_spatial = SCALES[scale][1] if spatial is None else int(spatial)
  max_draws = (max(200 * NUM_FATES * per_type, batch) if max_draws is None
               else int(max_draws))

  # Protocol: rejection on the label, first per_type of each fate in draw
  # order.
  kept = {k: [] for k in ("x", "label", "index")}
  have = np.zeros(NUM_FATES, np.int64)
  natural = np.zeros(NUM_FATES + 1, np.int64)
  start = 0
  while (have < per_type).any():
    if start >= max_draws:
      raise ValueError(f"after {start} protocol draws fates "
                       f"{np.flatnonzero(have < per_type).tolist()} have "
                       f"fewer than {per_type} trajectories (counts "
                       f"{natural.tolist()})")
    x, label, _, _, _ = _run_batch(seed, "protocol", start, batch,
                                   window, opts)
    natural += np.bincount(np.where(label < 0, NUM_FATES, label),
                           minlength=NUM_FATES + 1)
    take = np.zeros(batch, bool)
    for c in range(NUM_FATES):
      rows = np.flatnonzero(label == c)[:per_type - have[c]]
      take[rows] = True
      have[c] += len(rows)
    kept["x"].append(x[take])
    kept["label"].append(label[take])
    kept["index"].append(start + np.flatnonzero(take))
    start += batch

  # Spatial: the first n_spatial trajectories that reach a fixed point.
  sp = {k: [] for k in ("x", "label", "index", "position")}
  got, start = 0, 0
  while got < n_spatial:
    if start >= max(200 * n_spatial, batch):
      raise ValueError(f"spatial: only {got} of {start} trajectories "
                       "reached a fixed point")
    x, label, position, _, _ = _run_batch(seed, "spatial", start, batch,
                                          window, opts)
    rows = np.flatnonzero(label >= 0)[:n_spatial - got]
    sp["x"].append(x[rows])
    sp["label"].append(label[rows])
    sp["position"].append(position[rows])
    sp["index"].append(start + rows)
    got += len(rows)
    start += batch

  def cat(parts, dtype, shape=(0,)):
    return (np.concatenate(parts).astype(dtype) if parts
            else np.zeros(shape, dtype))

  n_p = int(have.sum())
  xs = cat(kept["x"] + sp["x"], np.float32, (0, window, len(network.NODES)))
  index = cat(kept["index"] + sp["index"], np.int64)
  kind = np.array(["protocol"] * n_p + ["spatial"] * got)
  return {
      "x": xs,
      "label": cat(kept["label"] + sp["label"], np.int32),
      "position": np.concatenate([np.full(n_p, 0.5, np.float32),
                                  cat(sp["position"], np.float32)]),
      "kind": kind,
      "id": np.array([f"{k}-{i:07d}" for k, i in zip(kind, index)]),
      "index": index,
      "last_state": xs[:, -1].copy(),
      "signal_state": xs[:, -1, :2].copy(),
      "t_obs": np.float32(window * opts["dt"]),
      "natural_counts": natural,
  }


def scale_levels(labels, kinds, index, scales=None):
  """The smallest scale whose build holds each example: int32 [N] in
  1..len(SCALES) (len(SCALES) + 1 past the largest).

  Scales nest (module docstring): a protocol example belongs to scale s
  when it is among the first SCALES[s][0] of its fate in draw order, a
  spatial one when its draw index is below SCALES[s][1]. So a scale's
  examples are read off a larger build without building it.

  Args:
    labels: int [N] fates; kinds: str [N] 'protocol' | 'spatial';
    index: int [N] draw index within the kind (ids '<kind>-<index>').
    scales: {scale: (per_type, spatial)}, default SCALES; reduced_scales
      gives a reduced build's.
  """
  scales_def = SCALES if scales is None else scales
  labels, kinds = np.asarray(labels), np.asarray(kinds)
  index = np.asarray(index, np.int64)
  rank = index.copy()  # spatial: the draw index
  proto = np.flatnonzero(kinds == "protocol")
  order = proto[np.argsort(index[proto], kind="stable")]
  for fate in np.unique(labels[order]):
    mine = order[labels[order] == fate]
    rank[mine] = np.arange(len(mine))
  scales = sorted(scales_def)
  levels = np.full(len(labels), len(scales) + 1, np.int32)
  for s in reversed(scales):
    per_type, spatial = scales_def[s]
    limit = np.where(kinds == "protocol", per_type, spatial)
    levels[rank < limit] = s
  return levels


def reduced_scales(per_type, spatial):
  """SCALES shrunk in proportion to a reduced build (per_type, spatial
  examples at the largest scale), so that its scales still nest in three
  levels (tests, smoke runs)."""
  top = SCALES[max(SCALES)]
  return {s: (max(1, round(per_type * p / top[0])),
              max(1, round(spatial * q / top[1])) if spatial else 0)
          for s, (p, q) in SCALES.items()}


def split(labels, seed, kind=None, fractions=FRACTIONS):
  """Stratified train/val/test split, 65/25/10 by default.

  Args:
    labels: int [N] fate of each example.
    seed: split seed (splits.stratified_split).
    kind: optional str [N] ('protocol' / 'spatial'): stratify by (kind,
      label), so each split also holds the kinds in proportion.
    fractions: one per splits.SPLITS part.

  Returns:
    {'train', 'val', 'test'}: sorted int64 index arrays, disjoint, covering
    range(N), every stratum in proportion within one example.
  """
  strata = np.asarray(labels).astype(np.int64)
  if kind is not None:
    strata = strata + NUM_FATES * (np.asarray(kind) == "spatial")
  parts = splits_lib.stratified_split(strata, seed, fractions)
  return dict(zip(splits_lib.SPLITS, parts))
