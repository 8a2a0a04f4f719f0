"""Fuzzing the CIF-folder readers (CIF, labels.csv, npz).

Inputs are derived, with a fixed seed, from the real mineral CIFs that ase
ships (ase/test/testdata/minerals/*.cif) and from valid npz / labels.csv
files: truncations, random byte flips, splices, and hand-made adversarial
cases (huge or NaN numbers, degenerate cells, overlapping atoms, very many
atoms, unicode, binary junk, empty loops, pickles, decompression bombs...).

Every input must give either a valid example (schema.validate_example passes
and the crystal graph has nodes) / valid rows, or a one-line ValueError whose
message names the file. Never a hang (each read runs in a worker process
with a per-input time limit), never another exception type, never an empty
result. The counts per category and outcome are printed (`pytest -s`) and
recorded in docs/reliability.md.
"""

import collections
import glob
import io
import multiprocessing
import os
import time
import zipfile

import ase
import numpy as np
import pytest

SEED = 1234
PER_INPUT_TIMEOUT_S = 10.0
MINERALS = os.path.join(os.path.dirname(ase.__file__), "test", "testdata",
                        "minerals")
CIFS = sorted(glob.glob(os.path.join(MINERALS, "*.cif")))

NACL = """data_NaCl
_cell_length_a {a}
_cell_length_b {b}
_cell_length_c {c}
_cell_angle_alpha {alpha}
_cell_angle_beta {beta}
_cell_angle_gamma {gamma}
_symmetry_space_group_name_H-M '{sg}'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
{rows}"""
NACL_ROWS = "Na1 Na 0.0 0.0 0.0\nCl1 Cl 0.5 0.5 0.5\n"


def nacl(rows=NACL_ROWS, a=5.64, b=None, c=None, alpha=90, beta=90,
         gamma=90, sg="F m -3 m"):
  return NACL.format(a=a, b=a if b is None else b, c=a if c is None else c,
                     alpha=alpha, beta=beta, gamma=gamma, sg=sg, rows=rows)


# ----------------------------------------------------------------------------
# The worker: runs one read, classifies the outcome. Runs in a subprocess.


def _check_example(ex, where):
  from mmjax.data.materials import schema  # pylint: disable=g-import-not-at-top
  schema.validate_example(ex, where)
  n = len(ex["crystal_nodes"])
  assert n >= 1, "empty crystal graph"
  assert ex["modality_mask"][0] == 1
  return f"{n} atoms, {len(ex['crystal_senders'])} edges"


def _read(kind, path, cif):
  from mmjax.data.materials.cif_labels import read_labels  # pylint: disable=g-import-not-at-top
  from mmjax.data.materials.cif_material import read_material  # pylint: disable=g-import-not-at-top
  if kind == "cif":
    return _check_example(read_material(path, None, 1), path)
  if kind == "npz":
    ex = read_material(cif, path, 0)
    assert ex["modality_mask"][1:].any(), "npz read but nothing used"
    return _check_example(ex, path)
  if kind == "sleep":  # For the harness's own test.
    time.sleep(3600)
  if kind == "labels":
    rows = read_labels(path)
    assert rows and all(r.label in (0, 1) and r.id for r in rows)
    return f"{len(rows)} rows"
  raise AssertionError(kind)


def _worker(conn):
  from mmjax.data.materials import cif_material  # pylint: disable=g-import-not-at-top,unused-import
  conn.send("ready")
  while True:
    task = conn.recv()
    if task is None:
      return
    kind, path, cif, name = task
    try:
      out = ("ok", _read(kind, path, cif))
    except ValueError as e:
      msg = str(e)
      named = name in msg and "\n" not in msg.strip()
      out = ("value_error" if named else "bad_message", msg[:300])
    except AssertionError as e:
      out = ("bad_result", str(e)[:300])
    except BaseException as e:  # pylint: disable=broad-except
      out = ("other_exception", f"{type(e).__name__}: {str(e)[:300]}")
    conn.send(out)


