"""Random two-band tight-binding models of 2-D materials.

Pure numpy. A model lives on a square lattice (lattice constant 1) with two
orbitals per cell, both at the cell origin. Its Bloch Hamiltonian is

  H(k) = sum_R T_R exp(i k.R),   T_{-R} = T_R^dagger,

with R = 0 (on-site, Hermitian) and the three neighbour shells
  shell 1: +-x, +-y;  shell 2: +-x+-y;  shell 3: +-2x, +-2y.
Only the "half" set HALF_R = (x, y, x+y, x-y, 2x, 2y) is stored; the other
half follows from Hermiticity. Energies are in eV, k in units of 1/a.

The label of a model (`chern.label_models`) is whether the Chern number C of
its occupied (lower) band is non-zero (topological, label 1) or zero
(trivial, label 0); its features are in `tb_features`, the balanced dataset
in `tb_generation`.
"""

import functools

import numpy as np

# Stored hopping vectors (integer lattice vectors) and their shell index.
HALF_R = np.array([[1, 0], [0, 1], [1, 1], [1, -1], [2, 0], [0, 2]])
HALF_R_SHELL = np.array([0, 0, 1, 1, 2, 2])
NUM_SHELLS = 3

PAULI = np.array([
    [[1, 0], [0, 1]],
    [[0, 1], [1, 0]],
    [[0, -1j], [1j, 0]],
    [[1, 0], [0, -1]],
], dtype=np.complex128)  # [4, 2, 2]: identity, sigma_x, sigma_y, sigma_z.

# Defaults of the dataset (see docs/data.md).
DEFAULT_NK = 24          # first mesh of `chern.label_models`
DEFAULT_GAP_MIN = 0.1    # eV, minimum direct gap over the Brillouin zone


# ----------------------------------------------------------------------------
# Hamiltonians.
# ----------------------------------------------------------------------------


def k_mesh(n_k, offset=0.0):
  """Periodic n_k x n_k mesh of the Brillouin zone.

  Args:
    n_k: points per direction.
    offset: shift in units of the mesh spacing (0.5 = cell centres).

  Returns:
    float64 [n_k, n_k, 2], k = 2 pi (i + offset) / n_k in 1/a; axis 0 is kx.
  """
  k1 = 2 * np.pi * (np.arange(n_k) + offset) / n_k
  kx, ky = np.meshgrid(k1, k1, indexing="ij")
  return np.stack([kx, ky], axis=-1)


def bloch_hamiltonian(onsite, hops, k):
  """H(k) = T_0 + sum_{R in HALF_R} (T_R e^{ik.R} + h.c.).

  Args:
    onsite: complex [..., 2, 2] Hermitian on-site matrix T_0 (eV).
    hops: complex [..., 6, 2, 2] hoppings T_R for R in HALF_R (eV).
    k: float [*K, 2] wave vectors (1/a).

  Returns:
    complex128 [..., *K, 2, 2] Bloch Hamiltonians (eV).
  """
  kshape = k.shape[:-1]
  kf = k.reshape(-1, 2)
  phase = np.exp(1j * kf @ HALF_R.T)                   # [K, 6]
  half = np.einsum("kr,...rij->...kij", phase, hops)   # [..., K, 2, 2]
  h = onsite[..., None, :, :] + half + np.conj(np.swapaxes(half, -1, -2))
  return h.reshape(h.shape[:-3] + kshape + (2, 2))


def d_coefficients(onsite, hops):
  """Pauli coefficients of the hoppings: H(k) = d0(k) + d(k).sigma with
  d(k) = c0 + sum_{R in HALF_R} 2 Re(c_R e^{ik.R}).

  Args:
    onsite: complex [..., 2, 2]; hops: complex [..., 6, 2, 2] (eV).

  Returns:
    (c0 float64 [..., 3], c complex128 [..., 6, 3]) in eV; the last axis is
    (x, y, z).
  """
  c0 = np.einsum("aji,...ij->...a", PAULI[1:], onsite).real / 2
  c = np.einsum("aji,...rij->...ra", PAULI[1:], hops) / 2
  return c0, c


