"""The optional per-material npz of a CIF folder: extra modalities.

  <dir>/<id>.npz     any of kspace_nodes [n, 64], kspace_senders [e],
                     kspace_receivers [e], scalar [10], decomp [64]

Errors are one-line `ValueError`s starting with the npz's path.
"""

import numpy as np

from mmjax.data.materials import schema
from mmjax.data.materials.read_errors import check_file
from mmjax.data.materials.read_errors import first_line

NPZ_KEYS = ("kspace_nodes", "kspace_senders", "kspace_receivers", "scalar",
            "decomp")
_KSPACE_KEYS = NPZ_KEYS[:3]


def _numeric(a: np.ndarray, key: str, where: str, kinds: str) -> None:
  """Raises unless `a` has a dtype kind in `kinds` (e.g. 'biuf')."""
  if a.dtype.kind not in kinds:
    raise ValueError(f"{where}: {key} has dtype {a.dtype}, expected "
                     f"{'integers' if kinds == 'iu' else 'numbers'}")


def _as_finite_f32(a: np.ndarray, key: str, where: str) -> np.ndarray:
  """Casts to float32; rejects NaN/inf (also values that overflow float32)."""
  _numeric(a, key, where, "biuf")
  with np.errstate(over="ignore"):
    out = a.astype(np.float32)
  if not np.all(np.isfinite(out)):
    raise ValueError(f"{where}: {key} has non-finite values (NaN/inf or "
                     "beyond float32 range)")
  return out


def _check_edges(s: np.ndarray, r: np.ndarray, n: int, where: str):
  """Checks kspace edges against the schema; returns int32 copies.

  Beyond `schema.check_edges` (shapes, index range, no self loops), user
  graphs must have integer indices, no duplicate edge, and both directions.
  """
  for key, a in (("kspace_senders", s), ("kspace_receivers", r)):
    _numeric(a, key, where, "iu")
  schema.check_edges(s, r, n, "kspace", where)
  s, r = s.astype(np.int64), r.astype(np.int64)
  key = s * n + r
  if len(np.unique(key)) != len(key):
    raise ValueError(f"{where}: kspace edges contain duplicates")
  if not np.array_equal(np.sort(key), np.sort(r * n + s)):
    raise ValueError(f"{where}: kspace edges are not symmetric (both "
                     "directions must be stored)")
  return s.astype(np.int32), r.astype(np.int32)


def _load(npz_path: str) -> dict[str, np.ndarray]:
  """All arrays of an npz archive, without unpickling anything."""
  check_file(npz_path)
  try:
    # allow_pickle=False: an npz must never execute code when loaded.
    with np.load(npz_path, allow_pickle=False) as z:
      if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError("not an npz archive")
      return {k: np.asarray(z[k]) for k in z.files}
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"{npz_path}: cannot read npz ({type(e).__name__}: "
                     f"{first_line(e)})") from e


def _read_kspace(raw: dict[str, np.ndarray], npz_path: str):
  """The kspace graph of `raw` as schema arrays, or {} if it has none."""
  present = [k for k in _KSPACE_KEYS if k in raw]
  if not present:
    return {}
  if len(present) != len(_KSPACE_KEYS):
    raise ValueError(f"{npz_path}: has {present} but kspace needs all of "
                     f"{list(_KSPACE_KEYS)}")
  nodes = raw["kspace_nodes"]
  f = schema.NODE_FEATURES["kspace"]
  if nodes.ndim != 2 or nodes.shape[1] != f or not len(nodes):
    raise ValueError(f"{npz_path}: kspace_nodes has shape {nodes.shape}, "
                     f"expected [n>=1, {f}]")
  out = {"kspace_nodes": _as_finite_f32(nodes, "kspace_nodes", npz_path)}
  out["kspace_senders"], out["kspace_receivers"] = _check_edges(
      raw["kspace_senders"], raw["kspace_receivers"], len(nodes), npz_path)
  return out


def read_npz(npz_path: str) -> dict[str, np.ndarray]:
  """Reads and checks the optional modalities of one material.

  Args:
    npz_path: an .npz with any of NPZ_KEYS; the three kspace arrays come
      together or not at all.

  Returns:
    The arrays present, cast to schema dtypes (float32 features, int32
    edges); keys absent from the file are absent here.

  Raises:
    ValueError: naming `npz_path` for a missing/empty/unreadable file, unknown
      keys, wrong shapes or dtypes, non-finite values or invalid edges
      (self loops included, as in `schema.validate_example`).
  """
  raw = _load(npz_path)
  unknown = sorted(set(raw) - set(NPZ_KEYS))
  if unknown:
    raise ValueError(f"{npz_path}: unknown array(s) {unknown}, allowed "
                     f"{list(NPZ_KEYS)}")
  if not raw:
    raise ValueError(f"{npz_path}: no arrays (delete the file if the "
                     "material has no extra modalities)")
  out = _read_kspace(raw, npz_path)
  for m in schema.VECTOR_MODALITIES:
    if m in raw:
      want = (schema.VECTOR_FEATURES[m],)
      if raw[m].shape != want:
        raise ValueError(f"{npz_path}: {m} has shape {raw[m].shape}, "
                         f"expected {list(want)}")
      out[m] = _as_finite_f32(raw[m], m, npz_path)
  return out
