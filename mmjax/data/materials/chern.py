"""Chern numbers of the occupied band of tight-binding models; exact labels.

`fhs_from_mesh` is the Fukui-Hatsugai-Suzuki (FHS) lattice Chern number
(J. Phys. Soc. Jpn. 74, 1674 (2005)):
  C = (1/2pi) sum_plaquettes arg(U_x(k) U_y(k+x) U_x(k+y)^* U_y(k)^*),
  U_mu(k) = det(Psi(k)^dagger Psi(k + mu)).
For a two-band model H = d0 + d.sigma this equals MINUS the degree (skyrmion
number) of the unit vector n = d/|d| over the Brillouin zone, and for the
Qi-Wu-Zhang model `qwz_hamiltonian(m)` it gives C = +1 for 0 < m < 2,
C = -1 for -2 < m < 0 and C = 0 for |m| > 2 (the tests check all of this).

FHS is an integer on every mesh, but the right one only on a fine enough
mesh. `label_models` makes the labels exact with a per-model proof
(`gap_bounds`) that the mesh is fine enough:

  Certificate. If for every plaquette Q of the mesh there is a unit vector c
  with c.d(k) > 0 for all k in Q (n(Q) lies in an open hemisphere), then the
  FHS number on that mesh is the Chern number.

  Why. With P = (1 - n.sigma)/2 the lower band's projector, the plaquette
  product is the Bargmann invariant tr(P1 P2 P3 P4) of the corners
  k, k+x, k+x+y, k+y; its phase is -(A_123 + A_134)/2 mod 2pi, A_abc the
  signed solid angle of the geodesic triangle n_a n_b n_c. (i) The four
  corners lie in one open hemisphere, so |A_123 + A_134| < 2pi and the
  principal phase is exactly -(A_123 + A_134)/2: C_FHS = -deg g, g the map
  that is geodesic on each triangle (its degree is its total signed area
  over 4pi). (ii) On each triangle n and g lie in the same open hemisphere,
  so they are never antipodal and n_s = (1-s) n + s g never vanishes: n and
  g are homotopic (g on an edge depends only on the edge's ends, so the
  homotopies agree on shared edges). Hence deg g = deg n and C_FHS = C.

  Test. Take c = n(k_Q), k_Q the plaquette centre, f(k) = c.d(k), a
  trigonometric polynomial. For k = k_Q + delta, |delta_x|, |delta_y| <= h/2
  (h = 2pi/n_k), Taylor's theorem gives
    f(k) >= |d(k_Q)| - (h/2)(|df/dk_x| + |df/dk_y|)(k_Q) - K h^2/4,
    K = sum_{R in HALF_R} ||T_R||_2 (|R_x| + |R_y|)^2,
  because |delta^T (grad^2 f) delta| <= sum_R 2 (R.delta)^2 ||T_R||_2
  <= 2 K (h/2)^2. If the minimum of the right-hand side over the plaquettes
  is positive, the certificate holds; and as |d| >= f, twice that minimum
  is also a lower bound on the true direct gap 2 min_k |d(k)|.

  Cost. As h -> 0 the bound tends to min_k |d| > 0, so every gapped model
  is certified on some mesh; the mesh needed grows like |grad d| / gap,
  which is why a fixed mesh (24 and 48 agreeing) mislabels models whose
  Berry curvature is squeezed into less than a plaquette. Most models are
  certified on the 24 mesh; each finer mesh is tried only for the models
  still undecided.

The dataset's gap rule uses the same bound, so it is exact too: a model is
kept iff its certified direct gap reaches gap_min (see `label_models`).
"""

import numpy as np

from mmjax.data.materials import tb_features
from mmjax.data.materials.tight_binding import DEFAULT_GAP_MIN
from mmjax.data.materials.tight_binding import DEFAULT_NK
from mmjax.data.materials.tight_binding import HALF_R
from mmjax.data.materials.tight_binding import bloch_hamiltonian
from mmjax.data.materials.tight_binding import d_field
from mmjax.data.materials.tight_binding import d_vector
from mmjax.data.materials.tight_binding import k_mesh

MAX_NK = 768             # finest mesh tried; undecided models are rejected
MARGIN_MIN = 1e-9        # eV; far above the rounding error of d (~1e-15 eV)
INTEGER_TOL = 1e-6       # FHS must be this close to an integer
MESH_POINTS = 1 << 20    # k-points per batch of models (bounds memory)


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
  return fhs_from_mesh(_on_mesh(hamiltonian_fn, n_k), occupied)[0]


