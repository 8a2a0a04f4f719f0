"""Dataset builder for a user folder of CIF files (topological vs trivial).

Folder layout (see docs/cif_folder.md):

  <dir>/labels.csv   header `id,label[,split]`; label is 0/1 or
                     `trivial`/`topological`; split in {train, val, test}
  <dir>/<id>.cif     one crystal structure per row of labels.csv (required)
  <dir>/<id>.npz     optional: any of kspace_nodes [n, 64], kspace_senders [e],
                     kspace_receivers [e], scalar [10], decomp [64]

Every example follows `mmjax.data.schema`. The crystal graph is built from
the CIF: one node per atom of the unit cell, edges between atoms that are
periodic neighbours within `cutoff` Angstrom. Modalities a material lacks are
masked (modality_mask 0, schema placeholder), never invented.

Any problem with a file raises a one-line `ValueError` that starts with the
file's path, so a bad material in a large folder is easy to find.

Usage:

  sources = load_cif_folder("/data/my_cifs", data_dir="/data/tfds")
  ex = sources["train"][0]          # dict of numpy arrays, schema format
  ex = read_material("a.cif", None, "topological", cutoff=4.0)  # no TFDS
"""

import csv
import dataclasses
import hashlib
import inspect
import os
from typing import Any, NamedTuple

import ase.data
import ase.io
import ase.io.cif
import ase.neighborlist
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from mmjax.data import schema

DEFAULT_CUTOFF = 4.0  # Angstrom; covers first and usually second shells.
LABELS_FILE = "labels.csv"
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)  # same order as SPLITS
NPZ_KEYS = ("kspace_nodes", "kspace_senders", "kspace_receivers", "scalar",
            "decomp")
_KSPACE_KEYS = NPZ_KEYS[:3]
# Bump whenever read_material's output changes, so datasets built by an older
# featurizer are not silently reused (it is part of the build fingerprint).
_FEATURIZER_VERSION = "1"
# Feature scales: bring each node feature to roughly [0, 1.5].
_Z_SCALE = 100.0  # atomic number
_RADIUS_SCALE = 2.0  # covalent radius, Angstrom
_MASS_SCALE = 200.0  # atomic mass, u
# Bounds on the work one CIF may ask for (found by tests/test_fuzz_readers.py:
# without them a crafted file hangs the reader for minutes). ase expands the
# atom sites by the symmetry operations in time quadratic in the number of
# positions generated; the neighbour list visits every periodic image within
# the cutoff. Real unit cells are far below both limits.
MAX_SITE_IMAGES = 1024  # atom sites x symmetry operations
MAX_CELL_IMAGES = 100_000  # periodic images of the cell within the cutoff
MAX_NEIGHBOUR_PAIRS = 1_000_000  # expected (atom, neighbour) pairs


class LabelRow(NamedTuple):
  """One row of labels.csv: material id, label in {0, 1}, split or None."""
  id: str
  label: int
  split: str | None


# ----------------------------------------------------------------------------
# Labels.


def parse_label(value: Any, where: str) -> int:
  """Returns 0 (trivial) or 1 (topological) for `value`.

  Args:
    value: 0, 1, "0", "1", "trivial" or "topological" (case-insensitive, may
      be surrounded by whitespace). Booleans and floats are rejected because
      they usually mean a wrong column was read.
    where: prefix for the error message (a file name, plus position).

  Raises:
    ValueError: if `value` is none of the above.
  """
  if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
    if int(value) in (0, 1):
      return int(value)
  elif isinstance(value, str):
    v = value.strip().lower()
    if v in ("0", "1"):
      return int(v)
    if v in schema.CLASS_NAMES:
      return schema.CLASS_NAMES.index(v)
  raise ValueError(f"{where}: bad label {value!r}, expected 0, 1, "
                   f"{schema.CLASS_NAMES[0]!r} or {schema.CLASS_NAMES[1]!r}")


def _check_id(mid: str, where: str) -> None:
  """Rejects ids that cannot safely name a file inside the folder."""
  if not mid or mid in (".", "..") or "/" in mid or "\\" in mid:
    raise ValueError(f"{where}: bad id {mid!r} (must be a plain file stem)")