class Pool:
  """One worker process; a read that outlives the limit kills it (a hang)."""

  def __init__(self):
    self.ctx = multiprocessing.get_context("spawn")
    self._start()

  def _start(self):
    self.conn, child = self.ctx.Pipe()
    self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
    self.proc.start()
    if not self.conn.poll(120) or self.conn.recv() != "ready":
      raise RuntimeError("fuzz worker did not start")

  def run(self, task):
    self.conn.send(task)
    if self.conn.poll(PER_INPUT_TIMEOUT_S):
      try:
        return self.conn.recv()
      except EOFError:
        pass
    dead = not self.proc.is_alive()
    self.close()
    self._start()
    return ("crash" if dead else "hang", f"> {PER_INPUT_TIMEOUT_S} s")

  def close(self):
    if self.proc.is_alive():
      self.proc.kill()
    self.proc.join(10)


# ----------------------------------------------------------------------------
# Inputs.


def _flip(rng, data, max_flips=20):
  b = bytearray(data)
  for _ in range(int(rng.integers(1, max_flips + 1))):
    i = int(rng.integers(len(b)))
    b[i] = int(rng.integers(256))
  return bytes(b)


def _truncate(rng, data):
  return data[:int(rng.integers(1, len(data)))]


def cif_inputs(rng):
  """{category: [(name, bytes)]}."""
  real = [(os.path.basename(p)[:-4], open(p, "rb").read()) for p in CIFS]
  out = collections.defaultdict(list)
  for stem, data in real:
    out["cif_valid"].append((f"{stem}.cif", data))
    for k in range(16):
      out["cif_truncated"].append((f"{stem}_t{k}.cif", _truncate(rng, data)))
    for k in range(16):
      out["cif_byteflip"].append((f"{stem}_f{k}.cif", _flip(rng, data)))
    for k in range(2):  # A real header with another file's tail.
      other = real[int(rng.integers(len(real)))][1]
      cut, cut2 = int(rng.integers(len(data))), int(rng.integers(len(other)))
      out["cif_spliced"].append((f"{stem}_s{k}.cif",
                                 data[:cut] + other[cut2:]))
  many = "".join(f"X{i} Si {x:.4f} {y:.4f} {z:.4f}\n" for i, (x, y, z) in
                 enumerate(rng.random((3000, 3))))
  adversarial = {
      "huge_cell": nacl(a=1e300),
      "inf_cell": nacl(a="inf"),
      "nan_cell": nacl(a="nan"),
      "negative_cell": nacl(a=-5.64),
      "zero_cell": nacl(a=0),
      "tiny_cell": nacl(a=1e-6),
      "flat_cell": nacl(a=1000, b=1000, c=1e-9, sg="P 1"),
      "needle_cell": nacl(a=0.01, b=0.01, c=1e4, sg="P 1"),
      "angle_zero": nacl(alpha=0),
      "angle_180": nacl(gamma=180, sg="P 1"),
      "angle_nan": nacl(beta="nan"),
      "angles_impossible": nacl(alpha=10, beta=10, gamma=150, sg="P 1"),
      "nan_coords": nacl("Na1 Na nan 0 0\nCl1 Cl 0.5 0.5 0.5\n"),
      "inf_coords": nacl("Na1 Na inf 0 0\nCl1 Cl 0.5 0.5 0.5\n"),
      "huge_coords": nacl("Na1 Na 1e300 0 0\nCl1 Cl 0.5 0.5 0.5\n", sg="P 1"),
      "huge_coords_f32": nacl("Na1 Na 1e39 0 0\nCl1 Cl 0.5 0.5 0.5\n",
                              sg="P 1"),
      "duplicate_atoms": nacl(NACL_ROWS + "Na2 Na 0.0 0.0 0.0\n", sg="P 1"),
      "duplicate_atoms_symmetry": nacl(NACL_ROWS + "Na2 Na 0.0 0.0 0.0\n"),
      "overlapping_species": nacl("Na1 Na 0 0 0\nCl1 Cl 0 0 0\n", sg="P 1"),
      "3000_atoms": nacl(many, a=10.0, sg="P 1"),
      "3000_atoms_symmetry": nacl(many, a=10.0, sg="F m -3 m"),
      "claims_1e6_atoms": nacl(sg="P 1") + "_cell_formula_units_Z 1000000\n"
                          + "_exptl_crystal_density_diffrn 1e6\n",
      "unknown_element": nacl("Xx1 Xx 0 0 0\n"),
      "dummy_element": nacl("X1 X 0 0 0\n"),
      "unicode_element": nacl("Ñ1 Ñá 0 0 0\nCl1 Cl 0.5 0.5 0.5\n"),
      "unicode_text": "data_ÿ€😀\n_chemical_name_mineral 'Ħälïtë 😀'\n"
                      + nacl().split("\n", 1)[1],
      "unknown_space_group": nacl(sg="Q 9 9"),
      "space_group_number_999": nacl(sg="P 1").replace(
          "_symmetry_space_group_name_H-M 'P 1'",
          "_symmetry_Int_Tables_number 999"),
      "bad_symop": nacl(sg="P 1") + "loop_\n_symmetry_equiv_pos_as_xyz\n"
                   "'x,y,z,w'\n'1/0,y,z'\n",
      "empty_atom_loop": nacl(""),
      "loop_no_headers": "data_x\nloop_\n\n",
      "empty_loops": "data_x\nloop_\n_a\nloop_\n_b\n",
      "only_data_block": "data_x\n",
      "two_blocks": nacl() + "\n" + nacl().replace("data_NaCl", "data_2"),
      "unterminated_text_field": nacl() + "_note\n;\nnever closed\n",
      "long_line": nacl() + "_note " + "x" * 1_000_000 + "\n",
      "null_bytes": nacl().replace("Na1", "Na\x001"),
      "short_row": nacl("Na1 Na 0.0 0.0\n"),
      "text_coords": nacl("Na1 Na a b c\n"),
      "partial_occupancy": nacl(sg="P 1").replace(
          "_atom_site_fract_z\n", "_atom_site_fract_z\n"
          "_atom_site_occupancy\n").replace("0.0 0.0 0.0\n",
                                            "0.0 0.0 0.0 0.5\n").replace(
              "0.5 0.5 0.5\n", "0.5 0.5 0.5 -3\n"),
      "isolated_atom": nacl("Na1 Na 0 0 0\n", a=50.0, sg="P 1"),
      "binary_junk": bytes(rng.integers(0, 256, 4096, dtype=np.uint8)),
      "utf16": nacl().encode("utf-16"),
      "gzip_bytes": b"\x1f\x8b\x08\x00" + bytes(200),
  }
  for name, text in adversarial.items():
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    out["cif_adversarial"].append((f"{name}.cif", data))
  return out


