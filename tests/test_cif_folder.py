"""Tests of the CIF-folder dataset (mmjax.data.materials.cif_*, npz_modalities)
on real crystal structures.

Structures: the eight COD mineral CIFs that ase ships as test data
(ase/test/testdata/minerals/cod_*.cif, e.g. cod_1010995 = 3C-SiC zincblende,
a = 4.348 A), plus rock-salt NaCl (a = 5.640 A) written here as CIF text
because ase ships no NaCl CIF.
"""

import glob
import os
import shutil
import sys
import zipfile

import ase
import ase.io
import ase.neighborlist
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from mmjax.data.materials import cif_folder as cf  # pylint: disable=g-import-not-at-top
from mmjax.data.materials import cif_labels  # pylint: disable=g-import-not-at-top
from mmjax.data.materials import schema  # pylint: disable=g-import-not-at-top
from mmjax.data.materials.cif_material import read_material  # pylint: disable=g-import-not-at-top

MINERALS = os.path.join(os.path.dirname(ase.__file__), "test", "testdata",
                        "minerals")
CIFS = sorted(glob.glob(os.path.join(MINERALS, "cod_*.cif")))
SIC = os.path.join(MINERALS, "cod_1010995.cif")  # 3C-SiC, F-43m
SIC_A = 4.348

NACL_A = 5.640
NACL_CIF = f"""data_NaCl
_chemical_name_mineral 'Halite'
_symmetry_space_group_name_H-M 'F m -3 m'
_symmetry_Int_Tables_number 225
_cell_length_a {NACL_A}
_cell_length_b {NACL_A}
_cell_length_c {NACL_A}
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na1 Na 0.0 0.0 0.0
Cl1 Cl 0.5 0.5 0.5
"""


def test_real_cifs_found():
  assert len(CIFS) >= 4, f"ase test CIFs not found under {MINERALS}"


@pytest.fixture
def nacl(tmp_path):
  path = tmp_path / "NaCl.cif"
  path.write_text(NACL_CIF)
  return str(path)


def _edges(ex):
  return set(zip(ex["crystal_senders"].tolist(),
                 ex["crystal_receivers"].tolist()))


def _neighbours(ex, i):
  return sorted(r for s, r in _edges(ex) if s == i)


def test_sic_first_shell():
  """Between d1 = a*sqrt(3)/4 and d2 = a/sqrt(2): 4 unlike neighbours."""
  d1, d2 = SIC_A * np.sqrt(3) / 4, SIC_A / np.sqrt(2)
  cutoff = 0.5 * (d1 + d2)
  atoms = ase.io.read(SIC, format="cif")
  ex = read_material(SIC, None, 0, cutoff=cutoff)
  assert ex["crystal_nodes"].shape == (8, 3) == (len(atoms), 3)
  assert sorted(atoms.get_chemical_symbols()) == ["C"] * 4 + ["Si"] * 4
  sym = atoms.get_chemical_symbols()
  for i in range(8):
    nb = _neighbours(ex, i)
    assert len(nb) == 4, (i, nb)
    assert all(sym[j] != sym[i] for j in nb)
  # Distances behind those edges really are the first-shell bond length.
  i, j, d = ase.neighborlist.neighbor_list("ijd", atoms, cutoff)
  np.testing.assert_allclose(d, d1, atol=1e-3)
  assert set(zip(i.tolist(), j.tolist())) == _edges(ex)


def test_sic_second_shell_collapses_images():
  """Past a/sqrt(2) the 12 Si-Si images reach the 3 other Si: degree 7."""
  ex = read_material(SIC, None, 0, cutoff=3.3)
  for i in range(8):
    assert _neighbours(ex, i) == [j for j in range(8) if j != i]


