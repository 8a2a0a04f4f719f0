"""Continuous, noisy dynamics of the Herrmann et al. (2012) cardiac GRN
(`network`), in JAX.

Continuous rules (HillCube; Wittmann, Krumsiek, Saez-Rodriguez,
Lauffenburger, Klamt and Theis (2009), "Transforming Boolean models to
continuous models: methodology and application to T-cell receptor
signaling", BMC Syst Biol 3:98; the construction `scanpy.tl.sim` uses): each
node's truth table B_i over its m regulators j_1..j_m is interpolated
multilinearly over Hill-transformed regulator levels,

  B^_i(x) = sum_{b in {0,1}^m} B_i(b) prod_k [b_k h(x_jk) + (1-b_k)(1-h(x_jk))],
  h(x) = x^n / (x^n + k^n) * (1 + k^n)   (normalised Hill: h(0)=0, h(1)=1),

so B^_i equals B_i at the corners of the unit cube and every Boolean fixed
point is a fixed point of dx/dt = (B^(x) - x) / tau. Defaults n=4, k=0.5,
tau=1 (the research prototype's).

Units: x is a dimensionless expression level in [0, 1] per node; time is in
units of tau (the relaxation time of a node's expression), so dt, switch
times and protocol windows are all in those units.

Noise (chemical Langevin, the form SERGIO uses): production B^_i/tau and
degradation x_i/tau, system size Omega (`system_size`; larger = quieter,
inf = deterministic). One Euler-Maruyama step of size dt:

  x_i <- clip(x_i + (B^_i - x_i) dt/tau
              + sqrt((B^_i + x_i) / (tau Omega)) sqrt(dt) xi_i, 0, 1),
  xi_i ~ N(0, 1) independent.

The clip to [0, 1] (every step) differs from the research prototype, which
clipped only at 0 (its h was clipped at 1): above 1 the drift pulls back
anyway, and clipping keeps h in [0, 1] and states in the documented range.

The 2 input nodes (`network.INPUTS`: Wnt, BMP) are not integrated: their
level is the signal protocol's (`signals` [steps, 2], columns in INPUTS
order, 0 or 1 for off or on; intermediate levels pass through h). State row
s (time s dt) holds signals[s] in the input columns, the signal that drives
the step from s to s + 1; the last row holds signals[steps - 1].

A trajectory's fate is the Boolean fixed point its state rounds to
(x > 0.5; `fate_of_continuous`, -1 if the rounded state is not one), read
after `settle`: a long noise-free continuation (system_size = inf) under
the final inputs, so the label is the fixed point whose deterministic basin
holds the final noisy state. Rounding the noisy state itself is not enough:
at Omega = 15 an ON gene's noise is wide enough that many noisy states
round to no fixed point (tests/test_cardiac_data.py checks that settled
labels are fixed points).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.data.cardiac import network

HILL_N = 4.0
HILL_K = 0.5
TAU = 1.0
# The research prototype's step and system size.
DT = 0.125
SYSTEM_SIZE = 15.0

_INPUTS = np.asarray(network.INPUT_INDICES)
# 1 for the 13 integrated nodes, 0 for the inputs.
_GENE_MASK = np.ones(len(network.NODES), np.float32)
_GENE_MASK[_INPUTS] = 0.0


def hill(x, n=HILL_N, k=HILL_K):
  """Normalised Hill function x^n / (x^n + k^n) * (1 + k^n), same shape as
  x; hill(0) = 0 and hill(1) = 1 exactly."""
  xn = x ** n
  kn = k ** n
  # (1 + k^n) / (x^n + k^n) rounds to exactly 1 at x = 1, so corners stay
  # exact in float32.
  return xn * (1.0 + kn) / (xn + kn)


def cube(h, tables=None):
  """Multilinear interpolation of every node's truth table.

  h: [..., 15] regulator levels already passed through `hill`.
  tables: `network.truth_tables()` layout (default: the Herrmann network).
  Returns B^(h) [..., 15]; equals `network.update` at 0/1 corners.
  """
  tables = network.truth_tables() if tables is None else tables
  out = []
  for regs, table in tables:
    m = len(regs)
    t = jnp.asarray(np.asarray(table).reshape((2,) * m), h.dtype)
    # Contract the last table axis (regulator k) with (1 - h, h); axes
    # 0..k-1 remain after it, behind the batch axes of h.
    for k in range(m - 1, -1, -1):
      hk = h[..., regs[k]][(...,) + (None,) * k]
      t = t[..., 0] * (1.0 - hk) + t[..., 1] * hk
    out.append(jnp.broadcast_to(t, h.shape[:-1]))
  return jnp.stack(out, axis=-1)


def _production(x, inputs_on, tables, n, k):
  """(x with the inputs set [..., 15], B^ [..., 15])."""
  x = jnp.asarray(x, jnp.float32)
  x = x.at[..., _INPUTS].set(jnp.asarray(inputs_on, x.dtype))
  return x, cube(hill(x, n, k), tables)


def drift(x, inputs_on, tables=None, n=HILL_N, k=HILL_K, tau=TAU):
  """dx/dt = (B^(x) - x) / tau, [..., 15] per unit time; 0 on the inputs.

  x: [..., 15] levels; inputs_on: [..., 2] input levels (INPUTS order),
  which replace x's input columns.
  """
  x, b = _production(x, inputs_on, tables, n, k)
  return (b - x) / tau * _GENE_MASK


def _integrate(key, x0, signals, dt, system_size, tables, n, k, tau,
               keep_path):
  """Euler-Maruyama over signals [steps, 2]; the path [steps + 1, 15] or
  the last state [15]."""
  signals = jnp.asarray(signals, jnp.float32)
  x0 = jnp.clip(jnp.asarray(x0, jnp.float32), 0.0, 1.0)
  x0 = x0.at[_INPUTS].set(signals[0])

  # Row s + 1 shows the signal that drives its own next step.
  following = jnp.concatenate([signals[1:], signals[-1:]], axis=0)

  def step(x, inp):
    sig, sig_next, k_step = inp
    x, b = _production(x, sig, tables, n, k)
    noise = jnp.sqrt(jnp.maximum(b + x, 0.0) / (tau * system_size) * dt)
    xi = jax.random.normal(k_step, x.shape, x.dtype)
    x_new = x + _GENE_MASK * ((b - x) / tau * dt + noise * xi)
    x_new = jnp.clip(x_new, 0.0, 1.0).at[_INPUTS].set(sig_next)
    return x_new, x_new

  keys = jax.random.split(key, signals.shape[0])
  last, path = jax.lax.scan(step, x0, (signals, following, keys))
  if not keep_path:
    return last
  return jnp.concatenate([x0[None], path], axis=0)


def simulate(key, x0, signals, *, dt=DT, steps, system_size=SYSTEM_SIZE,
             tables=None, n=HILL_N, k=HILL_K, tau=TAU):
  """One chemical-Langevin trajectory.

  key: PRNG key; x0: [15] start levels (its input columns are replaced by
  signals[0]); signals: [steps, 2] Wnt, BMP levels per step; dt: step
  (time units of tau); steps: Python int (static); system_size: Omega
  (jnp.inf for deterministic dynamics).
  Returns float32 [steps + 1, 15] in [0, 1]: row s is the state at time
  s dt.

  Pure, so jit it with steps (and tables) bound, e.g.
  jax.jit(jax.vmap(functools.partial(simulate, dt=DT, steps=352))) over
  (key, x0, signals).
  """
  if jnp.shape(signals)[0] != steps:
    raise ValueError(f"signals has {jnp.shape(signals)[0]} steps, not "
                     f"{steps}")
  return _integrate(key, x0, signals, dt, system_size, tables, n, k, tau,
                    keep_path=True)


def settle(key, x, signal, *, dt=DT, steps=256, system_size=jnp.inf,
           tables=None, n=HILL_N, k=HILL_K, tau=TAU):
  """The state [15] after continuing x [15] for `steps` steps of dt under
  the constant input levels signal [2]: by default noise-free (key unused)
  for 256 steps = 32 tau at the default dt, a few tau more than relaxing
  into a fixed point takes. A finite system_size continues the noise.
  """
  signals = jnp.broadcast_to(jnp.asarray(signal, jnp.float32), (steps, 2))
  return _integrate(key, x, signals, dt, system_size, tables, n, k, tau,
                    keep_path=False)


_FIXED_POINTS = jnp.asarray(network.FIXED_POINTS)


def fate_of_continuous(x):
  """int32 [...]: index into network.FATES of the fixed point x [..., 15]
  rounds to (x > 0.5), -1 if the rounded state is not a fixed point."""
  hit = ((jnp.asarray(x) > 0.5)[..., None, :] == _FIXED_POINTS).all(-1)
  return jnp.where(hit.any(-1), jnp.argmax(hit, -1), -1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("steps",))
def protocol(key, steps, dt=DT, *, window=(1.0, 12.0), hazards=(0.12, 0.07)):
  """A GiWi-like signal protocol: Wnt on from t = 0, BMP off.

  Inside window (t0, t1) Wnt is withdrawn with hazard hazards[0] and BMP
  switched on with hazard hazards[1] (per unit time), independently: each
  switch time is t0 + Exp(hazard), and a time past t1 means no switch (the
  inputs are frozen after t1, so a trajectory may keep Wnt on, or never
  see BMP). Each switch is one-way.

  Returns (signals float32 [steps, 2], times float32 [2]): signals[s] =
  (Wnt, BMP) at time s dt, Wnt = s dt < times[0] and BMP = s dt >=
  times[1]; times = (Wnt withdrawal, BMP onset), inf where none.
  """
  t0, t1 = window
  rate = jnp.asarray(hazards, jnp.float32)
  times = t0 + jax.random.exponential(key, (2,), jnp.float32) / rate
  times = jnp.where(times <= t1, times, jnp.inf)
  t = jnp.arange(steps, dtype=jnp.float32) * dt
  signals = jnp.stack([t < times[0], t >= times[1]], -1)
  return signals.astype(jnp.float32), times