def skyrmion_number(hamiltonian_fn, n_k, offset=0.0):
  """Degree of d(k)/|d(k)| for a two-band H = d0 + d.sigma (cross-check).

  Computed without eigenvectors (`degree_of_unit_field`).

  Args:
    hamiltonian_fn: as in `chern_number_fhs`, two bands only.
    n_k: mesh points per direction.
    offset: mesh offset in units of the spacing (`k_mesh`); 0.5 is the mesh
      of the k-space node features (`degree_from_kspace_nodes`).

  Returns:
    float64 [...] degree of the map T^2 -> S^2.
  """
  _, d = d_vector(_on_mesh(hamiltonian_fn, n_k, offset))
  n = d / np.linalg.norm(d, axis=-1, keepdims=True)    # [..., n, n, 3]
  return degree_of_unit_field(n)


def degree_of_unit_field(n):
  """Degree of a unit-vector field on a periodic mesh of the torus.

  Sums the signed solid angles (Van Oosterom-Strackee) of the two geodesic
  triangles (k, k+x, k+x+y) and (k, k+x+y, k+y) of every plaquette, divided
  by 4 pi: the degree of the map that is geodesic on each triangle, which is
  the degree of n whenever the mesh resolves it (and then minus the Chern
  number of the lower band of H = d0 + d.sigma, n = d/|d|).

  Args:
    n: float [..., N, N, 3] unit vectors (axis -3 is kx, axis -2 is ky;
      periodic in both).

  Returns:
    float64 [...] degree: an integer up to floating-point rounding on any
    mesh (the geodesic triangles tile a closed surface; each solid angle is
    that of the smaller triangle, so shared edges match unless neighbouring
    vectors are antipodal). Whether it is n's degree depends on the mesh.
  """
  n = np.asarray(n, np.float64)
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


def degree_from_kspace_nodes(nodes):
  """Degree of n = d/|d| from stored k-space node features alone.

  The features (`tb_features.kspace_node_features`) hold n on the 32 x 32
  mesh `k_mesh(32, offset=0.5)`; this undoes their (cell, sub-point) layout
  and returns `degree_of_unit_field` of that mesh (the stored float32
  vectors renormalised in float64), i.e. `skyrmion_number(model, 32, 0.5)`
  up to the float32 rounding of the features. Minus it, rounded, is the
  Chern number whenever that mesh resolves it.

  Args:
    nodes: float32/64 [..., 64, 64] k-space node features.

  Returns:
    float64 [...] degree (not rounded).
  """
  f = tb_features.kspace_mesh_from_nodes(nodes)
  n = np.asarray(f[..., :3], np.float64)
  n = n / np.linalg.norm(n, axis=-1, keepdims=True)
  return degree_of_unit_field(n)


def _on_mesh(hamiltonian_fn, n_k, offset=0.0):
  """H on the k_mesh(n_k, offset) from a function of k or (onsite, hops)."""
  k = k_mesh(n_k, offset)
  if isinstance(hamiltonian_fn, tuple):
    return bloch_hamiltonian(*hamiltonian_fn, k)
  return hamiltonian_fn(k)


def fhs_two_band(d):
  """FHS Chern number of the lower band of H = d0 + d.sigma, from d alone.

  For the rank-1 projectors P = (1 - n.sigma)/2 (n = d/|d|) at the corners
  1..4 of a plaquette, the FHS product U_x U_y U_x^* U_y^* is
  tr(P1 P2 P3 P4) = tr(P1 P2 P3) tr(P1 P3 P4) / tr(P1 P3), tr(P1 P3) >= 0,
  and 4 tr(Pa Pb Pc) = 1 + na.nb + nb.nc + nc.na - i na.(nb x nc): the
  same phases, hence the same number, as `fhs_from_mesh`, without
  eigenvectors.

  Args:
    d: float [3, ..., n, n] on the mesh of `k_mesh(n)` (axis -2 is kx), as
      `tight_binding.d_field` returns it.

  Returns:
    float64 [...] Chern number (an integer up to rounding).
  """
  n = d / np.sqrt((d * d).sum(0))
  c1, c2 = n, np.roll(n, -1, axis=-2)                  # k, k+x
  c3, c4 = np.roll(c2, -1, axis=-1), np.roll(n, -1, axis=-1)  # k+x+y, k+y

  def bargmann(a, b, c):  # 4 tr(Pa Pb Pc) for the lower band
    dots = (a * b).sum(0) + (b * c).sum(0) + (c * a).sum(0)
    triple = (a[0] * (b[1] * c[2] - b[2] * c[1])
              + a[1] * (b[2] * c[0] - b[0] * c[2])
              + a[2] * (b[0] * c[1] - b[1] * c[0]))
    return 1 + dots - 1j * triple

  plaq = bargmann(c1, c2, c3) * bargmann(c1, c3, c4)
  return np.angle(plaq).sum(axis=(-2, -1)) / (2 * np.pi)