def test_nacl_graph(nacl):
  """Na has 6 Cl at a/2; in the 8-atom cell they are images of 3 Cl atoms."""
  cutoff = 0.5 * (NACL_A / 2 + NACL_A / np.sqrt(2))
  atoms = ase.io.read(nacl, format="cif")
  assert len(atoms) == 8
  i, j, d = ase.neighborlist.neighbor_list("ijd", atoms, cutoff)
  np.testing.assert_allclose(d, NACL_A / 2, atol=1e-6)
  assert np.all(np.bincount(i) == 6)
  ex = read_material(nacl, None, "trivial", cutoff=cutoff)
  assert ex["crystal_nodes"].shape == (8, 3)
  sym = atoms.get_chemical_symbols()
  for a in range(8):
    nb = _neighbours(ex, a)
    assert len(nb) == 3 and all(sym[b] != sym[a] for b in nb)
  na = sym.index("Na")
  np.testing.assert_allclose(
      ex["crystal_nodes"][na], [11 / 100, 1.66 / 2, 22.98977 / 200],
      rtol=1e-4)


@pytest.mark.parametrize("cif", CIFS, ids=os.path.basename)
def test_graph_invariants(cif):
  ex = read_material(cif, None, 1)
  schema.validate_example(ex, cif)
  assert len(ex["crystal_nodes"]) == len(ase.io.read(cif, format="cif"))
  s, r = ex["crystal_senders"], ex["crystal_receivers"]
  assert s.dtype == r.dtype == np.int32 and len(s) > 0
  assert not np.any(s == r)
  edges = _edges(ex)
  assert len(edges) == len(s)  # no duplicates
  assert edges == {(b, a) for a, b in edges}
  assert np.all(np.isfinite(ex["crystal_nodes"]))
  assert ex["crystal_nodes"].dtype == np.float32
  np.testing.assert_array_equal(ex["modality_mask"], [1, 0, 0, 0])
  assert ex["kspace_nodes"].shape == (1, 64) and not ex["kspace_nodes"].any()
  assert len(ex["kspace_senders"]) == 0
  assert not ex["scalar"].any() and not ex["decomp"].any()
  assert ex["label"] == 1 and ex["label"].dtype == np.int64
  assert ex["id"] == os.path.basename(cif)[:-4]


def _kspace(n=5, rng=None):
  rng = rng or np.random.default_rng(0)
  s = np.arange(n - 1)
  return {"kspace_nodes": rng.normal(size=(n, 64)),
          "kspace_senders": np.concatenate([s, s + 1]),
          "kspace_receivers": np.concatenate([s + 1, s])}


def test_npz_modalities(tmp_path):
  rng = np.random.default_rng(0)
  full = dict(_kspace(rng=rng), scalar=rng.normal(size=10),
              decomp=rng.normal(size=64))
  np.savez(tmp_path / "full.npz", **full)
  ex = read_material(SIC, str(tmp_path / "full.npz"), 1)
  np.testing.assert_array_equal(ex["modality_mask"], [1, 1, 1, 1])
  np.testing.assert_allclose(ex["kspace_nodes"], full["kspace_nodes"],
                             rtol=1e-6)
  np.testing.assert_array_equal(ex["kspace_senders"], full["kspace_senders"])
  np.testing.assert_allclose(ex["decomp"], full["decomp"], rtol=1e-6)
  assert ex["kspace_senders"].dtype == np.int32
  np.savez(tmp_path / "part.npz", scalar=full["scalar"])
  ex = read_material(SIC, str(tmp_path / "part.npz"), 1)
  np.testing.assert_array_equal(ex["modality_mask"], [1, 0, 1, 0])
  assert ex["kspace_nodes"].shape == (1, 64) and not ex["decomp"].any()


@pytest.mark.parametrize("modality", ["crystal", "kspace"])
def test_validate_example_rejects_self_loops(modality):
  # GCNConv adds a self loop to every node; an explicit one would count twice.
  ex = read_material(SIC, None, 1)
  ex.update({"kspace_nodes": np.zeros((3, 64), np.float32),
             "kspace_senders": np.array([0, 1], np.int32),
             "kspace_receivers": np.array([1, 0], np.int32)})
  schema.validate_example(ex, "example cod_1010995")
  s, r = ex[f"{modality}_senders"], ex[f"{modality}_receivers"]
  ex[f"{modality}_senders"] = np.r_[s, 2].astype(np.int32)
  ex[f"{modality}_receivers"] = np.r_[r, 2].astype(np.int32)
  msg = (f"example cod_1010995: {modality} edge {len(s)} is a self loop "
         r"\(node 2 -> 2\); GCNConv adds its own")
  with pytest.raises(ValueError, match=f"^{msg}$"):
    schema.validate_example(ex, "example cod_1010995")