@functools.lru_cache(maxsize=16)
def _mesh_phases_cached(n_k, offset):
  out = _mesh_phases(n_k, offset)
  out.flags.writeable = False  # shared by every later call
  return out


def _mesh_phases(n_k, offset):
  """cos(k.R) and sin(k.R) for R in HALF_R on `k_mesh(n_k, offset)`.

  Built from cos/sin of the 1-D grid by the angle-addition formulas (one
  multiply-add per entry instead of a transcendental).

  Returns:
    float64 [12, n_k * n_k]: rows cos for HALF_R, then sin; columns in the
    order of k_mesh's flattened points.
  """
  k1 = k_mesh(n_k, offset)[:, 0, 0]
  c, s = np.cos(k1), np.sin(k1)
  c2, s2 = np.cos(2 * k1), np.sin(2 * k1)
  cx, sx, cy, sy = c[:, None], s[:, None], c[None, :], s[None, :]
  out = np.empty((12, n_k, n_k))
  for r, (cos, sin) in enumerate([
      (cx, sx), (cy, sy),                                  # x, y
      (cx * cy - sx * sy, sx * cy + cx * sy),              # x + y
      (cx * cy + sx * sy, sx * cy - cx * sy),              # x - y
      (c2[:, None], s2[:, None]), (c2[None, :], s2[None, :])]):  # 2x, 2y
    out[r], out[6 + r] = cos, sin
  return out.reshape(12, -1)


def d_field(onsite, hops, n_k, offset=0.0, grad=False):
  """d(k) of H = d0 + d.sigma on a mesh, for many models at once.

  One real matrix product [(1 or 3) * 3 * B, 12] x [12, K] over
  cos/sin(k.R), far cheaper than forming 2x2 matrices, so labels can afford
  fine meshes. Mesh axes last and contiguous: the arithmetic on the result
  runs over long contiguous rows even for a single model.

  Args:
    onsite: complex [B, 2, 2]; hops: complex [B, 6, 2, 2] (eV).
    n_k, offset: the mesh, as in `k_mesh`.
    grad: also return dd/dk.

  Returns:
    d float64 [3, B, n_k, n_k] in eV (axis -2 is kx); with grad, also
    dd/dk_mu float64 [2, 3, B, n_k, n_k] in eV a (mu = x, y).
  """
  c0, c = d_coefficients(onsite, hops)
  cre, cim = np.moveaxis(c.real, -2, 0), np.moveaxis(c.imag, -2, 0)  # [6,B,3]
  w = [np.concatenate([2 * cre, -2 * cim])]                      # [12, B, 3]
  if grad:
    # d/dk_mu of 2 Re(c e^{ik.R}) = -2 R_mu (Re c sin(k.R) + Im c cos(k.R)).
    for r in HALF_R.T[:, :, None, None]:                         # R_mu [6,1,1]
      w.append(np.concatenate([-2 * r * cim, -2 * r * cre]))
  w = np.stack(w, axis=1).transpose(1, 3, 2, 0)                  # [G,3,B,12]
  # Small meshes recur for every chunk of models; large ones are rare.
  phases = (_mesh_phases_cached if n_k <= 192 else _mesh_phases)(
      n_k, float(offset))
  out = (w.reshape(-1, 12) @ phases).reshape(w.shape[:3] + (n_k, n_k))
  d = out[0] + c0.T[:, :, None, None]
  return (d, out[1:]) if grad else d


def qwz_hamiltonian(m):
  """Qi-Wu-Zhang model H = sin kx sx + sin ky sy + (m + cos kx + cos ky) sz.

  Args:
    m: mass (units of the hopping).

  Returns:
    A function k [..., 2] -> H [..., 2, 2] (complex128).
  """
  def fn(k):
    kx, ky = k[..., 0], k[..., 1]
    d = [np.sin(kx), np.sin(ky), m + np.cos(kx) + np.cos(ky)]
    return np.einsum("a...,aij->...ij", np.stack(d).astype(complex), PAULI[1:])
  return fn