def read_labels(folder: str) -> list[LabelRow]:
  """Reads and checks `<folder>/labels.csv`.

  Args:
    folder: the dataset folder.

  Returns:
    The rows in file order.

  Raises:
    ValueError: naming labels.csv if it is missing, empty, lacks the `id` or
      `label` column, or has an empty/duplicate id, bad label or bad split.
  """
  path = os.path.join(folder, LABELS_FILE)
  if not os.path.isfile(path):
    raise ValueError(f"{path}: file not found (every dataset folder needs "
                     f"{LABELS_FILE} with header id,label[,split])")
  try:
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    with open(path, newline="", encoding="utf-8-sig") as f:
      lines = list(csv.reader(f))
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise ValueError(f"{path}: cannot read CSV ({type(e).__name__}: "
                     f"{_first_line(e)})") from e
  lines = [l for l in lines if any(c.strip() for c in l)]  # skip blank lines
  if not lines:
    raise ValueError(f"{path}: empty file, expected header id,label[,split]")
  header = [c.strip().lower() for c in lines[0]]
  missing = [c for c in ("id", "label") if c not in header]
  if missing:
    raise ValueError(f"{path}: header {lines[0]} lacks column(s) {missing}")
  col = {c: header.index(c) for c in ("id", "label", "split") if c in header}
  rows, seen = [], {}
  for lineno, line in enumerate(lines[1:], start=2):
    where = f"{path} line {lineno}"
    if len(line) != len(header):
      raise ValueError(f"{where}: {len(line)} fields, header has "
                       f"{len(header)}")
    mid = line[col["id"]].strip()
    _check_id(mid, where)
    if mid in seen:
      raise ValueError(f"{where}: duplicate id {mid!r} (first on line "
                       f"{seen[mid]})")
    seen[mid] = lineno
    label = parse_label(line[col["label"]], where)
    split = None
    if "split" in col:
      split = line[col["split"]].strip().lower()
      if split not in SPLITS:
        raise ValueError(f"{where}: bad split {line[col['split']]!r}, "
                         f"expected one of {SPLITS}")
    rows.append(LabelRow(mid, label, split))
  if not rows:
    raise ValueError(f"{path}: no data rows after the header")
  return rows


# ----------------------------------------------------------------------------
# Splits.


def split_sizes(n: int) -> list[int]:
  """Sizes of train/val/test for n materials.

  70/15/15 by largest remainder (ties go to the earlier split); then each
  empty split (val before test) takes one material from the largest split if
  that leaves the donor non-empty. So 1 -> (1, 0, 0), 2 -> (1, 1, 0),
  3 -> (1, 1, 1), 4 -> (2, 1, 1), 100 -> (70, 15, 15).
  """
  exact = [n * f for f in SPLIT_FRACTIONS]
  counts = [int(np.floor(x)) for x in exact]
  order = sorted(range(len(SPLITS)), key=lambda s: (counts[s] - exact[s], s))
  for s in order[:n - sum(counts)]:
    counts[s] += 1
  for s in range(1, len(SPLITS)):
    donor = max(range(len(SPLITS)), key=lambda d: (counts[d], -d))
    if counts[s] == 0 and counts[donor] >= 2:
      counts[donor] -= 1
      counts[s] += 1
  return counts


def assign_splits(rows: list[LabelRow], seed: int) -> dict[str, list[LabelRow]]:
  """Assigns rows to train/val/test.

  If the rows carry splits (labels.csv has a `split` column) they are used as
  given. Otherwise the split is stratified by label: each class is shuffled
  with `seed`, its k-th of n_c members gets the rank (k + 0.5) / n_c, all rows
  are ordered by rank and cut into `split_sizes(len(rows))`; so every prefix,
  hence every split, holds the classes in proportion (within one material).

  Args:
    rows: labels.csv rows.
    seed: shuffling seed; the result depends only on (ids, labels, seed).

  Returns:
    {split: rows sorted by id}, every split in SPLITS present (maybe empty).
  """
  out = {s: [] for s in SPLITS}
  if rows and rows[0].split is not None:
    for r in rows:
      out[r.split].append(r)
    return out
  rng = np.random.default_rng(seed)
  ranked = []
  for c in sorted({r.label for r in rows}):
    # Sort first so the shuffle does not depend on labels.csv row order.
    members = sorted((r for r in rows if r.label == c), key=lambda r: r.id)
    for k, i in enumerate(rng.permutation(len(members))):
      ranked.append(((k + 0.5) / len(members), c, members[i]))
  ranked.sort(key=lambda t: t[:2])
  start = 0
  for s, size in zip(SPLITS, split_sizes(len(rows))):
    out[s] = sorted((t[2] for t in ranked[start:start + size]),
                    key=lambda r: r.id)
    start += size
  return out