def test_npz_self_loop_gets_the_schema_message(tmp_path):
  k = _kspace()
  path = tmp_path / "loop.npz"
  np.savez(path, **dict(k, kspace_senders=np.r_[k["kspace_senders"], 3],
                        kspace_receivers=np.r_[k["kspace_receivers"], 3]))
  n = len(k["kspace_senders"])
  with pytest.raises(ValueError, match=f"^{path}: kspace edge {n} is a self "
                     r"loop \(node 3 -> 3\); GCNConv adds its own$"):
    read_material(SIC, str(path), 0)


def _truncations(text):
  """Cuts of a real CIF: before the atom loop and inside an atom row."""
  start = text.index("_atom_site_label")
  last_row = text.rstrip().rfind("\n", 0, text.index("_atom_type_symbol"))
  return {"header_only": text[:start // 2], "loop_header": text[:start + 20],
          "mid_row": text[:text.index(" ", last_row + 2)]}


@pytest.mark.parametrize("case", ["header_only", "loop_header", "mid_row"])
def test_truncated_cif_raises(tmp_path, case):
  with open(SIC) as f:
    text = _truncations(f.read())[case]
  path = tmp_path / f"trunc_{case}.cif"
  path.write_text(text)
  with pytest.raises(ValueError, match=f"trunc_{case}.cif"):
    read_material(str(path), None, 0)


BAD_CIFS = {
    "garbled.cif": b"this is \x00 not a cif\n;;;\nloop_\n_x\n",
    "binary.cif": bytes(np.random.default_rng(1).integers(0, 256, 400,
                                                          dtype=np.uint8)),
    "empty.cif": b"",
    "nocell.cif": NACL_CIF.split("_cell_length_a")[0].encode() + b"loop_\n"
                  + NACL_CIF.split("loop_\n")[1].encode(),
    "badelem.cif": NACL_CIF.replace("Na1 Na", "Qq1 Qq").encode(),
}


@pytest.mark.parametrize("name", sorted(BAD_CIFS))
def test_bad_cif_raises(tmp_path, name):
  path = tmp_path / name
  path.write_bytes(BAD_CIFS[name])
  with pytest.raises(ValueError, match=name) as e:
    read_material(str(path), None, 0)
  assert "\n" not in str(e.value)


def test_cif_without_atoms(tmp_path):
  path = tmp_path / "cell_only.cif"
  path.write_text(NACL_CIF.split("loop_")[0])  # real cell, no atom loop
  with pytest.raises(ValueError, match="cell_only.cif: no atoms"):
    read_material(str(path), None, 0)


def test_missing_file_and_bad_label(tmp_path, nacl):
  with pytest.raises(ValueError, match="nothere.cif: file not found"):
    read_material(str(tmp_path / "nothere.cif"), None, 0)
  with pytest.raises(ValueError, match="nothere.npz: file not found"):
    read_material(nacl, str(tmp_path / "nothere.npz"), 0)
  for bad in (2, "metal", "", True, 1.0):
    with pytest.raises(ValueError, match="NaCl.cif: bad label"):
      read_material(nacl, None, bad)
  assert read_material(nacl, None, " Topological ")["label"] == 1


def test_cutoff_too_small(nacl):
  with pytest.raises(ValueError, match="NaCl.cif: .*no neighbour"):
    read_material(nacl, None, 0, cutoff=2.0)


def _bad_npzs():
  k = _kspace()
  out = {
      "wrong_width": dict(k, kspace_nodes=np.ones((5, 63))),
      "no_nodes": dict(k, kspace_nodes=np.ones((0, 64)),
                       kspace_senders=np.zeros(0, int),
                       kspace_receivers=np.zeros(0, int)),
      "nan_nodes": dict(k, kspace_nodes=np.full((5, 64), np.nan)),
      "inf_scalar": {"scalar": np.r_[np.inf, np.zeros(9)]},
      "scalar_shape": {"scalar": np.zeros(11)},
      "decomp_2d": {"decomp": np.zeros((1, 64))},
      "edge_range": dict(k, kspace_senders=k["kspace_senders"] + 5),
      "edge_float": dict(k, kspace_senders=k["kspace_senders"] * 1.0),
      "one_way": dict(k, kspace_senders=k["kspace_senders"][:4],
                      kspace_receivers=k["kspace_receivers"][:4]),
      "self_loop": dict(k, kspace_senders=np.r_[k["kspace_senders"], 0],
                        kspace_receivers=np.r_[k["kspace_receivers"], 0]),
      "partial_kspace": {"kspace_nodes": k["kspace_nodes"]},
      "unknown_key": {"kspace_node": k["kspace_nodes"]},
      "strings": {"scalar": np.array(["a"] * 10)},
      "empty_archive": {},
  }
  return out


@pytest.mark.parametrize("case", sorted(_bad_npzs()))
def test_bad_npz_raises(tmp_path, case):
  path = tmp_path / f"bad_{case}.npz"
  np.savez(path, **_bad_npzs()[case])
  with pytest.raises(ValueError, match=f"bad_{case}.npz") as e:
    read_material(SIC, str(path), 0)
  assert "\n" not in str(e.value)


def test_unreadable_npz_raises(tmp_path):
  junk = tmp_path / "junk.npz"
  junk.write_bytes(b"not a zip at all")
  trunc = tmp_path / "trunc.npz"
  np.savez(trunc, scalar=np.zeros(10))
  trunc.write_bytes(trunc.read_bytes()[:60])
  pickled = tmp_path / "pickled.npz"
  np.savez(pickled, scalar=np.array([{"a": 1}] * 10, dtype=object))
  npy = tmp_path / "array.npz"
  with open(npy, "wb") as f:
    np.save(f, np.zeros(10))
  for p in (junk, trunc, pickled, npy):
    with pytest.raises(ValueError, match=p.name):
      read_material(SIC, str(p), 0)
  assert zipfile.is_zipfile(pickled)  # rejected for pickle, not format


# ---------------------------------------------------------------------------
# labels.csv and splits.


def _folder(tmp_path, rows, header="id,label", npz=()):
  d = tmp_path / "data"
  d.mkdir(exist_ok=True)
  for cif in CIFS:
    shutil.copy(cif, d)
  for mid in npz:
    np.savez(d / f"{mid}.npz", **_kspace(), scalar=np.arange(10.0))
  lines = [header] + [",".join(map(str, r)) for r in rows]
  (d / "labels.csv").write_text("\n".join(lines) + "\n")
  return str(d)


def _ids():
  return [os.path.basename(c)[:-4] for c in CIFS]


@pytest.mark.parametrize("header,rows,msg", [
    ("id,lbl", [("cod_1010995", 1)], "lacks column"),
    ("id,label", [("cod_1010995", 1), ("cod_1010995", 0)], "duplicate id"),
    ("id,label", [("cod_1010995", "maybe")], "line 2: bad label"),
    ("id,label", [("cod_0000000", 1)], "cod_0000000.cif: file not found"),
    ("id,label,split", [("cod_1010995", 1, "dev")], "bad split"),
    ("id,label", [("../cod_1010995", 1)], "bad id"),
    ("id,label", [], "no data rows"),
])
def test_bad_labels_csv(tmp_path, header, rows, msg):
  d = _folder(tmp_path, rows, header)
  with pytest.raises(ValueError, match=msg) as e:
    cf.load_cif_folder(d, str(tmp_path / "tfds"))
  assert "labels.csv" in str(e.value) or ".cif" in str(e.value)
  assert not list((tmp_path / "tfds").glob("cif_folder/*/*"))  # nothing built


def test_missing_labels_csv(tmp_path):
  with pytest.raises(ValueError, match="labels.csv: file not found"):
    cif_labels.read_labels(str(tmp_path))


def test_bad_cif_in_folder_names_file(tmp_path):
  d = _folder(tmp_path, [(i, 0) for i in _ids()])
  with open(os.path.join(d, "cod_9004112.cif"), "w") as f:
    f.write("data_x\nloop_\n_atom_site_label\n_atom_site_fract_x\n")
  with pytest.raises(ValueError, match="cod_9004112.cif"):
    cf.load_cif_folder(d, str(tmp_path / "tfds"))


def _rows(n, labels):
  return [cif_labels.LabelRow(f"m{i:03d}", labels[i % len(labels)], None)
          for i in range(n)]


@pytest.mark.parametrize("n,expect", [(1, (1, 0, 0)), (2, (1, 1, 0)),
                                      (3, (1, 1, 1)), (4, (2, 1, 1)),
                                      (100, (70, 15, 15))])
def test_split_sizes(n, expect):
  out = cif_labels.assign_splits(_rows(n, [0, 1]), seed=0)
  assert tuple(len(out[s]) for s in cf.SPLITS) == expect
  assert sorted(r.id for s in cf.SPLITS for r in out[s]) == [
      r.id for r in _rows(n, [0, 1])]


def test_split_stratified_and_seeded():
  rows = _rows(200, [0, 0, 0, 1])  # 150 trivial, 50 topological
  a, b = cif_labels.assign_splits(rows, 0), cif_labels.assign_splits(rows, 0)
  c = cif_labels.assign_splits(rows, 1)
  assert a == b and a != c
  for s, frac in zip(cf.SPLITS, cif_labels.SPLIT_FRACTIONS):
    labels = [r.label for r in a[s]]
    assert abs(labels.count(1) - 50 * frac) <= 1
    assert abs(labels.count(0) - 150 * frac) <= 1


# ---------------------------------------------------------------------------
# TFDS round trip.


def test_tfds_round_trip(tmp_path):
  ids = _ids()
  rows = [(mid, ["trivial", "topological"][k % 2]) for k, mid in
          enumerate(ids)]
  d = _folder(tmp_path, rows, npz=ids[:2])
  data_dir = str(tmp_path / "tfds")
  sources = cf.load_cif_folder(d, data_dir, cutoff=3.5, seed=0)
  assert set(sources) == set(cf.SPLITS)
  assert all(len(sources[s]) > 0 for s in cf.SPLITS)
  seen = {}
  for s, src in sources.items():
    for k in range(len(src)):
      ex = src[k]
      assert ex["id"] not in seen
      seen[ex["id"]] = ex
  assert sorted(seen) == sorted(ids)
  for k, mid in enumerate(ids):
    npz = os.path.join(d, f"{mid}.npz") if k < 2 else None
    want = read_material(os.path.join(d, f"{mid}.cif"), npz, k % 2, 3.5)
    got = seen[mid]
    assert set(got) == set(want)
    for key, v in want.items():
      if key == "id":
        assert got[key] == v
      else:
        assert got[key].dtype == v.dtype, key
        np.testing.assert_array_equal(got[key], v, err_msg=f"{mid} {key}")
  assert seen[ids[0]]["modality_mask"].tolist() == [1, 1, 1, 0]
  assert seen[ids[-1]]["modality_mask"].tolist() == [1, 0, 0, 0]
  # Reopening reuses the build; another cutoff lands in another directory.
  again = cf.load_cif_folder(d, data_dir, cutoff=3.5, seed=0)
  assert {s: len(v) for s, v in again.items()} == {
      s: len(v) for s, v in sources.items()}
  cf.load_cif_folder(d, data_dir, cutoff=4.0, seed=0)
  assert len(list((tmp_path / "tfds" / "cif_folder").iterdir())) == 2


def test_tfds_csv_splits_and_empty_split(tmp_path):
  ids = _ids()
  rows = [(mid, k % 2, "test" if k == 0 else "train")
          for k, mid in enumerate(ids)]
  d = _folder(tmp_path, rows, header="id,label,split")
  sources = cf.load_cif_folder(d, str(tmp_path / "tfds"))
  assert len(sources["train"]) == len(ids) - 1
  assert len(sources["val"]) == 0
  assert sources["test"][0]["id"] == ids[0]
  assert sources["test"][-1]["id"] == ids[0]
  with pytest.raises(IndexError):
    sources["val"][0]  # pylint: disable=pointless-statement
