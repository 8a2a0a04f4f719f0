"""Random two-band tight-binding models of 2-D materials and their Chern number.

Pure numpy. A model lives on a square lattice (lattice constant 1) with two
orbitals per cell, both at the cell origin. Its Bloch Hamiltonian is

  H(k) = sum_R T_R exp(i k.R),   T_{-R} = T_R^dagger,

with R = 0 (on-site, Hermitian) and the three neighbour shells
  shell 1: +-x, +-y;  shell 2: +-x+-y;  shell 3: +-2x, +-2y.
Only the "half" set HALF_R = (x, y, x+y, x-y, 2x, 2y) is stored; the other
half follows from Hermiticity. Energies are in eV, k in units of 1/a.

The label of a model is whether the Chern number C of its occupied (lower)
band, computed with the Fukui-Hatsugai-Suzuki (FHS) lattice method, is
non-zero (topological, label 1) or zero (trivial, label 0).

Sign convention (FHS, J. Phys. Soc. Jpn. 74, 1674 (2005)):
  C = (1/2pi) sum_plaquettes arg(U_x(k) U_y(k+x) U_x(k+y)^* U_y(k)^*),
  U_mu(k) = det(Psi(k)^dagger Psi(k+mu)).
For a two-band model H = d0 + d.sigma this equals MINUS the degree (skyrmion
number) of the unit vector d/|d| over the Brillouin zone, and for the
Qi-Wu-Zhang model `qwz_hamiltonian(m)` it gives C = +1 for 0 < m < 2,
C = -1 for -2 < m < 0 and C = 0 for |m| > 2 (the tests check all of this).
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
DEFAULT_NK = 24          # FHS mesh; the refinement check uses 2 * DEFAULT_NK.
DEFAULT_GAP_MIN = 0.1    # eV, minimum direct gap on the 2 * n_k mesh.
KSPACE_CELLS = 8         # k-space graph: 8 x 8 cells ...
KSPACE_SUB = 4           # ... each sampled on a 4 x 4 sub-grid.
SUPERCELL = 4            # crystal graph: 4 x 4 supercell x 2 orbitals.
DOS_BINS = 64
CHUNK = 256              # models sampled per rng chunk (fixed: determinism).

SCALAR_NAMES = (
    "mass", "onsite_mean", "gap_min", "gap_max", "width_lower",
    "width_upper", "shell1_norm", "shell2_norm", "shell3_norm",
    "indirect_gap",
)


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
# Fukui-Hatsugai-Suzuki Chern number.
# ----------------------------------------------------------------------------


def fhs_from_mesh(hk, occupied=1):
  """FHS Chern number of the lowest `occupied` bands from H on a periodic mesh.

  Works for any number of bands: the link variables are determinants of the
  overlap matrices of the occupied subspace, so the result does not depend
  on the (arbitrary) phases or rotations eigh picks within that subspace.

  Args:
    hk: complex [..., n, n, nb, nb] Hamiltonians on the mesh of `k_mesh(n)`
      (axis -4 is kx, axis -3 is ky; the mesh must be periodic).
    occupied: number of occupied bands (lowest energies).

  Returns:
    (chern float64 [...] -- an integer up to rounding when the mesh is fine
    enough, energies float64 [..., n, n, nb] ascending).
  """
  energies, vecs = np.linalg.eigh(hk)
  psi = vecs[..., :occupied]                           # [..., n, n, nb, occ]

  def link(axis):
    # U_mu(k) = det(Psi(k)^dagger Psi(k + mu)); only its phase matters.
    ov = np.einsum("...ao,...ap->...op", np.conj(psi),
                   np.roll(psi, -1, axis=axis))
    return ov[..., 0, 0] if occupied == 1 else np.linalg.det(ov)

  ux, uy = link(-4), link(-3)                          # [..., n, n]
  # Plaquette k -> k+x -> k+x+y -> k+y -> k. Axes of ux/uy: kx = -2, ky = -1.
  plaq = ux * np.roll(uy, -1, axis=-2) * np.conj(np.roll(ux, -1, axis=-1)) \
      * np.conj(uy)
  chern = np.angle(plaq).sum(axis=(-2, -1)) / (2 * np.pi)
  return chern, energies


def chern_number_fhs(hamiltonian_fn, n_k, occupied=1):
  """FHS Chern number of the occupied bands of a Bloch Hamiltonian.

  Args:
    hamiltonian_fn: function k float [n_k, n_k, 2] -> H complex
      [..., n_k, n_k, nb, nb] (leading batch axes allowed), periodic in k
      with period 2 pi; or a tuple (onsite [..., 2, 2], hops [..., 6, 2, 2])
      of tight-binding parameters.
    n_k: mesh points per direction.
    occupied: number of occupied (lowest) bands.

  Returns:
    float64 [...] Chern number (not rounded; see `fhs_from_mesh`).
  """
  k = k_mesh(n_k)
  if isinstance(hamiltonian_fn, tuple):
    hk = bloch_hamiltonian(*hamiltonian_fn, k)
  else:
    hk = hamiltonian_fn(k)
  return fhs_from_mesh(hk, occupied)[0]


def skyrmion_number(hamiltonian_fn, n_k):
  """Degree of d(k)/|d(k)| for a two-band H = d0 + d.sigma (cross-check).

  Independent of FHS: sums the signed solid angles (Van Oosterom-Strackee)
  of the two triangles of every mesh plaquette, divided by 4 pi.

  Args:
    hamiltonian_fn: as in `chern_number_fhs`, two bands only.
    n_k: mesh points per direction.

  Returns:
    float64 [...] degree of the map T^2 -> S^2.
  """
  hk = hamiltonian_fn(k_mesh(n_k))
  _, d = d_vector(hk)
  n = d / np.linalg.norm(d, axis=-1, keepdims=True)    # [..., n, n, 3]
  a = n
  b = np.roll(n, -1, axis=-3)
  c = np.roll(np.roll(n, -1, axis=-3), -1, axis=-2)
  e = np.roll(n, -1, axis=-2)

  def solid_angle(p, q, r):
    num = np.einsum("...i,...i", p, np.cross(q, r))
    den = 1 + (p * q).sum(-1) + (q * r).sum(-1) + (r * p).sum(-1)
    return 2 * np.arctan2(num, den)

  total = solid_angle(a, b, c) + solid_angle(a, c, e)
  return total.sum(axis=(-2, -1)) / (4 * np.pi)


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


def label_models(onsite, hops, n_k=DEFAULT_NK, gap_min=DEFAULT_GAP_MIN):
  """Chern numbers with the refinement and gap checks.

  Args:
    onsite: complex [B, 2, 2]; hops: complex [B, 6, 2, 2] (eV).
    n_k: FHS mesh; C is also computed on 2 n_k and must agree.
    gap_min: minimum direct gap (eV) on the 2 n_k mesh.

  Returns:
    (chern int64 [B], ok bool [B], gap float [B] in eV).
  """
  c1, _ = fhs_from_mesh(bloch_hamiltonian(onsite, hops, k_mesh(n_k)))
  c2, e2 = fhs_from_mesh(bloch_hamiltonian(onsite, hops, k_mesh(2 * n_k)))
  gap = (e2[..., 1] - e2[..., 0]).min(axis=(-2, -1))
  r1, r2 = np.round(c1), np.round(c2)
  ok = ((np.abs(c1 - r1) < 1e-6) & (np.abs(c2 - r2) < 1e-6) & (r1 == r2)
        & (gap >= gap_min))
  return r2.astype(np.int64), ok, gap


# ----------------------------------------------------------------------------
# Features.
# ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def crystal_edges():
  """Directed edges of the 4x4-supercell crystal graph (32 nodes, 384 edges).

  Node 2 * (4 ix + iy) + a is orbital a of cell (ix, iy). Every node sends
  exactly 12 edges to 12 distinct nodes, periodic in the supercell:
    shell 1 (+-x, +-y): to the OTHER orbital of the 4 neighbour cells
      (the QWZ-type inter-orbital hopping lives there);
    shell 2 (+-x+-y): to the SAME orbital of the 4 diagonal cells;
    shell 3 (2x, 2y): +2x and -2x are the same cell of a 4x4 torus, so each
      of the 2 cells is joined to BOTH of its orbitals (2 x 2 = 4 edges).
  Each rule is closed under reversal, so both directions are stored; there
  are no self loops.

  Returns:
    (senders int32 [384], receivers int32 [384]).
  """
  L = SUPERCELL
  snd, rcv = [], []
  for ix in range(L):
    for iy in range(L):
      for a in range(2):
        s = 2 * (L * ix + iy) + a
        targets = [((ix + dx) % L, (iy + dy) % L, 1 - a)
                   for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        targets += [((ix + dx) % L, (iy + dy) % L, a)
                    for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
        targets += [((ix + dx) % L, (iy + dy) % L, b)
                    for dx, dy in ((2, 0), (0, 2)) for b in (a, 1 - a)]
        for tx, ty, b in targets:
          snd.append(s)
          rcv.append(2 * (L * tx + ty) + b)
  return np.array(snd, np.int32), np.array(rcv, np.int32)


@functools.lru_cache(maxsize=None)
def kspace_edges():
  """Directed edges of the periodic 8x8 k-mesh graph (64 nodes, 256 edges).

  Node 8 cx + cy; each node sends to its 4 grid neighbours (periodic BZ).

  Returns:
    (senders int32 [256], receivers int32 [256]).
  """
  n = KSPACE_CELLS
  snd, rcv = [], []
  for cx in range(n):
    for cy in range(n):
      for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        snd.append(n * cx + cy)
        rcv.append(n * ((cx + dx) % n) + (cy + dy) % n)
  return np.array(snd, np.int32), np.array(rcv, np.int32)


def crystal_node_features(onsite, hops):
  """Per-site features, gauge invariant (orbital phases drop out).

  For orbital a: [on-site energy Re T_0[a, a] (eV),
                  total hopping strength sum_{R != 0, b} |T_R[a, b]| (eV),
                  nearest-neighbour intra-orbital hopping
                  sum_{R in shell 1} T_R[a, a] (eV; its sign is the band
                  curvature / orbital character)].
  The crystal is periodic, so every cell repeats the same two rows.

  Args:
    onsite: complex [B, 2, 2]; hops: complex [B, 6, 2, 2].

  Returns:
    float32 [B, 32, 3].
  """
  eps = np.diagonal(onsite, axis1=-2, axis2=-1).real            # [B, 2]
  # T_{-R} = T_R^dagger: |T_{-R}[a, b]| = |T_R[b, a]|.
  strength = (np.abs(hops).sum(axis=(1, 3))
              + np.abs(hops).sum(axis=(1, 2)))                   # [B, 2]
  diag = np.diagonal(hops[:, :2], axis1=-2, axis2=-1)            # [B, 2, 2]
  nn = 2 * diag.real.sum(axis=1)                                 # [B, 2]
  per_orb = np.stack([eps, strength, nn], axis=-1)               # [B, 2, 3]
  return np.tile(per_orb, (1, SUPERCELL * SUPERCELL, 1)).astype(np.float32)


def kspace_node_features(onsite, hops):
  """Per-k-cell features from d(k) on a 4x4 sub-grid of each of 8x8 cells.

  For each of the 16 sub-points (row-major over (sx, sy)) of a cell:
  [n_x, n_y, n_z, gap / mean gap] with n = d / |d| the pseudo-spin direction
  of H = d0 + d.sigma and gap = 2 |d|. Both are independent of the phases of
  the Bloch eigenvectors (gauge invariant); no Berry curvature is included.
  Sub-points sit at cell-centred offsets, so no point is a TRIM.

  Args:
    onsite: complex [B, 2, 2]; hops: complex [B, 6, 2, 2].

  Returns:
    float32 [B, 64, 64].
  """
  n, s = KSPACE_CELLS, KSPACE_SUB
  k = k_mesh(n * s, offset=0.5)                                  # [32, 32, 2]
  _, d = d_vector(bloch_hamiltonian(onsite, hops, k))            # [B,32,32,3]
  norm = np.linalg.norm(d, axis=-1, keepdims=True)
  gap = norm / norm.mean(axis=(1, 2), keepdims=True)
  f = np.concatenate([d / norm, gap], axis=-1)                   # [B,32,32,4]
  b = f.shape[0]
  # fine index j = s * cell + sub  ->  [B, cx, sx, cy, sy, 4]
  f = f.reshape(b, n, s, n, s, 4).transpose(0, 1, 3, 2, 4, 5)
  return f.reshape(b, n * n, s * s * 4).astype(np.float32)


def scalar_and_decomp(onsite, hops, n_fine=2 * DEFAULT_NK):
  """The 10 scalars (see SCALAR_NAMES) and the 64-bin density of states.

  Scalars (eV): mass = (T_0[0,0] - T_0[1,1]) / 2, onsite_mean = tr T_0 / 2,
  min / max direct gap, widths of the lower / upper band, Frobenius norms
  of the hoppings of each shell, indirect gap min E_2 - max E_1 (negative
  for a semimetal-like band overlap).
  Decomp: histogram of both bands' energies on an n_fine^2 mesh, 64 bins
  spanning [min E_1, max E_2] of the model, normalised to sum to 1.

  Args:
    onsite: complex [B, 2, 2]; hops: complex [B, 6, 2, 2].
    n_fine: mesh points per direction.

  Returns:
    (scalar float32 [B, 10], decomp float32 [B, 64]).
  """
  d0, d = d_vector(bloch_hamiltonian(onsite, hops, k_mesh(n_fine)))
  b = d0.shape[0]
  nd = np.linalg.norm(d, axis=-1)
  e1 = (d0 - nd).reshape(b, -1)
  e2 = (d0 + nd).reshape(b, -1)
  gap = 2 * nd.reshape(b, -1)
  shell = np.stack([
      np.sqrt(2 * (np.abs(hops[:, HALF_R_SHELL == s]) ** 2).sum(axis=(1, 2, 3)))
      for s in range(NUM_SHELLS)], axis=-1)                      # [B, 3]
  scalar = np.concatenate([
      np.stack([0.5 * (onsite[:, 0, 0] - onsite[:, 1, 1]).real,
                0.5 * (onsite[:, 0, 0] + onsite[:, 1, 1]).real,
                gap.min(1), gap.max(1),
                e1.max(1) - e1.min(1), e2.max(1) - e2.min(1)], axis=-1),
      shell,
      (e2.min(1) - e1.max(1))[:, None]], axis=-1)
  # Energies mapped to [0, 1) per model: the DOS shape, not its scale.
  lo, hi = e1.min(1, keepdims=True), e2.max(1, keepdims=True)
  allE = np.concatenate([e1, e2], axis=1)
  idx = np.clip(((allE - lo) / (hi - lo) * DOS_BINS).astype(int), 0,
                DOS_BINS - 1)
  decomp = np.zeros((b, DOS_BINS))
  np.add.at(decomp, (np.repeat(np.arange(b), idx.shape[1]), idx.ravel()), 1.0)
  decomp /= idx.shape[1]
  return scalar.astype(np.float32), decomp.astype(np.float32)


def model_features(onsite, hops):
  """All four modalities for a batch of models (see mmjax.data.schema).

  Args:
    onsite: complex [B, 2, 2]; hops: complex [B, 6, 2, 2].

  Returns:
    dict: crystal_nodes [B, 32, 3], kspace_nodes [B, 64, 64],
    scalar [B, 10], decomp [B, 64] (float32). Edges are fixed, see
    `crystal_edges` / `kspace_edges`.
  """
  scalar, decomp = scalar_and_decomp(onsite, hops)
  return dict(crystal_nodes=crystal_node_features(onsite, hops),
              kspace_nodes=kspace_node_features(onsite, hops),
              scalar=scalar, decomp=decomp)


# ----------------------------------------------------------------------------
# Balanced generation.
# ----------------------------------------------------------------------------


def _chunk(args):
  """Samples and labels chunk `index` of candidates; keeps accepted ones."""
  seed, index, n_k, gap_min, sample_kw = args
  rng = np.random.default_rng([seed, index])
  p = sample_models(rng, CHUNK, **sample_kw)
  chern, ok, gap = label_models(p["onsite"], p["hops"], n_k, gap_min)
  keep = np.nonzero(ok)[0]
  out = dict(candidate=index * CHUNK + keep, chern=chern[keep],
             onsite=p["onsite"][keep], hops=p["hops"][keep])
  out.update(model_features(out["onsite"], out["hops"]))
  out["rejected"] = int(CHUNK - len(keep))
  return out


def generate(num_examples, seed=0, n_k=DEFAULT_NK, gap_min=DEFAULT_GAP_MIN,
             processes=2, sample_kw=None):
  """Generates an exactly balanced set of labelled models with features.

  Candidates are drawn in fixed chunks (chunk i from default_rng([seed, i]))
  and accepted in candidate order until each class has num_examples / 2, so
  the output depends only on the arguments, not on `processes`.

  Args:
    num_examples: even total number of models.
    seed: integer seed.
    n_k: FHS mesh (checked against 2 n_k).
    gap_min: minimum direct gap in eV.
    processes: worker processes (1 = in-process).
    sample_kw: extra keyword arguments of `sample_models`.

  Returns:
    dict of arrays over the num_examples models in candidate order: label
    int64 [N], chern int64 [N], candidate int64 [N], onsite, hops, the four
    modality arrays of `model_features`; and "rejected" (int) the number of
    candidates failing the gap / integer / refinement checks.
  """
  if num_examples % 2:
    raise ValueError("num_examples must be even for exact balance")
  quota = num_examples // 2
  sample_kw = dict(sample_kw or {})
  parts, counts, rejected = [], [0, 0], 0

  def consume(res):
    nonlocal rejected
    rejected += res["rejected"]
    lab = (res["chern"] != 0).astype(np.int64)
    take = np.zeros(len(lab), bool)
    for i, l in enumerate(lab):
      if counts[l] < quota:
        counts[l] += 1
        take[i] = True
    parts.append({k: v[take] for k, v in res.items() if k != "rejected"})
    return counts[0] >= quota and counts[1] >= quota

  # Rounds of a few chunks each: bounded look-ahead, results used in order.
  # ~90% of candidates pass and classes are ~50/50: size the first rounds so
  # small datasets do not sample many unused chunks.
  per_round = max(processes, min(4 * max(processes, 1),
                                 -(-num_examples // int(0.8 * CHUNK))))
  pool = None
  if processes > 1:
    import multiprocessing  # pylint: disable=g-import-not-at-top
    # spawn, not fork: the caller (the trainer) has JAX's threads running,
    # and forking a multithreaded process can deadlock the children.
    pool = multiprocessing.get_context("spawn").Pool(processes)
  try:
    start, done = 0, False
    while not done:
      tasks = [(seed, i, n_k, gap_min, sample_kw)
               for i in range(start, start + per_round)]
      start += per_round
      results = pool.imap(_chunk, tasks) if pool else map(_chunk, tasks)
      for res in results:
        if not done:
          done = consume(res)
  finally:
    if pool is not None:
      pool.terminate()
  out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  out["label"] = (out["chern"] != 0).astype(np.int64)
  out["rejected"] = rejected
  return out
