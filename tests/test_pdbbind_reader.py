"""The PDBbind-folder reader (mmjax.data.affinity.pdbbind) on four real
complexes in PDBbind layout (tests/data/pdbbind, origin in SOURCE.md), and
on copies of that folder with one thing broken each: the broken complex is
skipped with one warning line naming its file and the problem, or the load
fails with one line naming the file, and the other complexes still load.
"""

import os
import shutil

import ml_collections
import numpy as np
import pytest

from mmjax.data import modalities
from mmjax.data.affinity import pdbbind

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                    "pdbbind")
INDEX = os.path.join("index", "INDEX_general_PL_data.2020")
CODES = ("1ia1", "1of6", "1s3v", "1uou")
LABELS = {"1ia1": 6.30, "1of6": 4.52, "1s3v": 5.85, "1uou": 7.70}
# Heavy atoms and bonds of each crystal ligand (its SDF's counts line).
LIGAND_SIZES = {"1ia1": (19, 21), "1of6": (13, 13), "1s3v": (27, 29),
                "1uou": (16, 17)}
BOX, RESOLUTION = 24.0, 2.0


def dcfg(path, **kw):
  cfg = dict(path=str(path), index="", test_index="", split_seed=0,
             grid=dict(box=BOX, resolution=RESOLUTION))
  cfg.update(kw)
  return ml_collections.ConfigDict(cfg)


def load(path, **kw):
  return pdbbind.load_pdbbind_folder(dcfg(path, **kw), data_dir=None)


def examples(ds):
  return {ex["id"]: ex for src in ds.sources.values() for ex in src}


def warnings_of(caplog):
  return [r.getMessage() for r in caplog.records
          if r.levelname == "WARNING" and "pdbbind_folder" in r.getMessage()]


@pytest.fixture
def copy(tmp_path):
  root = tmp_path / "pdbbind"
  shutil.copytree(DATA, root)
  return root


def test_parse_index_comments_and_nmr(tmp_path):
  labels = pdbbind.parse_index(os.path.join(DATA, INDEX))
  assert labels == pytest.approx(LABELS)
  path = tmp_path / "INDEX_refined_data.2016"
  path.write_text("# PDB code, resolution, release year, -logKd/Ki\n"
                  "\n   # an indented comment\n"
                  "3ZZF  NMR  2012   0.40  Ki=400mM   // 3zzf.pdf (NLG)\n")
  assert pdbbind.parse_index(str(path)) == {"3zzf": pytest.approx(0.40)}


@pytest.mark.parametrize("line,problem", [
    ("1abc  2.0  2001", "got 3 column(s)"),
    ("1abc  2.0  2001  Kd=1uM  // x", "-logKd/Ki 'Kd=1uM' is not a number"),
    ("1abc  high  2001  6.0", "resolution 'high' is neither"),
    ("1abc  2.0  20O1  6.0", "release year '20O1'"),
    ("1abc  2.0  2001  nan", "-logKd/Ki 'nan' is not a number"),
])
def test_parse_index_bad_line(tmp_path, line, problem):
  path = tmp_path / "INDEX_general_PL_data.2020"
  path.write_text(f"# header\n1xyz 2.0 2001 5.0\n{line}\n")
  with pytest.raises(ValueError) as e:
    pdbbind.parse_index(str(path))
  msg = str(e.value)
  assert msg.startswith(f"{path} line 3: ") and problem in msg, msg
  assert "\n" not in msg


def test_folder_loads(caplog):
  ds = load(DATA)
  assert not warnings_of(caplog)
  got = examples(ds)
  assert sorted(got) == list(CODES)
  d = int(round(BOX / RESOLUTION))
  for code, ex in got.items():
    assert ex["complex"].shape == (d, d, d, 16)
    assert ex["complex"].dtype == np.float32
    assert np.all(np.isfinite(ex["complex"]))
    # Protein C, aromatic C, N, O, donor and ligand C or aromatic C, N/O.
    present = np.abs(ex["complex"]).reshape(-1, 16).max(0) > 0
    assert present[[0, 1, 2, 3, 5, 6]].all(), (code, present)
    assert present[[7, 8]].any() and present[[9, 10]].any(), (code, present)
    atoms, bonds = LIGAND_SIZES[code]
    assert ex["ligand_nodes"].shape == (atoms, len(
        pdbbind.ligands.ATOM_FEATURES))
    assert ex["ligand_edges"].shape == (2 * bonds, len(
        pdbbind.ligands.BOND_FEATURES))
    assert len(ex["ligand_senders"]) == len(ex["ligand_receivers"]) == 2 * bonds
    assert ex["label"] == pytest.approx(LABELS[code])
    assert ex["pose"] == "crystal"
    # The trainer pads the ligand graph as the `binding` dataset's.
    padded = modalities.kind_of(ds.spec.modalities["ligand"]).pad(
        ex, "ligand", ds.spec.modalities["ligand"],
        {"nodes": 32, "edges": 64}, code)
    assert padded["ligand_node_mask"].sum() == atoms
  assert ds.spec.task == "regression"
  assert ds.spec.modalities["complex"].shape == (d, d, d, 16)