def curvature_bound(hops):
  """K = sum_R ||T_R||_2 (|R_x| + |R_y|)^2, see the module docstring.

  Args:
    hops: complex [B, 6, 2, 2] (eV).

  Returns:
    float64 [B] (eV).
  """
  norm = np.linalg.norm(hops, ord=2, axis=(-2, -1))              # [B, 6]
  return (norm * np.abs(HALF_R).sum(-1) ** 2).sum(-1)


def gap_bounds(onsite, hops, n_k):
  """Bounds on the direct gap 2 min_k |d(k)| from the plaquettes of a mesh.

  lower = 2 min_Q (|d(k_Q)| - (h/2)(|df/dk_x| + |df/dk_y|) - K h^2/4), the
  certified bound of the module docstring: f = n(k_Q).d >= lower/2 on every
  plaquette Q, so lower > 0 proves that FHS on this mesh is the Chern
  number (and that the true gap is >= lower). upper = 2 min_Q |d(k_Q)|, the
  smallest gap sampled.

  Args:
    onsite: complex [B, 2, 2]; hops: complex [B, 6, 2, 2] (eV).
    n_k: mesh points per direction (plaquette centres `k_mesh(n_k, 0.5)`).

  Returns:
    (lower float64 [B], upper float64 [B]) in eV.
  """
  d, dd = d_field(onsite, hops, n_k, 0.5, grad=True)  # [3,B,n,n], [2,3,..]
  norm = np.sqrt((d * d).sum(0))
  # |df/dk_x| + |df/dk_y| with f = n(k_Q).d: the slope of |d| at k_Q.
  slope = np.abs((d * dd[0]).sum(0)) + np.abs((d * dd[1]).sum(0))
  h = 2 * np.pi / n_k
  low = (norm - 0.5 * h * slope / norm).min(axis=(-2, -1))     # [B]
  low = low - curvature_bound(hops) * h * h / 4
  return 2 * low, 2 * norm.min(axis=(-2, -1))


def _batches(idx, n_k):
  """Splits model indices into batches of at most MESH_POINTS k-points."""
  size = max(1, MESH_POINTS // (n_k * n_k))
  return [idx[i:i + size] for i in range(0, len(idx), size)]


def label_models(onsite, hops, n_k=DEFAULT_NK, gap_min=DEFAULT_GAP_MIN,
                 max_nk=MAX_NK):
  """Exact Chern numbers of the lower band of models with a direct gap.

  Meshes n_k, 2 n_k, 4 n_k, ... <= max_nk are tried in turn (`gap_bounds`).
  A model is accepted on the first mesh whose certified lower bound on its
  direct gap is >= gap_min (so C from FHS on that mesh is exact and the
  true gap is >= gap_min), rejected as soon as a sampled gap is < gap_min,
  and rejected if max_nk decides neither (a gap within a hair of gap_min,
  or curvature too sharp to resolve).

  Args:
    onsite: complex [B, 2, 2]; hops: complex [B, 6, 2, 2] (eV).
    n_k: first mesh tried.
    gap_min: minimum direct gap (eV); 0 accepts every certified model.
    max_nk: finest mesh tried.

  Returns:
    (chern int64 [B] (0 where not ok), ok bool [B], gap float [B] -- the
    smallest direct gap sampled in eV (an upper bound on the true one),
    mesh int64 [B] -- the mesh that certified C, 0 if not ok).
  """
  need = max(gap_min, 2 * MARGIN_MIN)
  chern = np.zeros(len(onsite), np.int64)
  mesh = np.zeros(len(onsite), np.int64)
  gap = np.full(len(onsite), np.inf)
  pending = np.arange(len(onsite))
  n = n_k
  while len(pending) and n <= max_nk:
    for idx in _batches(pending, n):
      lower, upper = gap_bounds(onsite[idx], hops[idx], n)
      gap[idx] = np.minimum(gap[idx], upper)
      sure = idx[lower >= need]
      if len(sure):
        c = fhs_two_band(d_field(onsite[sure], hops[sure], n))
        whole = np.abs(c - np.round(c)) < INTEGER_TOL
        chern[sure[whole]] = np.round(c[whole]).astype(np.int64)
        mesh[sure[whole]] = n
    pending = pending[(mesh[pending] == 0) & (gap[pending] >= gap_min)]
    n *= 2
  return chern, mesh > 0, gap, mesh