def qwz_params(m, t=1.0):
  """QWZ model as hopping parameters (onsite [2, 2], hops [6, 2, 2])."""
  sx, sy, sz = PAULI[1], PAULI[2], PAULI[3]
  onsite = m * t * sz
  hops = np.zeros((6, 2, 2), complex)
  # T_x e^{ikx} + h.c. = t (cos kx sz + sin kx sx), likewise for y.
  hops[0] = 0.5 * t * (sz - 1j * sx)
  hops[1] = 0.5 * t * (sz - 1j * sy)
  return onsite, hops


def d_vector(h):
  """Decomposes 2x2 Hermitian H = d0 + d.sigma.

  Args:
    h: complex [..., 2, 2].

  Returns:
    (d0 [...], d [..., 3]) real, in the units of h.
  """
  d0 = 0.5 * (h[..., 0, 0] + h[..., 1, 1]).real
  dz = 0.5 * (h[..., 0, 0] - h[..., 1, 1]).real
  dx = h[..., 0, 1].real
  dy = -h[..., 0, 1].imag
  return d0, np.stack([dx, dy, dz], axis=-1)


# ----------------------------------------------------------------------------
# Random models.
# ----------------------------------------------------------------------------


def _complex_gaussian(rng, shape):
  """Entries CN(0, 1/4): a 2x2 block has E|G|_F^2 = 1."""
  return (rng.normal(size=shape) + 1j * rng.normal(size=shape)) / np.sqrt(8)


def _haar_u2(rng, n):
  """n Haar-random 2x2 unitaries, complex [n, 2, 2] (QR of Ginibre)."""
  z = rng.normal(size=(n, 2, 2)) + 1j * rng.normal(size=(n, 2, 2))
  q, r = np.linalg.qr(z)
  ph = np.diagonal(r, axis1=-2, axis2=-1)
  return q * (ph / np.abs(ph))[:, None, :]


def sample_models(rng, n, perturb=(0.7, 0.5, 0.4), basis_mixing=1.0):
  """Samples n random two-band models around a QWZ backbone.

  Backbone: QWZ with hopping t ~ U(0.6, 1.4) eV and mass m = mu t,
  mu ~ U(-4, 4), so that roughly half of the backbones are topological
  (|mu| < 2). On top: a random on-site energy and off-diagonal term, random
  complex 2x2 hoppings on every shell with a random amplitude per shell
  (up to perturb[s] * t), and, for a fraction `basis_mixing` of the models,
  a Haar-random orbital basis change (physical orbitals need not be the
  pseudo-spin axes; C is invariant under it but features are not).

  Args:
    rng: numpy Generator.
    n: number of models.
    perturb: maximum relative amplitude of the random hoppings per shell.
    basis_mixing: probability of a random U(2) orbital basis.

  Returns:
    dict with onsite complex [n, 2, 2], hops complex [n, 6, 2, 2] (eV),
    t float [n] (eV), mu float [n] (backbone mass / t).
  """
  t = rng.uniform(0.6, 1.4, n)
  mu = rng.uniform(-4.0, 4.0, n)
  on_b, hop_b = qwz_params(1.0, 1.0)
  onsite = (mu * t)[:, None, None] * on_b
  hops = t[:, None, None, None] * hop_b
  # On-site: random mean energy and a random orbital mixing term.
  eps0 = rng.normal(0.0, 0.5, n) * t
  off = _complex_gaussian(rng, n) * 0.6 * t
  onsite = onsite + eps0[:, None, None] * PAULI[0]
  onsite[:, 0, 1] += off
  onsite[:, 1, 0] += np.conj(off)
  # Random hoppings, one random amplitude per shell and model.
  amp = rng.uniform(0, 1, (n, NUM_SHELLS)) * np.asarray(perturb) * t[:, None]
  g = _complex_gaussian(rng, (n, 6, 2, 2))
  hops = hops + amp[:, HALF_R_SHELL, None, None] * g
  # Random basis for a fraction of the models: H -> U H U^dagger.
  u = _haar_u2(rng, n)
  keep = rng.uniform(size=n) >= basis_mixing
  u[keep] = np.eye(2)
  ud = np.conj(np.swapaxes(u, -1, -2))
  onsite = u @ onsite @ ud
  hops = u[:, None] @ hops @ ud[:, None]
  return dict(onsite=onsite, hops=hops, t=t, mu=mu)