def _kspace(rng, n=6):
  s = np.r_[np.arange(n - 1), np.arange(1, n)]
  r = np.r_[np.arange(1, n), np.arange(n - 1)]
  return {"kspace_nodes": rng.random((n, 64)), "kspace_senders": s,
          "kspace_receivers": r}


def _npz_bytes(**arrays):
  f = io.BytesIO()
  np.savez(f, **arrays)
  return f.getvalue()


def _bomb():
  """An npz whose member decompresses to 400 MB of zeros."""
  f = io.BytesIO()
  header = io.BytesIO()
  np.lib.format.write_array_header_1_0(
      header, {"descr": "<f4", "fortran_order": False,
               "shape": (1_600_000, 64)})
  with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
    with z.open("kspace_nodes.npy", "w", force_zip64=True) as m:
      m.write(header.getvalue())
      chunk = bytes(1 << 22)
      for _ in range(100):
        m.write(chunk)
  return f.getvalue()


def _lying_header():
  """A .npy whose header claims 10^12 float32 (4 TB) but holds 40 bytes."""
  header = io.BytesIO()
  np.lib.format.write_array_header_1_0(
      header, {"descr": "<f4", "fortran_order": False,
               "shape": (10**12,)})
  f = io.BytesIO()
  with zipfile.ZipFile(f, "w") as z:
    z.writestr("scalar.npy", header.getvalue() + bytes(40))
  return f.getvalue()


