"""Modelled poses: a cheap, deterministic rigid-body placement of one ligand
conformer in a receptor pocket.

Not docking: the conformer is rigid and the score is a contact count with a
clash penalty, no physics. Per target a receptor score grid over the box is
computed once (numpy): for a probe atom at distance d from each protein
heavy atom,
  clash    CLASH_WEIGHT * (CLASH_DISTANCE - d)^2   for d < CLASH_DISTANCE,
  contact  -CONTACT_REWARD on [3.5, 5] Å, ramping linearly to 0 at 3 and
           6 Å,
summed over protein atoms (lower is better). A ligand pose's score is the
sum over its atoms of the trilinearly interpolated grid, plus
OUTSIDE_WEIGHT per Å that an atom lies outside the cube of edge
`cube` - 2 * OUTSIDE_MARGIN centred on the box centre (the voxel grid's
extent, less a margin).

Search (JAX, jit + vmap over a batch of ligands padded to a fixed atom
budget): NUM_SAMPLES poses with uniform random rotations and translations
uniform within ±TRANSLATION Å of the box centre, then the REFINE rounds
perturb the best pose (smaller steps each round), keeping any improvement.
Every ligand's random numbers come from (seed, its key), so a pose does not
depend on the batch it was placed in.
"""

import dataclasses
import functools

import numpy as np

CLASH_DISTANCE = 3.0
CLASH_WEIGHT = 20.0
CONTACT_RANGE = (3.0, 3.5, 5.0, 6.0)   # ramp up, plateau, ramp down (Å)
CONTACT_REWARD = 0.2
OUTSIDE_WEIGHT = 50.0
# The penalty starts this far inside the cube, so the kept pose of a ligand
# that fits has every atom strictly inside it. A ligand that cannot fit
# (long peptides) keeps some atoms outside, which the voxel grid misses.
OUTSIDE_MARGIN = 0.5
GRID_SPACING = 0.5                     # score grid spacing (Å)
NUM_SAMPLES = 4096
SAMPLE_CHUNK = 512                     # poses scored per scan step
TRANSLATION = 6.0
# Refinement rounds of SAMPLE_CHUNK perturbations each:
# (rotation step (rad), translation step (Å)).
REFINE = ((0.30, 1.0), (0.15, 0.5), (0.07, 0.25))
ATOM_BUDGET = 64                       # padded atoms; larger ligands: x32
BATCH = 16                             # ligands per compiled call


@dataclasses.dataclass
class ScoreGrid:
  """Receptor score on grid points origin + (i, j, k) * spacing.

  Attributes:
    values: float32 [X, Y, Z] score of a probe atom (lower is better).
    origin: float32 [3] position of point (0, 0, 0) (Å).
    spacing: grid spacing (Å).
    center: float32 [3] box centre (Å).
  """
  values: np.ndarray
  origin: np.ndarray
  spacing: float
  center: np.ndarray


def pair_score(d):
  """Score (lower is better) of a probe atom at distance d (Å) from one
  protein heavy atom; float array like d."""
  lo, a, b, hi = CONTACT_RANGE
  clash = CLASH_WEIGHT * np.maximum(CLASH_DISTANCE - d, 0.0) ** 2
  contact = np.interp(d, [lo, a, b, hi], [0.0, 1.0, 1.0, 0.0])
  return clash - CONTACT_REWARD * contact


def score_grid(pocket, spacing=GRID_SPACING):
  """The receptor score over pocket's box (`pair_score` summed over the
  protein heavy atoms within CONTACT_RANGE[-1] of each grid point)."""
  from scipy.spatial import cKDTree  # pylint: disable=g-import-not-at-top
  center = np.asarray(pocket.center, np.float64)
  size = np.asarray(pocket.size, np.float64)
  n = np.floor(size / spacing).astype(int) + 1
  origin = center - (n - 1) * spacing / 2
  axes = [origin[a] + np.arange(n[a]) * spacing for a in range(3)]
  pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
  cutoff = CONTACT_RANGE[-1]
  tree = cKDTree(np.asarray(pocket.coords, np.float64))
  pairs = cKDTree(pts).sparse_distance_matrix(tree, cutoff,
                                              output_type="coo_matrix")
  values = np.bincount(pairs.row, weights=pair_score(pairs.data),
                       minlength=len(pts))
  return ScoreGrid(values.reshape(n).astype(np.float32),
                   origin.astype(np.float32), float(spacing),
                   center.astype(np.float32))