# ----------------------------------------------------------------------------
# One material.


def _first_line(e: BaseException) -> str:
  """First line of an exception message (messages must stay one line)."""
  lines = str(e).strip().splitlines()
  return lines[0] if lines else "no message"


def _read_atoms(cif_path: str) -> "ase.Atoms":
  """Reads exactly one periodic structure with >= 1 atom from a CIF file.

  Raises:
    ValueError: naming `cif_path` for a missing/empty/unparsable file, no or
      several structures, no atoms, unknown elements or a degenerate cell.
  """
  if not os.path.isfile(cif_path):
    raise ValueError(f"{cif_path}: file not found")
  if os.path.getsize(cif_path) == 0:
    raise ValueError(f"{cif_path}: empty file")
  try:
    images = []
    with open(cif_path, "rb") as f:
      for block in ase.io.cif.parse_cif(f):
        if not block.has_structure():
          continue
        _check_site_images(block, cif_path)
        images.append(block.get_atoms())
  except ValueError as e:
    if str(e).startswith(cif_path):
      raise
    raise ValueError(f"{cif_path}: cannot parse CIF ({type(e).__name__}: "
                     f"{_first_line(e)})") from e
  except Exception as e:  # pylint: disable=broad-except
    # ase's CIF parser raises IndexError, AssertionError, KeyError,
    # RuntimeError, ... for malformed input; report them all one way.
    raise ValueError(f"{cif_path}: cannot parse CIF ({type(e).__name__}: "
                     f"{_first_line(e)})") from e
  images = [a for a in images if len(a)]
  if not images:
    raise ValueError(f"{cif_path}: no atoms (no _atom_site loop with "
                     "coordinates; truncated or not a crystal CIF?)")
  if len(images) > 1:
    raise ValueError(f"{cif_path}: {len(images)} structures, expected one "
                     "data block with atoms per file")
  atoms = images[0]
  if np.any(atoms.numbers <= 0):
    raise ValueError(f"{cif_path}: atom(s) with unknown element")
  if not np.all(np.isfinite(atoms.positions)):
    raise ValueError(f"{cif_path}: non-finite atom positions")
  volume = abs(np.linalg.det(atoms.cell.array))
  if not np.isfinite(volume) or volume < 1e-3:
    raise ValueError(f"{cif_path}: unit cell volume {volume:.3g} A^3 "
                     "(missing or degenerate _cell_length/_cell_angle)")
  atoms.pbc = True  # a crystal is periodic even if a block says otherwise
  return atoms


def _check_site_images(block, cif_path: str) -> None:
  """Rejects a CIF block whose symmetry expansion would take too long."""
  sites = 0
  for tag in ("_atom_site_fract_x", "_atom_site_cartn_x"):
    v = block.get(tag)
    if v is not None:
      sites = max(sites, len(v) if isinstance(v, list) else 1)
  if sites > MAX_SITE_IMAGES:
    raise ValueError(f"{cif_path}: {sites} atom sites, more than "
                     f"MAX_SITE_IMAGES={MAX_SITE_IMAGES} (too large a cell)")
  ops = 1
  if "_atom_site_fract_x" in block:
    ops = block.get_spacegroup(True).nsymop
  if sites * ops > MAX_SITE_IMAGES:
    raise ValueError(f"{cif_path}: {sites} atom sites x {ops} symmetry "
                     f"operations = {sites * ops} positions, more than "
                     f"MAX_SITE_IMAGES={MAX_SITE_IMAGES} (too large a cell)")