def npz_inputs(rng):
  valid = _npz_bytes(**_kspace(rng), scalar=rng.random(10),
                     decomp=rng.random(64))
  out = collections.defaultdict(list)
  out["npz_valid"].append(("valid.npz", valid))
  out["npz_valid"].append(("scalar_only.npz", _npz_bytes(scalar=np.ones(10))))
  for k in range(20):
    out["npz_truncated"].append((f"t{k}.npz", _truncate(rng, valid)))
  for k in range(40):
    out["npz_byteflip"].append((f"f{k}.npz", _flip(rng, valid, 8)))
  k = _kspace(rng)
  adversarial = {
      "pickled": _npz_bytes(scalar=np.array([{}] * 10, dtype=object)),
      "nan_nodes": _npz_bytes(**dict(k, kspace_nodes=np.full((6, 64),
                                                             np.nan))),
      "f32_overflow": _npz_bytes(decomp=np.full(64, 1e39)),
      "complex": _npz_bytes(scalar=np.ones(10, complex)),
      "strings": _npz_bytes(scalar=np.array(["1"] * 10)),
      "huge_index": _npz_bytes(**dict(k, kspace_senders=k["kspace_senders"]
                                      + 2**40)),
      "negative_index": _npz_bytes(**dict(k, kspace_senders=-k[
          "kspace_senders"] - 1)),
      "uint64_index": _npz_bytes(**dict(
          k, kspace_senders=k["kspace_senders"].astype(np.uint64) + 2**63)),
      "scalar_0d": _npz_bytes(scalar=np.float32(1)),
      "nodes_3d": _npz_bytes(**dict(k, kspace_nodes=np.ones((6, 64, 1)))),
      "structured_dtype": _npz_bytes(scalar=np.zeros(10, "f4,f4")),
      "bool_edges": _npz_bytes(**dict(k, kspace_senders=k[
          "kspace_senders"] > 0)),
      "lying_header": _lying_header(),
      "decompression_bomb": _bomb(),
      "not_zip": b"PK\x03\x04" + bytes(rng.integers(0, 256, 300,
                                                   dtype=np.uint8)),
      "empty_zip": _npz_bytes(),
      "unicode_key": _npz_bytes(**{"scälar": np.ones(10)}),
  }
  for name, data in adversarial.items():
    out["npz_adversarial"].append((f"{name}.npz", data))
  return out


def labels_inputs(rng):
  valid = ("id,label,split\n" + "".join(
      f"m{i},{['trivial', 'topological', '0', '1'][i % 4]},"
      f"{['train', 'val', 'test'][i % 3]}\n" for i in range(30))).encode()
  out = collections.defaultdict(list)
  out["labels_valid"].append(("valid", valid))
  out["labels_valid"].append(("bom", b"\xef\xbb\xbf" + valid))
  for k in range(20):
    out["labels_truncated"].append((f"t{k}", _truncate(rng, valid)))
  for k in range(30):
    out["labels_byteflip"].append((f"f{k}", _flip(rng, valid, 6)))
  adversarial = {
      "header_only": b"id,label\n",
      "no_header": b"m1,1\nm2,0\n",
      "nul": b"id,label\nm\x001,1\n",
      "huge_field": b"id,label\n" + b"m" * 200_000 + b",1\n",
      "latin1": b"id,label\nm\xe91,1\n",
      "utf16": "id,label\nm1,1\n".encode("utf-16"),
      "unicode_ok": "id,label\nmäterial_😀,1\n".encode(),
      "unicode_digit": "id,label\nm1,１\n".encode(),
      "path_id": b"id,label\n../etc/passwd,1\n",
      "dot_id": b"id,label\n..,1\n",
      "duplicate": b"id,label\nm1,1\nm1,0\n",
      "label_2": b"id,label\nm1,2\n",
      "label_true": b"id,label\nm1,true\n",
      "bad_split": b"id,label,split\nm1,1,training\n",
      "unclosed_quote": b'id,label\n"m1,1\nm2,0\n',
      "ragged": b"id,label\nm1,1,extra\n",
      "binary_junk": bytes(rng.integers(0, 256, 2000, dtype=np.uint8)),
      "million_commas": b"id,label\n" + b"," * 1_000_000 + b"\n",
  }
  for name, data in adversarial.items():
    out["labels_adversarial"].append((name, data))
  return out


