"""The four modalities of a two-band tight-binding model (materials_tb).

Crystal graph (4x4 supercell, orbitals as nodes), k-space graph (8x8 mesh of
Brillouin-zone cells), 10 scalars and a 64-bin density of states, all
computed from the hoppings of `tight_binding` (numpy only). Every feature is
a function of H(k) alone: none reads the Chern number or the backbone mass.
"""

import functools

import numpy as np

from mmjax.data.materials.tight_binding import HALF_R_SHELL
from mmjax.data.materials.tight_binding import NUM_SHELLS
from mmjax.data.materials.tight_binding import bloch_hamiltonian
from mmjax.data.materials.tight_binding import d_vector
from mmjax.data.materials.tight_binding import k_mesh

KSPACE_CELLS = 8         # k-space graph: 8 x 8 cells ...
KSPACE_SUB = 4           # ... each sampled on a 4 x 4 sub-grid.
SUPERCELL = 4            # crystal graph: 4 x 4 supercell x 2 orbitals.
DOS_BINS = 64
FINE_NK = 48             # mesh of the scalars and the density of states.

SCALAR_NAMES = (
    "mass", "onsite_mean", "gap_min", "gap_max", "width_lower",
    "width_upper", "shell1_norm", "shell2_norm", "shell3_norm",
    "indirect_gap",
)




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


def kspace_mesh_from_nodes(nodes):
  """Undoes the layout of `kspace_node_features`: nodes back to the mesh.

  Args:
    nodes: float [..., 64, 64] k-space node features (node 8 cx + cy, column
      4 (4 sx + sy) + feature); a numpy or a jax array.

  Returns:
    [..., 32, 32, 4] (same dtype and array type) on the mesh of
    `k_mesh(32, offset=0.5)` (axis -3 is kx, fine index 4 cx + sx; axis -2
    is ky): [n_x, n_y, n_z, gap / mean gap].
  """
  n, s = KSPACE_CELLS, KSPACE_SUB
  # Array methods only, so a jax array (or tracer) stays one: the plaquette
  # encoder rebuilds the mesh inside its jitted step.
  if not hasattr(nodes, "swapaxes"):
    nodes = np.asarray(nodes)
  lead = nodes.shape[:-2]
  if nodes.shape[-2:] != (n * n, s * s * 4):
    raise ValueError(f"k-space node features: expected [..., {n * n}, "
                     f"{s * s * 4}], got {list(nodes.shape)}")
  f = nodes.reshape(lead + (n, n, s, s, 4))          # [..., cx, cy, sx, sy, 4]
  f = f.swapaxes(-3, -4)                             # [..., cx, sx, cy, sy, 4]
  return f.reshape(lead + (n * s, n * s, 4))


def scalar_and_decomp(onsite, hops, n_fine=FINE_NK):
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
  """All four modalities for a batch of models (see materials.schema).

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