def _check_neighbour_work(atoms: "ase.Atoms", cutoff: float,
                          where: str) -> None:
  """Rejects cells whose neighbour list would be huge or take too long:
  lattice planes much closer than the cutoff (a flat or needle cell) or far
  more atoms per volume than any solid."""
  cell = atoms.cell.array
  volume = abs(np.linalg.det(cell))
  areas = np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
  with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
    spacing = volume / areas  # distance between lattice planes, per axis
    images = np.prod(2 * np.ceil(cutoff / spacing) + 1)
    pairs = len(atoms) ** 2 * 4 / 3 * np.pi * cutoff ** 3 / volume
  if not np.isfinite(images) or images > MAX_CELL_IMAGES:
    raise ValueError(f"{where}: lattice plane spacings "
                     f"{np.array2string(spacing, precision=3)} A are too small "
                     f"for cutoff {cutoff} A (degenerate cell?)")
  if not np.isfinite(pairs) or pairs > MAX_NEIGHBOUR_PAIRS:
    raise ValueError(f"{where}: {len(atoms)} atoms in {volume:.3g} A^3 give "
                     f"about {pairs:.3g} neighbour pairs within {cutoff} A, "
                     f"more than MAX_NEIGHBOUR_PAIRS={MAX_NEIGHBOUR_PAIRS} "
                     "(overlapping atoms or a wrong cell?)")


def crystal_node_features(numbers: np.ndarray) -> np.ndarray:
  """Per-atom features from the element alone.

  Args:
    numbers: int [n] atomic numbers.

  Returns:
    float32 [n, 3]: atomic number / 100, covalent radius (Angstrom, ase.data:
    Cordero et al. 2008; 0.2 for Z > 96 where none is tabulated) / 2, atomic
    mass (u, ase.data) / 200. Radius adds size information that Z and mass,
    which are nearly proportional, do not carry.
  """
  numbers = np.asarray(numbers)
  return np.stack([
      numbers / _Z_SCALE,
      ase.data.covalent_radii[numbers] / _RADIUS_SCALE,
      ase.data.atomic_masses[numbers] / _MASS_SCALE,
  ], axis=-1).astype(np.float32)