def _jax_fns():
  """The jitted search, built on first use (importing JAX is slow)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def rotate(q, x):
    """Rotates x [A, 3] by the unit quaternion q [4] (w, x, y, z)."""
    w, v = q[0], q[1:]
    t = 2.0 * jnp.cross(v, x)
    return x + w * t + jnp.cross(v, t)

  def qmul(a, b):
    aw, av, bw, bv = a[0], a[1:], b[0], b[1:]
    return jnp.concatenate([jnp.array([aw * bw - av @ bv]),
                            aw * bv + bw * av + jnp.cross(av, bv)])

  corners = np.array([[dx, dy, dz] for dx in (0, 1) for dy in (0, 1)
                      for dz in (0, 1)], np.int32)              # [8, 3]

  def lookup(grid, origin, spacing, x):
    """Trilinear interpolation of grid at x [A, 3] (clamped to the grid):
    one gather of the 8 corners from the flattened grid."""
    shape = jnp.asarray(grid.shape, jnp.int32)
    f = (x - origin) / spacing
    f = jnp.clip(f, 0.0, shape.astype(f.dtype) - 1.0 - 1e-4)
    i = jnp.floor(f).astype(jnp.int32)
    t = f - i
    c = i[:, None, :] + corners                                 # [A, 8, 3]
    flat = (c[..., 0] * shape[1] + c[..., 1]) * shape[2] + c[..., 2]
    w = jnp.prod(jnp.where(corners == 1, t[:, None, :], 1 - t[:, None, :]),
                 -1)                                            # [A, 8]
    return jnp.sum(w * grid.reshape(-1)[flat], -1)

  def pose_score(grid, origin, spacing, center, half, x, mask, q, t):
    y = rotate(q, x) + center + t
    outside = jnp.maximum(jnp.abs(y - center) - half, 0.0).sum(-1)
    e = lookup(grid, origin, spacing, y) + OUTSIDE_WEIGHT * outside
    return jnp.sum(e * mask)

  def place_one(grid, origin, spacing, center, half, x, mask, key):
    score = jax.vmap(pose_score, (None,) * 7 + (0, 0))
    args = (grid, origin, spacing, center, half, x, mask)

    def keep_best(best, q, t):
      s = score(*args, q, t)
      i = jnp.argmin(s)
      better = s[i] < best[2]
      return tuple(jnp.where(better, new, old)
                   for new, old in zip((q[i], t[i], s[i]), best))

    def sample(best, k):
      # SAMPLE_CHUNK uniform poses per step: one compiled scoring body.
      kq, kt = jax.random.split(k)
      q = jax.random.normal(kq, (SAMPLE_CHUNK, 4))
      q = q / jnp.linalg.norm(q, axis=-1, keepdims=True)
      t = jax.random.uniform(kt, (SAMPLE_CHUNK, 3), minval=-TRANSLATION,
                             maxval=TRANSLATION)
      return keep_best(best, q, t), None

    def refine(best, step):
      k, rot, shift = step
      kq, kt = jax.random.split(k)
      dq = jnp.concatenate(
          [jnp.ones((SAMPLE_CHUNK, 1)),
           0.5 * rot * jax.random.normal(kq, (SAMPLE_CHUNK, 3))], -1)
      dq = dq / jnp.linalg.norm(dq, axis=-1, keepdims=True)
      q = jax.vmap(qmul, (0, None))(dq, best[0])
      t = best[1] + shift * jax.random.normal(kt, (SAMPLE_CHUNK, 3))
      return keep_best(best, q, t), None

    k_sample, k_refine = jax.random.split(key)
    best = (jnp.array([1.0, 0.0, 0.0, 0.0]), jnp.zeros(3),
            jnp.asarray(jnp.inf, jnp.float32))
    best, _ = jax.lax.scan(
        sample, best, jax.random.split(k_sample,
                                       NUM_SAMPLES // SAMPLE_CHUNK))
    rounds = np.asarray(REFINE, np.float32)
    best, _ = jax.lax.scan(
        refine, best, (jax.random.split(k_refine, len(rounds)),
                       jnp.asarray(rounds[:, 0]), jnp.asarray(rounds[:, 1])))
    return rotate(best[0], x) + center + best[1], best[2]

  place = jax.jit(jax.vmap(place_one, (None,) * 5 + (0, 0, 0)))
  return place, jax


@functools.lru_cache(maxsize=1)
def _compiled():
  return _jax_fns()


def place_ligands(grid, conformers, keys, cube=24.0, seed=0):
  """Places rigid conformers in the pocket of `grid`.

  Args:
    grid: ScoreGrid of the receptor (`score_grid`).
    conformers: list of float32 [n_i, 3] conformers centred at the origin
      (Å), e.g. ligands.embed_conformer.
    keys: one int per conformer (e.g. its row in the ligand set); with
      `seed` it fixes that ligand's random search.
    cube: edge (Å) of the cube around the box centre that atoms are kept in
      (by a penalty).
    seed: integer seed.

  Returns:
    list of (posed float32 [n_i, 3] in Å in the receptor frame, score
    float: the pose's score, lower is better).
  """
  place, jax = _compiled()
  out = [None] * len(conformers)
  # Ligands grouped by padded size, so each size compiles once.
  budget = [max(ATOM_BUDGET, -(-len(c) // 32) * 32) for c in conformers]
  args = (grid.values, grid.origin, np.float32(grid.spacing), grid.center,
          np.float32(cube / 2.0 - OUTSIDE_MARGIN))
  for size in sorted(set(budget)):
    idx = [i for i, b in enumerate(budget) if b == size]
    for start in range(0, len(idx), BATCH):
      chunk = idx[start:start + BATCH]
      x = np.zeros((BATCH, size, 3), np.float32)
      mask = np.zeros((BATCH, size), np.float32)
      key = np.zeros((BATCH, 2), np.uint32)
      for row, i in enumerate(chunk):
        n = len(conformers[i])
        x[row, :n] = conformers[i]
        mask[row, :n] = 1
        key[row] = jax.random.key_data(jax.random.fold_in(
            jax.random.PRNGKey(seed), int(keys[i])))
      posed, score = jax.device_get(place(*args, x, mask, key))
      for row, i in enumerate(chunk):
        out[i] = (np.asarray(posed[row, :len(conformers[i])], np.float32),
                  float(score[row]))
  return out
