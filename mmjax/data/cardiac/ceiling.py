"""Bayes-optimal accuracy of the cardiac dataset (trajectories.py), by the
committor.

The process is Markov in (state, time, signal protocol state) and the
window shows the whole state at every step, so P(fate | window) is the
probability of each fate from the window's last row: the committor q(x,
signal, position, t_obs). `committor` estimates it by simulating fresh
continuations from the last observed state to the labelling rule
(trajectories.label_of), with the same dynamics, horizon and settling as
the labels. The protocol's pending switches are part of the state: a
switch already made (read off the signal columns) stays made; one not yet
made at t_obs has, by the memoryless hazard, a remaining time
Exp(hazard) from max(t_obs, window start), and none if that falls after
the switching window's end, which is the exact conditional law given that
it has not happened by t_obs. The hazards come from the example's
position (0.5 for protocol examples). Continuations that settle on no
fixed point are left out of q, as make drops such trajectories.

Class balance. Protocol examples are drawn by rejection on the label, one
share s_k = 1/6 per fate instead of the protocol's natural share pi_k, so
under the dataset P(fate k | window) is proportional to w_k q_k with
w_k = s_k / pi_k (rejection keeps each trajectory of fate k with a
probability proportional to s_k / pi_k, whatever its window). `weights`
builds w per example from make's `natural_counts` (the fates of every
protocol trajectory drawn: the natural shares, estimated from the same
simulations); spatial examples keep their natural prior, w = 1.
`bayes_accuracy` renormalises w q per example.

Estimators of E[max_k q_k] over examples (the Bayes-optimal accuracy) from
two independent halves q_a, q_b of the continuations:
  plug_in     mean max_k q^_k of the pooled halves: biased up (Jensen: the
              max of a noisy estimate overshoots on average).
  split_half  choose k* = argmax q^_a and score q^_b[k*], and the reverse,
              averaged: the accuracy of a rule chosen without looking at
              the scoring half, so biased down (no rule beats the Bayes
              one); with reweighting, up to the small ratio bias of the
              renormalisation.
Both converge to E[max q] as continuations grow; equal when q_a = q_b
exactly.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.cardiac import dynamics
from mmjax.data.cardiac import trajectories

NUM_FATES = trajectories.NUM_FATES
# Continuations per jitted call (examples x continuations, flattened).
BATCH = 4096


def _continuation(key, x, signal, position, *, window, dt, horizon,
                  system_size, switch_window, hazards, spatial_span,
                  settle_steps):
  """Fate (int32, -1 for none) of one continuation of x [15] from step
  `window` (t_obs = window dt) to the labelling rule."""
  k_sig, k_sim, k_settle = jax.random.split(key, 3)
  rates = trajectories.hazards_at(position, hazards, spatial_span)
  t_obs = window * dt
  t0, t1 = switch_window
  # Memoryless: a pending switch happens Exp(rate) after max(t_obs, t0),
  # and never if that is past t1 (as dynamics.protocol draws it).
  times = jnp.maximum(t_obs, t0) + jax.random.exponential(
      k_sig, (2,), jnp.float32) / rates
  times = jnp.where(times <= t1, times, jnp.inf)
  # The same float32 grid as dynamics.protocol's steps window..horizon-1.
  t = jnp.arange(horizon, dtype=jnp.float32)[window:] * dt
  wnt = (signal[0] > 0.5) & (t < times[0])
  bmp = (signal[1] > 0.5) | (t >= times[1])
  signals = jnp.stack([wnt, bmp], -1).astype(jnp.float32)
  path = dynamics.simulate(k_sim, x, signals, dt=dt, steps=horizon - window,
                           system_size=system_size)
  return trajectories.label_of(k_settle, path[-1], signals[-1], dt=dt,
                               settle_steps=settle_steps)


@functools.lru_cache(maxsize=None)
def _batch_fn(window, options):
  fn = functools.partial(_continuation, window=window, **dict(options))

  def run(key, example, rep, x, signal, position):
    keys = jax.vmap(lambda i, j: jax.random.fold_in(
        jax.random.fold_in(key, i), j))(example, rep)
    return jax.vmap(fn)(keys, x, signal, position)
  return jax.jit(run)


def committor(key, last_state, signal_state, *, position=None,
              window=trajectories.WINDOW, continuations=64, batch=BATCH,
              return_counts=False, **options):
  """Fate probabilities from each example's last observed state.

  Args:
    key: PRNG key; continuation j of example i uses
      fold_in(fold_in(key, i), j), so a different key gives an
      independent half.
    last_state: float [N, 15] (make's last_state, row `window` of the path).
    signal_state: float [N, 2] (Wnt, BMP) at t_obs (make's signal_state).
    position: float [N] hazard position (make's position; default 0.5,
      the plain protocol).
    window: the step of last_state (t_obs = window * dt).
    continuations: per example.
    batch: continuations per jitted call (fixed, padded).
    return_counts: also return the counts.
    **options: trajectories.DEFAULTS options, as given to make.

  Returns:
    q float64 [N, 6]: share of each fate among the continuations that
    reach a fixed point (uniform where none does); with return_counts,
    (q, counts int64 [N, 7]: fates 0..5 and -1 last).
  """
  opts = trajectories.simulation_options(**options)
  x = np.asarray(last_state, np.float32)
  sig = np.asarray(signal_state, np.float32)
  n = len(x)
  pos = (np.full(n, 0.5, np.float32) if position is None
         else np.asarray(position, np.float32))
  example = np.repeat(np.arange(n, dtype=np.uint32), continuations)
  rep = np.tile(np.arange(continuations, dtype=np.uint32), n)
  total = len(example)
  fn = _batch_fn(int(window), tuple(sorted(opts.items())))
  fates = np.empty(total, np.int64)
  for start in range(0, total, batch):
    rows = np.arange(start, start + batch) % max(total, 1)
    e = example[rows]
    out = fn(key, e, rep[rows], x[e], sig[e], pos[e])
    m = min(batch, total - start)
    fates[start:start + m] = np.asarray(out)[:m]
  counts = np.zeros((n, NUM_FATES + 1), np.int64)
  np.add.at(counts, (example.astype(np.int64),
                     np.where(fates < 0, NUM_FATES, fates)), 1)
  valid = counts[:, :NUM_FATES].sum(1, keepdims=True)
  q = np.where(valid > 0, counts[:, :NUM_FATES] / np.maximum(valid, 1),
               1.0 / NUM_FATES)
  return (q, counts) if return_counts else q


def natural_shares(natural_counts):
  """float64 [6]: fate shares of the natural protocol from make's
  natural_counts [7] (the -1 column left out, as make drops it)."""
  c = np.asarray(natural_counts, np.float64)[:NUM_FATES]
  return c / c.sum()


def class_weights(dataset_share, natural_share):
  """w_k = dataset_share_k / natural_share_k ([..., 6]): the factor by
  which rejection on the label changes the prior of fate k."""
  return (np.asarray(dataset_share, np.float64)
          / np.asarray(natural_share, np.float64))


def weights(kind, natural_counts):
  """float64 [N, 6] prior weights of make's examples: balanced protocol
  examples (1/6 each) get class_weights(1/6, natural_shares), spatial ones
  (natural labels) 1."""
  kind = np.asarray(kind)
  w = class_weights(np.full(NUM_FATES, 1.0 / NUM_FATES),
                    natural_shares(natural_counts))
  return np.where((kind == "protocol")[:, None], w[None], 1.0)


def reweight(q, w=None):
  """q [N, 6] reweighted by w ([6] or [N, 6]; None: unchanged) and
  renormalised per row: the posterior under the dataset's class prior."""
  q = np.asarray(q, np.float64)
  if w is None:
    return q
  p = q * np.asarray(w, np.float64)
  return p / p.sum(-1, keepdims=True)


def bayes_accuracy(q_a, q_b, labels_prior_weights=None):
  """Bayes-optimal accuracy E[max_k q_k] from two independent halves.

  Args:
    q_a, q_b: float [N, 6] committor estimates from disjoint, equally
      many continuations (committor with two keys).
    labels_prior_weights: None (natural prior), or w [6] / [N, 6]
      (`weights`): the estimates are those of reweight(q, w).

  Returns:
    dict of floats: plug_in (biased up), split_half (biased down), each
    with its standard error over examples (plug_in_se, split_half_se),
    and n (examples).
  """
  w = labels_prior_weights
  qa, qb = reweight(q_a, w), reweight(q_b, w)
  pooled = reweight((np.asarray(q_a, np.float64)
                     + np.asarray(q_b, np.float64)) / 2, w)
  plug = pooled.max(-1)
  rows = np.arange(len(qa))
  split = 0.5 * (qb[rows, qa.argmax(-1)] + qa[rows, qb.argmax(-1)])
  n = len(rows)
  se = lambda v: float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
  return {"plug_in": float(plug.mean()), "split_half": float(split.mean()),
          "plug_in_se": se(plug), "split_half_se": se(split), "n": n}