def crystal_graph(atoms: "ase.Atoms", cutoff: float, where: str):
  """Periodic neighbour graph of a unit cell.

  Edge (i, j) exists iff some periodic image of atom j lies within `cutoff`
  Angstrom of atom i. Edges i == j (an atom and its own images) are dropped:
  the GCN adds self loops itself. Several images of the same j collapse into
  one edge (i, j). The result is symmetric by construction and sorted by
  (sender, receiver).

  Args:
    atoms: periodic structure with n >= 1 atoms.
    cutoff: neighbour distance, Angstrom.
    where: prefix for error messages (the CIF path).

  Returns:
    nodes float32 [n, 3], senders int32 [e], receivers int32 [e].

  Raises:
    ValueError: if some atom has no neighbour at all (not even its own image)
      within `cutoff`: the cutoff is too small for this structure and the
      atom would be disconnected.
  """
  n = len(atoms)
  _check_neighbour_work(atoms, cutoff, where)
  i, j = ase.neighborlist.neighbor_list("ij", atoms, float(cutoff))
  lonely = np.setdiff1d(np.arange(n), i)
  if len(lonely):
    raise ValueError(f"{where}: {len(lonely)} of {n} atoms (first: index "
                     f"{lonely[0]}, {atoms[lonely[0]].symbol}) have no "
                     f"neighbour within cutoff {cutoff} A; use a larger cutoff")
  keep = i != j
  pairs = np.unique(i[keep].astype(np.int64) * n + j[keep])
  senders = (pairs // n).astype(np.int32)
  receivers = (pairs % n).astype(np.int32)
  return crystal_node_features(atoms.numbers), senders, receivers


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
  """Checks kspace edges against the schema; returns int32 copies."""
  for key, a in (("kspace_senders", s), ("kspace_receivers", r)):
    _numeric(a, key, where, "iu")
    if a.ndim != 1:
      raise ValueError(f"{where}: {key} has shape {a.shape}, expected [e]")
  if s.shape != r.shape:
    raise ValueError(f"{where}: kspace_senders {s.shape} and "
                     f"kspace_receivers {r.shape} differ in shape")
  if len(s) and (min(s.min(), r.min()) < 0 or max(s.max(), r.max()) >= n):
    raise ValueError(f"{where}: kspace edge index outside [0, {n}) "
                     f"(kspace_nodes has {n} rows)")
  s, r = s.astype(np.int64), r.astype(np.int64)
  if np.any(s == r):
    raise ValueError(f"{where}: kspace edges contain self loops (the "
                     "schema stores none; the GCN adds them)")
  key = s * n + r
  if len(np.unique(key)) != len(key):
    raise ValueError(f"{where}: kspace edges contain duplicates")
  if not np.array_equal(np.sort(key), np.sort(r * n + s)):
    raise ValueError(f"{where}: kspace edges are not symmetric (both "
                     "directions must be stored)")
  return s.astype(np.int32), r.astype(np.int32)


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
      keys, wrong shapes or dtypes, non-finite values or invalid edges.
  """
  if not os.path.isfile(npz_path):
    raise ValueError(f"{npz_path}: file not found")
  if os.path.getsize(npz_path) == 0:
    raise ValueError(f"{npz_path}: empty file")
  try:
    # allow_pickle=False: an npz must never execute code when loaded.
    with np.load(npz_path, allow_pickle=False) as z:
      if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError("not an npz archive")
      raw = {k: np.asarray(z[k]) for k in z.files}
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"{npz_path}: cannot read npz ({type(e).__name__}: "
                     f"{_first_line(e)})") from e
  unknown = sorted(set(raw) - set(NPZ_KEYS))
  if unknown:
    raise ValueError(f"{npz_path}: unknown array(s) {unknown}, allowed "
                     f"{list(NPZ_KEYS)}")
  if not raw:
    raise ValueError(f"{npz_path}: no arrays (delete the file if the "
                     "material has no extra modalities)")
  out = {}
  present = [k for k in _KSPACE_KEYS if k in raw]
  if present and len(present) != len(_KSPACE_KEYS):
    raise ValueError(f"{npz_path}: has {present} but kspace needs all of "
                     f"{list(_KSPACE_KEYS)}")
  if present:
    nodes = raw["kspace_nodes"]
    f = schema.NODE_FEATURES["kspace"]
    if nodes.ndim != 2 or nodes.shape[1] != f or not len(nodes):
      raise ValueError(f"{npz_path}: kspace_nodes has shape {nodes.shape}, "
                       f"expected [n>=1, {f}]")
    out["kspace_nodes"] = _as_finite_f32(nodes, "kspace_nodes", npz_path)
    out["kspace_senders"], out["kspace_receivers"] = _check_edges(
        raw["kspace_senders"], raw["kspace_receivers"], len(nodes), npz_path)
  for m in schema.VECTOR_MODALITIES:
    if m in raw:
      want = (schema.VECTOR_FEATURES[m],)
      if raw[m].shape != want:
        raise ValueError(f"{npz_path}: {m} has shape {raw[m].shape}, "
                         f"expected {list(want)}")
      out[m] = _as_finite_f32(raw[m], m, npz_path)
  return out


def _placeholder(m: str) -> dict[str, np.ndarray]:
  """Schema placeholder for a missing modality (1 zero node / zeros)."""
  if m in schema.GRAPH_MODALITIES:
    return {f"{m}_nodes": np.zeros((1, schema.NODE_FEATURES[m]), np.float32),
            f"{m}_senders": np.zeros((0,), np.int32),
            f"{m}_receivers": np.zeros((0,), np.int32)}
  return {m: np.zeros((schema.VECTOR_FEATURES[m],), np.float32)}


def read_material(cif_path: str, npz_path: str | None, label: Any,
                  cutoff: float = DEFAULT_CUTOFF,
                  material_id: str | None = None) -> dict[str, Any]:
  """Builds one schema example from a CIF file and an optional npz.

  Args:
    cif_path: the structure (required; its crystal graph is always present).
    npz_path: optional extra modalities (see `read_npz`), or None.
    label: 0/1 or "trivial"/"topological".
    cutoff: neighbour cutoff in Angstrom for the crystal graph.
    material_id: the example's `id`; defaults to the CIF file's stem.

  Returns:
    Dict in `mmjax.data.schema` format: numpy arrays, `label` an int64 0-d
    array, `id` a str. modality_mask is 1 for crystal and for each modality
    found in the npz, 0 (with the schema placeholder) otherwise.

  Raises:
    ValueError: one line, starting with the offending file's path.
  """
  if not (np.isfinite(cutoff) and cutoff > 0):
    raise ValueError(f"{cif_path}: cutoff must be a positive number of "
                     f"Angstrom, got {cutoff!r}")
  label = parse_label(label, cif_path)
  atoms = _read_atoms(cif_path)
  nodes, senders, receivers = crystal_graph(atoms, cutoff, cif_path)
  ex = {"crystal_nodes": nodes, "crystal_senders": senders,
        "crystal_receivers": receivers}
  extra = read_npz(npz_path) if npz_path is not None else {}
  mask = [1.0]
  for m in schema.MODALITIES[1:]:
    key = f"{m}_nodes" if m in schema.GRAPH_MODALITIES else m
    if key in extra:
      mask.append(1.0)
      ex.update({k: v for k, v in extra.items() if k.startswith(m)})
    else:
      mask.append(0.0)
      ex.update(_placeholder(m))
  ex["modality_mask"] = np.asarray(mask, np.float32)
  ex["label"] = np.asarray(label, np.int64)
  if material_id is None:
    material_id = os.path.splitext(os.path.basename(cif_path))[0]
  ex["id"] = str(material_id)
  schema.validate_example(ex, cif_path)  # guards this module's own logic
  return ex


def material_paths(folder: str, mid: str) -> tuple[str, str | None]:
  """(cif path, npz path or None if `<id>.npz` does not exist)."""
  npz = os.path.join(folder, f"{mid}.npz")
  return os.path.join(folder, f"{mid}.cif"), (npz if os.path.exists(npz)
                                                else None)


# ----------------------------------------------------------------------------
# TFDS builder.


def folder_fingerprint(path: str, cutoff: float, seed: int) -> str:
  """Hex digest identifying a build: folder, its files' stats, settings.

  Covers the absolute path, name/size/mtime of labels.csv and every .cif and
  .npz in the folder, cutoff, seed and the featurizer version: editing any of
  them gives a new dataset directory instead of reusing a stale one.
  """
  folder = os.path.realpath(path)
  if not os.path.isdir(folder):
    raise ValueError(f"{path}: not a directory")
  h = hashlib.sha256()
  h.update(f"v{_FEATURIZER_VERSION}|{folder}|{float(cutoff)!r}|{int(seed)}"
           .encode())
  with os.scandir(folder) as it:
    entries = sorted((e for e in it if e.is_file() and (
        e.name == LABELS_FILE or e.name.endswith((".cif", ".npz")))),
                     key=lambda e: e.name)
  for e in entries:
    st = e.stat()
    h.update(f"|{e.name}|{st.st_size}|{st.st_mtime_ns}".encode())
  return h.hexdigest()[:16]


@dataclasses.dataclass(eq=False)
class CifFolderConfig(tfds.core.BuilderConfig):
  """Which folder to read and how; `name` should come from `make_config`.

  Attributes:
    path: the dataset folder (labels.csv + CIFs [+ npz]).
    cutoff: crystal-graph neighbour cutoff, Angstrom.
    seed: seed of the stratified split (unused if labels.csv has `split`).
  """
  path: str = ""
  cutoff: float = DEFAULT_CUTOFF
  seed: int = 0


def make_config(path: str, cutoff: float = DEFAULT_CUTOFF,
                seed: int = 0) -> CifFolderConfig:
  """Config whose name (hence build dir) is the folder's fingerprint."""
  name = "h" + folder_fingerprint(path, cutoff, seed)
  return CifFolderConfig(
      name=name, path=os.path.realpath(path), cutoff=float(cutoff),
      seed=int(seed),
      description=f"{os.path.realpath(path)}, cutoff {cutoff} A, seed {seed}")


class CifFolder(tfds.core.GeneratorBasedBuilder):
  """`cif_folder`: crystal graphs from a user folder of CIF files.

  Build with a `CifFolderConfig` (see `make_config`), e.g.
    CifFolder(config=make_config(path), data_dir=d, file_format="array_record")
  Files are written under <data_dir>/cif_folder/<config name>/<version>.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    """This module's file (TFDS looks for a checksums file next to it).

    Overridden because TFDS's own version resolves package modules through
    `importlib_resources`, which etils needs for that but which is not a
    dependency here; for a module on disk the plain file path is the same.
    """
    return epath.Path(inspect.getfile(cls))

  def _info(self) -> tfds.core.DatasetInfo:
    # Built directly (not dataset_info_from_configs) because that one reads
    # metadata files next to the module, which this builder does not ship.
    cfg = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=("Topological vs trivial materials read from a CIF "
                     f"folder: {cfg.description if cfg else ''}"),
        features=schema.tfds_features(),
        metadata=tfds.core.MetadataDict(
            path=cfg.path if cfg else "", cutoff=cfg.cutoff if cfg else None,
            seed=cfg.seed if cfg else None,
            featurizer_version=_FEATURIZER_VERSION),
    )

  def _split_generators(self, dl_manager):
    """One generator per non-empty split (TFDS cannot write empty splits)."""
    del dl_manager  # files are local; nothing to download
    cfg = self.builder_config
    if cfg is None or not cfg.path:
      raise ValueError("cif_folder: needs a CifFolderConfig with a path; use "
                       "make_config(path) or load_cif_folder(path, data_dir)")
    rows = read_labels(cfg.path)
    # Fail before writing anything if a listed CIF is absent.
    for r in rows:
      cif, _ = material_paths(cfg.path, r.id)
      if not os.path.isfile(cif):
        raise ValueError(f"{cif}: file not found (listed as id {r.id!r} in "
                         f"{os.path.join(cfg.path, LABELS_FILE)})")
    splits = assign_splits(rows, cfg.seed)
    return {s: self._generate_examples(splits[s]) for s in SPLITS if splits[s]}

  def _generate_examples(self, rows):
    """Yields (id, example) for the given labels.csv rows."""
    cfg = self.builder_config
    for r in rows:
      cif, npz = material_paths(cfg.path, r.id)
      yield r.id, read_material(cif, npz, r.label, cfg.cutoff, r.id)


class CifFolderSource:
  """Random-access view of one split returning schema example dicts.

  Wraps a TFDS data source (which returns `id` as bytes and `label` as int)
  so that items match `read_material` exactly. `source` None = empty split.
  """

  def __init__(self, source, split: str):
    self._source = source
    self.split = split

  def __len__(self) -> int:
    return 0 if self._source is None else len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    i = int(index)
    n = len(self)
    if not -n <= i < n:
      raise IndexError(f"index {index} out of range for split {self.split!r} "
                       f"of size {n}")
    return self._to_schema(self._source[i % n])

  def __getitems__(self, indices) -> list[dict[str, Any]]:
    """Batched read (used by grain); same results as __getitem__."""
    return [self[i] for i in indices]

  def __repr__(self) -> str:
    return f"CifFolderSource(split={self.split!r}, len={len(self)})"

  @staticmethod
  def _to_schema(record: dict[str, Any]) -> dict[str, Any]:
    ex = dict(record)
    ex["label"] = np.asarray(ex["label"], np.int64)
    if isinstance(ex["id"], bytes):
      ex["id"] = ex["id"].decode("utf-8")
    return ex


def load_cif_folder(path: str, data_dir: str, cutoff: float = DEFAULT_CUTOFF,
                    seed: int = 0) -> dict[str, CifFolderSource]:
  """Builds (if not built yet) and opens the dataset of a CIF folder.

  Args:
    path: the folder with labels.csv and the CIF (and npz) files.
    data_dir: TFDS data dir; the build lands in
      <data_dir>/cif_folder/h<fingerprint>/1.0.0, the fingerprint covering the
      folder's path, file stats, cutoff and seed.
    cutoff: crystal-graph neighbour cutoff, Angstrom.
    seed: stratified split seed (ignored if labels.csv has a split column).

  Returns:
    {"train": ..., "val": ..., "test": ...}; each supports len() and
    source[i] -> example dict. A split with no materials has length 0.

  Raises:
    ValueError: naming the offending file (see `read_labels`,
      `read_material`); nothing is left half-written.
  """
  builder = CifFolder(config=make_config(path, cutoff, seed),
                      data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare()
  sources = builder.as_data_source()
  return {s: CifFolderSource(sources.get(s), s) for s in SPLITS}