def test_protein_channels_by_residue(tmp_path):
  path = tmp_path / "x.pdb"
  rows = [("ATOM", "N", "PRO", "N"), ("ATOM", "N", "GLY", "N"),
          ("ATOM", "CZ", "PHE", "C"), ("ATOM", "CB", "PHE", "C"),
          ("ATOM", "OD1", "ASP", "O"), ("ATOM", "NZ", "LYS", "N"),
          ("ATOM", "NH1", "ARG", "N"), ("ATOM", "OG", "SER", "O"),
          ("ATOM", "SG", "CYS", "S"), ("ATOM", "H", "GLY", "H"),
          ("HETATM", "O", "HOH", "O"), ("HETATM", "C1", "NDP", "C"),
          ("HETATM", "ZN", "ZN", "ZN")]
  path.write_text("".join(
      f"{rec:<6}{i + 1:5d} {name:<4} {res:>3} A{i + 1:4d}    "
      f"{i:8.3f}{0:8.3f}{0:8.3f}  1.00  0.00          {el:>2}\n"
      for i, (rec, name, res, el) in enumerate(rows)))
  coords, ch = pdbbind.read_protein(str(path))
  # C, aromatic C, N, O acceptor, S, polar-H donor, partial charge.
  np.testing.assert_allclose(ch, [
      [0, 0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 0, 0],
      [1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, -0.5], [0, 0, 1, 0, 0, 1, 1],
      [0, 0, 1, 0, 0, 1, 1 / 3], [0, 0, 0, 1, 0, 1, 0], [0, 0, 0, 0, 1, 0, 0],
      [0, 0, 0, 0, 0, 0, 2]], atol=1e-6)
  np.testing.assert_allclose(coords[:, 0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 12])


def test_registered_and_test_index(copy, tmp_path):
  from mmjax.data.datasets import load_dataset  # pylint: disable=g-import-not-at-top
  core = tmp_path / "INDEX_core_data.2020"
  core.write_text("# core set\n1uou  2.11  2004  7.70  Ki=20nM\n")
  # The set-folder layout, <root>/<set>/<code>/.
  os.makedirs(copy / "refined")
  for code in CODES:
    shutil.move(str(copy / code), str(copy / "refined" / code))
  ds = load_dataset(dcfg(copy, name="pdbbind_folder", test_index=str(core)))
  assert [ex["id"] for ex in ds.sources["test"]] == ["1uou"]
  assert len(ds.sources["train"]) + len(ds.sources["val"]) == 3


# ----------------------------------------------------------------------------
# Broken copies: one warning naming the file, the other complexes kept.


def _one_warning(caplog, ds, skipped, *needles):
  msgs = warnings_of(caplog)
  assert len(msgs) == 1, msgs
  assert "\n" not in msgs[0]
  for n in needles:
    assert n in msgs[0], msgs[0]
  assert sorted(examples(ds)) == [c for c in CODES if c != skipped]
  return msgs[0]


def test_missing_ligand(copy, caplog):
  os.remove(copy / "1of6" / "1of6_ligand.sdf")
  _one_warning(caplog, load(copy), "1of6",
               f"{copy / '1of6' / '1of6_ligand.sdf'}: file not found "
               "(nor 1of6_ligand.mol2)")


def test_missing_protein(copy, caplog):
  os.remove(copy / "1uou" / "1uou_pocket.pdb")
  _one_warning(caplog, load(copy), "1uou",
               f"{copy / '1uou' / '1uou_pocket.pdb'}: file not found "
               "(nor 1uou_protein.pdb)")


def test_unparsable_ligand(copy, caplog):
  (copy / "1s3v" / "1s3v_ligand.sdf").write_text(
      "garbage\n\n\n 99 99  0  0  0  0  0  0  0  0999 V2000\nnot atoms\n"
      "M  END\n$$$$\n")
  _one_warning(caplog, load(copy), "1s3v",
               f"{copy / '1s3v' / '1s3v_ligand.sdf'}: RDKit cannot read or "
               "sanitize the ligand")


def test_ligand_outside_grid(copy, caplog):
  path = copy / "1ia1" / "1ia1_ligand.sdf"
  lines = path.read_text().splitlines(keepends=True)
  x = float(lines[4][:10])  # First atom record, x in columns 1-10.
  lines[4] = f"{x + 100:10.4f}{lines[4][10:]}"
  path.write_text("".join(lines))
  _one_warning(caplog, load(copy), "1ia1", f"{path}: outside the grid",
               "ligand atom 1", "more than half the 24 Å box")


def test_code_without_label(copy, caplog):
  index = copy / INDEX
  index.write_text("".join(l for l in index.read_text().splitlines(True)
                           if not l.startswith("1uou")))
  _one_warning(caplog, load(copy), "1uou",
               f"{copy / '1uou'}: code 1uou has no label in {index}")


def test_bad_index_line_is_an_error(copy):
  index = copy / INDEX
  index.write_text(index.read_text() + "1zzz  2.0  2001  Ki=3nM  // x\n")
  with pytest.raises(ValueError) as e:
    load(copy)
  assert str(e.value).startswith(f"{index} line 10: "), str(e.value)


def test_nothing_usable_is_an_error(copy, caplog):
  for code in CODES:
    os.remove(copy / code / f"{code}_ligand.sdf")
  with pytest.raises(ValueError) as e:
    load(copy)
  assert str(e.value).startswith(f"{copy}: no usable complex (4 skipped")
  assert len(warnings_of(caplog)) == 4


def test_no_index_is_an_error(copy):
  shutil.rmtree(copy / "index")
  with pytest.raises(ValueError, match=r"no index/INDEX_\*_data\.\* file"):
    load(copy)