# ----------------------------------------------------------------------------
# The test.


def test_fuzz_readers(tmp_path):
  rng = np.random.default_rng(SEED)
  assert len(CIFS) >= 8, f"ase test CIFs not found under {MINERALS}"
  valid_cif = os.path.join(MINERALS, "cod_1010995.cif")  # 3C-SiC
  tasks = []
  for cat, items in cif_inputs(rng).items():
    for name, data in items:
      p = tmp_path / "cif" / name
      p.parent.mkdir(exist_ok=True)
      p.write_bytes(data)
      tasks.append((cat, ("cif", str(p), None, name)))
  for cat, items in npz_inputs(rng).items():
    for name, data in items:
      p = tmp_path / "npz" / name
      p.parent.mkdir(exist_ok=True)
      p.write_bytes(data)
      tasks.append((cat, ("npz", str(p), valid_cif, name)))
  for cat, items in labels_inputs(rng).items():
    for name, data in items:
      d = tmp_path / "labels" / name
      d.mkdir(parents=True)
      (d / "labels.csv").write_bytes(data)
      tasks.append((cat, ("labels", str(d), None, f"{name}/labels.csv")))

  counts = collections.defaultdict(collections.Counter)
  failures = []
  t0 = time.time()
  pool = Pool()
  try:
    for cat, task in tasks:
      outcome, detail = pool.run(task)
      counts[cat][outcome] += 1
      if outcome not in ("ok", "value_error"):
        failures.append(f"{cat} {task[3]}: {outcome}: {detail}")
      elif cat.endswith("_valid") and outcome != "ok":
        failures.append(f"{cat} {task[3]}: valid input rejected: {detail}")
  finally:
    pool.close()
  elapsed = time.time() - t0
  print(f"\n{len(tasks)} inputs in {elapsed:.1f} s")
  for cat in counts:
    print(f"  {cat:20s} {sum(counts[cat].values()):4d}  "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts[cat].items())))
  assert not failures, "\n".join(failures)
  assert len(tasks) >= 450
  # Each category exercised both outcomes where both are possible.
  assert counts["cif_valid"]["ok"] == len(CIFS)
  assert counts["cif_truncated"]["value_error"] > 0
  assert counts["npz_byteflip"]["value_error"] > 0


def test_harness_can_fail(tmp_path):
  """The harness itself reports hangs, wrong results and foreign errors."""
  global PER_INPUT_TIMEOUT_S  # pylint: disable=global-statement
  old, PER_INPUT_TIMEOUT_S = PER_INPUT_TIMEOUT_S, 1.0
  pool = Pool()
  try:
    good = tmp_path / "x.cif"
    good.write_text(nacl())
    assert pool.run(("sleep", str(good), None, "x.cif"))[0] == "hang"
    assert pool.run(("nope", str(good), None, "x.cif"))[0] == "bad_result"
    assert pool.run(("cif", str(tmp_path), None, "x.cif"))[0] == "bad_message"
    assert pool.run(("cif", str(good), None, "x.cif"))[0] == "ok"
  finally:
    PER_INPUT_TIMEOUT_S = old
    pool.close()
