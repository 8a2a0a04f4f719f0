"""A plaquette encoder for the k-space modality of materials_tb.

The k-space node features hold n = d/|d| on a periodic 32 x 32 mesh of the
Brillouin zone (`tb_features.kspace_node_features`). The label is fixed by
the degree of k -> n: the sum over the mesh's plaquettes of the signed solid
angles of their two triangles, / 4 pi (`chern.degree_of_unit_field`). This
encoder has the same form: a shared MLP phi on every plaquette's vectors,
pooled over the plaquettes.

Why sum pooling can represent the degree. The solid angle Omega of a
triangle (p, q, r) is a smooth function of rotation invariants of its
vectors (Van Oosterom-Strackee):
  tan(Omega / 2) = p.(q x r) / (1 + p.q + q.r + r.p),
and the degree is the sum over plaquettes of Omega(a, b, c) + Omega(a, c, e)
over 4 pi. With the "invariants" inputs (those 4 numbers per triangle) phi
need only approximate that one function of 8 numbers, and sum pooling adds
it up over the 1,024 plaquettes, as the degree does. Mean pooling is sum /
1,024 on this fixed mesh, a fixed scale, so it can represent the same sum;
max pooling keeps one plaquette per feature and cannot add. phi is taken
minus its value on a flat plaquette (`flat_zero`, see PlaquetteEncoder),
which loses nothing: a flat plaquette's solid angle is 0.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmjax.data.materials import tb_features
from mmjax.models.mlp import ACTIVATIONS

INPUTS = ("invariants", "coordinates")
NEIGHBOURHOODS = ("plaquette", "node")
POOLINGS = ("sum", "mean", "max")


def unit_mesh(nodes):
  """The mesh of unit vectors n from k-space node features, in float32.

  Renormalised: the stored vectors are float32 and test-time noise may be
  added to the node features.

  Args:
    nodes: float [B, 64, 64] k-space node features.

  Returns:
    float32 [B, 32, 32, 3] n on the mesh (axis 1 is kx, axis 2 is ky).
  """
  n = tb_features.kspace_mesh_from_nodes(jnp.asarray(nodes))[..., :3]
  n = n.astype(jnp.float32)
  norm = jnp.linalg.norm(n, axis=-1, keepdims=True)
  return n / jnp.maximum(norm, jnp.finfo(jnp.float32).tiny)


def plaquette_corners(n):
  """Corners a = (i, j), b = (i+1, j), c = (i+1, j+1), e = (i, j+1) of every
  periodic plaquette, those of `chern.degree_of_unit_field`.

  Args:
    n: [..., N, N, 3] vectors (axis -3 is kx, axis -2 is ky).

  Returns:
    (a, b, c, e), each [..., N, N, 3]; plaquette (i, j) at index (i, j).
  """
  b = jnp.roll(n, -1, axis=-3)
  c = jnp.roll(b, -1, axis=-2)
  e = jnp.roll(n, -1, axis=-2)
  return n, b, c, e


def triangle_invariants(p, q, r):
  """The rotation invariants that fix a triangle's signed solid angle.

  Args:
    p, q, r: [..., 3] unit vectors.

  Returns:
    [..., 4]: p.(q x r), p.q, q.r, r.p.
  """
  triple = (p * jnp.cross(q, r)).sum(-1)
  return jnp.stack([triple, (p * q).sum(-1), (q * r).sum(-1),
                    (r * p).sum(-1)], axis=-1)


def plaquette_invariants(n):
  """Invariants of the triangles (a, b, c) and (a, c, e) of every plaquette.

  Args:
    n: [..., N, N, 3] unit vectors.

  Returns:
    [..., N, N, 8]: `triangle_invariants` of (a, b, c), then of (a, c, e).
  """
  a, b, c, e = plaquette_corners(n)
  return jnp.concatenate([triangle_invariants(a, b, c),
                          triangle_invariants(a, c, e)], axis=-1)


def plaquette_coordinates(n):
  """The raw corners of every plaquette: a periodic 2 x 2 convolution's
  receptive field.

  Args:
    n: [..., N, N, 3] unit vectors.

  Returns:
    [..., N, N, 12]: a, b, c, e.
  """
  return jnp.concatenate(plaquette_corners(n), axis=-1)


def solid_angles(invariants):
  """Signed solid angles of the two triangles of every plaquette from their
  invariants (Van Oosterom-Strackee; `chern.degree_of_unit_field`).

  Args:
    invariants: [..., 8] from `plaquette_invariants`.

  Returns:
    [..., 2] solid angles (sr) of (a, b, c) and (a, c, e).
  """
  tri = invariants.reshape(invariants.shape[:-1] + (2, 4))
  return 2 * jnp.arctan2(tri[..., 0], 1 + tri[..., 1:].sum(-1))


def flat_features(n, inputs):
  """phi's inputs for a flat plaquette (all four corners a): triple
  products 0 and dot products 1, or the corner a four times.

  Args:
    n: [B, N, N, 3] unit vectors.
    inputs: "invariants" or "coordinates".

  Returns:
    [1, 1, 1, 8] (invariants: the same everywhere) or [B, N, N, 12].
  """
  if inputs == "invariants":
    return jnp.asarray([0, 1, 1, 1, 0, 1, 1, 1], jnp.float32)[None, None,
                                                               None]
  return jnp.concatenate([n] * 4, axis=-1)


def local_features(n, neighbourhood, inputs):
  """phi's inputs at every plaquette or mesh point.

  Args:
    n: [B, N, N, 3] unit vectors.
    neighbourhood: "plaquette" or "node".
    inputs: "invariants" or "coordinates" ("node": coordinates only, a
      single unit vector has no invariant).

  Returns:
    [B, N, N, K], K = 8 (plaquette invariants), 12 (plaquette coordinates)
    or 3 (node).
  """
  if neighbourhood not in NEIGHBOURHOODS:
    raise ValueError(f"plaquette neighbourhood: unknown '{neighbourhood}' "
                     f"(known: {', '.join(NEIGHBOURHOODS)})")
  if inputs not in INPUTS:
    raise ValueError(f"plaquette inputs: unknown '{inputs}' "
                     f"(known: {', '.join(INPUTS)})")
  if neighbourhood == "node":
    if inputs != "coordinates":
      raise ValueError("plaquette neighbourhood 'node' reads each point's "
                       "coordinates: set inputs='coordinates'")
    return n
  if inputs == "invariants":
    return plaquette_invariants(n)
  return plaquette_coordinates(n)


class PlaquetteEncoder(nn.Module):
  """A shared MLP phi on every plaquette (or mesh point), pooled.

  nodes [B, 64, 64] -> n [B, 32, 32, 3] -> phi's inputs [B, 32, 32, K]
  (`local_features`) -> phi, Dense + GELU per width, [B, 32, 32, W] ->
  `pooling` ("sum", "mean" or "max") over the 1,024 positions -> [B, W],
  W = widths[-1].

  `flat_zero` (plaquettes only): phi(x) - phi(flat), flat a plaquette
  whose corners are all a (`flat_features`), so that phi vanishes on a
  flat plaquette as its solid angle does. Without it every pooled feature
  carries 1,024 times phi's value on the near-flat plaquettes that make up
  most of a smooth field, an offset that dwarfs the part that varies with
  the field and moves with every update, which the head's BatchNorm
  running statistics cannot follow (evaluation drifts from training).

  The geometry runs in float32 whatever `dtype` (small triple products
  would lose their digits), phi in `dtype`, the subtraction and pooling in
  float32 (a sum of 1,024 terms), the output in `dtype`.
  """
  widths: Sequence[int] = (64, 64)
  inputs: str = "invariants"
  neighbourhood: str = "plaquette"
  pooling: str = "sum"
  flat_zero: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, nodes):
    if self.pooling not in POOLINGS:
      raise ValueError(f"plaquette pooling: unknown '{self.pooling}' "
                       f"(known: {', '.join(POOLINGS)})")
    n = unit_mesh(nodes)
    x = local_features(n, self.neighbourhood, self.inputs)
    layers = [nn.Dense(width, dtype=self.dtype, name=f"phi{i}")
              for i, width in enumerate(self.widths)]

    def phi(h):
      h = h.astype(self.dtype)
      for layer in layers:
        h = ACTIVATIONS["gelu"](layer(h))
      return h.astype(jnp.float32)

    h = phi(x)
    if self.flat_zero and self.neighbourhood == "plaquette":
      h = h - phi(flat_features(n, self.inputs))
    pool = {"sum": jnp.sum, "mean": jnp.mean, "max": jnp.max}[self.pooling]
    return pool(h, axis=(1, 2)).astype(self.dtype)
