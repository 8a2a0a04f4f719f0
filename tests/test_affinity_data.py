"""The `binding` dataset: ligand features, pockets, voxels, modelled poses,
the TFDS builder on a small subset and loading through the registry."""

import gzip
import os

import ml_collections
import numpy as np
import pytest

from mmjax.data import pipeline
from mmjax.data.affinity import binding
from mmjax.data.affinity import chembl
from mmjax.data.affinity import ligands
from mmjax.data.affinity import pocket
from mmjax.data.affinity import poses
from mmjax.data.affinity import voxels
from mmjax.data.datasets import load_dataset

F2_PDBQT = os.path.join(pocket.VENDOR, "F2_target.pdbqt.gz")
F2_BOX = os.path.join(pocket.VENDOR, "F2_conf.txt")


def test_graph_features_and_both_direction_edges():
  mol = ligands.mol_from_smiles("CC(=O)Nc1ccccc1", "acetanilide")
  nodes, edges, snd, rcv = ligands.ligand_graph(mol)
  assert nodes.shape == (10, len(ligands.ATOM_FEATURES))
  assert edges.shape == (20, len(ligands.BOND_FEATURES))
  assert snd.dtype == rcv.dtype == np.int32
  assert not np.any(snd == rcv)
  pairs = set(zip(snd.tolist(), rcv.tolist()))
  assert all((r, s) in pairs for s, r in pairs)
  col = ligands.ATOM_FEATURES.index
  # Atom 2 is the carbonyl O; atoms 4-9 the aromatic ring.
  assert nodes[2, col("element O")] == 1
  aromatic = nodes[:, col("aromatic")]
  assert aromatic[4:].all() and not aromatic[:4].any()
  # Element, degree, H-count and hybridisation groups are each one-hot.
  for group in ("element", "degree", "total H", "hybridisation"):
    cols = [i for i, n in enumerate(ligands.ATOM_FEATURES)
            if n.startswith(group)]
    np.testing.assert_array_equal(nodes[:, cols].sum(1), 1)
  bcol = ligands.BOND_FEATURES.index
  double = edges[:, bcol("double")] == 1
  assert sorted(zip(snd[double], rcv[double])) == [(1, 2), (2, 1)]
  assert edges[:, bcol("aromatic")].sum() == 12


def test_bad_smiles_names_where():
  with pytest.raises(ValueError, match="row 7"):
    ligands.mol_from_smiles("C1CC", "row 7")


def test_ligand_channels():
  mol = ligands.mol_from_smiles("OC(=O)c1ccc(Cl)cc1CN", "x")
  ch = ligands.ligand_atom_channels(mol)
  names = ligands.LIGAND_CHANNELS
  assert ch.shape == (mol.GetNumAtoms(), 9)
  symbols = [a.GetSymbol() for a in mol.GetAtoms()]
  assert ch[symbols.index("Cl"), names.index("halogen")] == 1
  assert ch[1, names.index("C")] == 1           # carboxyl C, not aromatic
  assert ch[3, names.index("aromatic C")] == 1
  assert ch[0, names.index("donor")] == 1       # the acid OH
  assert ch[2, names.index("acceptor")] == 1    # the carbonyl O
  n_amine = len(symbols) - 1
  assert ch[n_amine, names.index("donor")] == 1
  # Gasteiger charges, hydrogens folded in: O negative, the sum about 0.
  assert ch[2, 8] < 0
  assert abs(ch[:, 8].sum()) < 1e-3


def test_conformer_is_heavy_atoms_centred_and_seeded():
  mol = ligands.mol_from_smiles("CC(=O)Nc1ccccc1", "x")
  a = ligands.embed_conformer(mol, seed=3)
  b = ligands.embed_conformer(mol, seed=3)
  assert a.shape == (10, 3) and a.dtype == np.float32
  np.testing.assert_array_equal(a, b)
  np.testing.assert_allclose(a.mean(0), 0, atol=1e-5)
  # Bonded heavy atoms 1.2-1.6 Å apart: the rows are the mol's atoms.
  for bond in mol.GetBonds():
    d = np.linalg.norm(a[bond.GetBeginAtomIdx()] - a[bond.GetEndAtomIdx()])
    assert 1.15 < d < 1.6


def test_voxelize_matches_direct_formula():
  rng = np.random.default_rng(0)
  center = np.array([1.0, -2.0, 0.5])
  coords = center + rng.uniform(-2, 2, size=(3, 3))
  weights = rng.uniform(0.5, 1.5, size=(3, 2))
  box, res, sigma = 6.0, 1.5, 0.8
  grid = voxels.voxelize(coords, weights, center, box, res, sigma)
  assert grid.shape == (4, 4, 4, 2) and grid.dtype == np.float32
  want = np.zeros((4, 4, 4, 2))
  for i in range(4):
    for j in range(4):
      for k in range(4):
        c = center - box / 2 + (np.array([i, j, k]) + 0.5) * res
        r2 = ((coords - c) ** 2).sum(1)
        want[i, j, k] = (weights * np.exp(-r2 / (2 * sigma ** 2))[:, None]
                         ).sum(0)
  np.testing.assert_allclose(grid, want, rtol=1e-5, atol=1e-6)


def test_voxelize_sigma_rule_and_sum_of_weights():
  assert voxels.default_sigma(1.0) == 1.0
  assert voxels.default_sigma(2.0) == 1.0
  assert voxels.default_sigma(4.0) == 2.0
  # One atom at the centre of a large fine grid: the Gaussian's integral
  # (2 pi sigma^2)^(3/2) times its weight, summed over voxels of volume
  # res^3.
  res, w = 0.25, 2.0
  grid = voxels.voxelize(np.zeros((1, 3)), [[w]], np.zeros(3), 12.0, res)
  sigma = voxels.default_sigma(res)
  total = grid.sum() * res ** 3
  np.testing.assert_allclose(total, w * (2 * np.pi * sigma ** 2) ** 1.5,
                             rtol=1e-4)
  # A 2 Å grid still sees an atom between voxel centres.
  g2 = voxels.voxelize(np.array([[1.0, 1.0, 1.0]]), [[1.0]], np.zeros(3),
                       8.0, 2.0)
  assert g2.max() > 0.2


def test_read_pdbqt_f2():
  p = pocket.read_pdbqt(F2_PDBQT, F2_BOX)
  with gzip.open(F2_PDBQT, "rt") as f:
    types = [l.split()[-1] for l in f if l.startswith("ATOM")]
  heavy = [t for t in types if t != "HD"]
  assert p.coords.shape == (len(heavy), 3)
  assert p.channels.shape == (len(heavy), len(pocket.PROTEIN_CHANNELS))
  np.testing.assert_allclose(p.center, [17.261, -11.957, 21.143], atol=1e-4)
  np.testing.assert_allclose(p.size, [30, 30, 30])
  ch = p.channels
  assert ch[:, 0].sum() == heavy.count("C")
  assert ch[:, 1].sum() == heavy.count("A")
  assert ch[:, 2].sum() == heavy.count("N") + heavy.count("NA")
  assert ch[:, 3].sum() == heavy.count("OA")
  assert ch[:, 4].sum() == heavy.count("S") + heavy.count("SA")
  # Every HD hydrogen has its donor; a donor has one or more hydrogens.
  assert 0 < ch[:, 5].sum() <= types.count("HD")
  assert set(np.flatnonzero(ch[:, 5])) <= set(
      np.flatnonzero(ch[:, 2] + ch[:, 3]))
  assert pocket.load_target("F2") is pocket.load_target("F2")


def test_bad_pdbqt_line_names_file_and_line(tmp_path):
  path = tmp_path / "bad.pdbqt"
  box = tmp_path / "conf.txt"
  with gzip.open(F2_PDBQT, "rt") as f:
    lines = f.readlines()[:6]
  lines[3] = lines[3][:32] + "xx" + lines[3][34:]
  path.write_text("".join(lines))
  with open(F2_BOX) as f:
    box.write_text(f.read())
  with pytest.raises(ValueError) as err:
    pocket.read_pdbqt(str(path), str(box))
  message = str(err.value)
  assert f"{path} line 4: malformed ATOM record" in message
  assert "\n" not in message
  box.write_text("center_x = 1\n")
  with pytest.raises(ValueError, match="no center_y"):
    pocket.read_box(str(box))


def test_complex_grid_channels():
  p = pocket.load_target("F2")
  lig = np.zeros((2, 3), np.float32) + p.center
  ch = np.zeros((2, 9), np.float32)
  ch[:, 3] = 1
  g = voxels.complex_grid(p, lig, ch, 24.0, 2.0)
  assert g.shape == (12, 12, 12, 16)
  assert g[..., :7].any() and g[..., 10].any() and not g[..., 7:10].any()
  g0 = voxels.complex_grid(p, lig, ch, 24.0, 2.0, zero_protein=True)
  assert not g0[..., :7].any()
  np.testing.assert_array_equal(g0[..., 7:], g[..., 7:])


@pytest.fixture(scope="module")
def f2_grid():
  return poses.score_grid(pocket.load_target("F2"))


def test_poses_deterministic_and_inside_the_box(f2_grid):
  ligs = chembl.read_ligands("F2")[:5]
  confs = [ligands.embed_conformer(ligands.mol_from_smiles(l.smiles, l.id),
                                   0) for l in ligs]
  a = poses.place_ligands(f2_grid, confs, range(5))
  b = poses.place_ligands(f2_grid, confs[::-1], range(4, -1, -1))[::-1]
  p = pocket.load_target("F2")
  for (xa, sa), (xb, sb), c in zip(a, b, confs):
    np.testing.assert_array_equal(xa, xb)   # independent of the batch
    assert sa == sb and sa < 0
    assert np.abs(xa - p.center).max() < 12.0
    # Rigid: the pose is the conformer moved, distances unchanged.
    np.testing.assert_allclose(np.linalg.norm(xa - xa[0], axis=1),
                               np.linalg.norm(c - c[0], axis=1), atol=1e-3)
    dmin = np.min(np.linalg.norm(xa[:, None] - p.coords[None], axis=-1))
    assert 2.0 < dmin < 4.0   # in contact with the pocket, no deep clash


def _dcfg(tmp_path, **kw):
  cfg = dict(name="binding", variant="thrombin", split="scaffold",
             split_seed=0, grid=dict(box=24.0, resolution=2.0),
             data_dir=str(tmp_path))
  cfg.update(kw)
  return ml_collections.ConfigDict(cfg)


@pytest.fixture(scope="module")
def thrombin_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("binding")
  binding.build("thrombin", str(path), limit=12)
  return path


def test_thrombin_subset_loads_and_pads(thrombin_dir):
  ds = load_dataset(_dcfg(thrombin_dir))
  assert sum(len(s) for s in ds.sources.values()) == 12
  assert ds.spec.task == "regression" and ds.spec.num_outputs == 1
  assert ds.spec.modalities["complex"].shape == (12, 12, 12, 16)
  every = sorted(i for s in ds.sources.values() for i in s.ids)
  assert every == sorted(f"F2-{i}" for i in range(12))
  src = ds.sources["train"]
  ex = src[0]
  assert ex["complex"].shape == (12, 12, 12, 16)
  assert ex["complex"][..., :7].any() and ex["complex"][..., 7:].any()
  assert ex["target"] == "F2" and src.targets[0] == "F2"
  assert ex["id"] == src.ids[0]
  ligs = {l.id: l for l in chembl.read_ligands("F2")[:12]}
  assert ex["label"] == np.float32(ligs[ex["id"]].pk)
  padded = pipeline.pad_example(ex, ds.spec,
                                dict(ligand=dict(nodes=64, edges=160)))
  assert padded["ligand_nodes"].shape == (64, len(ligands.ATOM_FEATURES))
  assert padded["ligand_edges"].shape == (160, len(ligands.BOND_FEATURES))
  n = len(ex["ligand_nodes"])
  assert padded["ligand_node_mask"].sum() == n
  zero = load_dataset(_dcfg(thrombin_dir, zero_protein=True))
  ez = zero.sources["train"][0]
  assert ez["id"] == ex["id"] and not ez["complex"][..., :7].any()
  np.testing.assert_array_equal(ez["complex"][..., 7:],
                                ex["complex"][..., 7:])


def test_stored_example_format(thrombin_dir):
  builder = binding.build("thrombin", str(thrombin_dir), limit=12)
  rec = builder.as_data_source()[binding.SPLIT][0]
  n = len(rec["ligand_coords"])
  assert rec["ligand_channels"].shape == (n, 9)
  assert rec["ligand_nodes"].shape == (n, len(ligands.ATOM_FEATURES))
  assert rec["pose"] == b"modelled"
  center = pocket.load_target("F2").center
  assert np.abs(rec["ligand_coords"] - center).max() < 12.0


def test_multi_target_subset(tmp_path):
  binding.build("multi_target", str(tmp_path), limit=2)
  ds = load_dataset(_dcfg(tmp_path, variant="multi_target", split_seed=1))
  targets = np.concatenate([s.targets for s in ds.sources.values()])
  assert sorted(targets) == sorted(list(chembl.TARGETS) * 2)
  # Results report each target beside the pooled figures.
  assert ds.spec.metric_groups == (("target", None),)
  for s in ds.sources.values():
    for i in range(len(s)):
      ex = s[i]
      assert ex["target"] == s.targets[i]
      assert ex["complex"].shape == (12, 12, 12, 16)


def test_unknown_variant(tmp_path):
  with pytest.raises(ValueError, match="not a binding config"):
    binding.build("nope", str(tmp_path))


def test_thrombin_splits_by_scaffold_and_by_moleculeace():
  """On the full vendored thrombin set: no scaffold in two parts of the
  scaffold split; MoleculeACE's own test rows are the moleculeace test."""
  from mmjax.data.affinity import chembl  # pylint: disable=g-import-not-at-top
  ligs = chembl.read_ligands("F2")
  assert len(ligs) == 2754
  assert min(l.pk for l in ligs) > 2.5 and max(l.pk for l in ligs) <= 11.0
  parts = chembl.split_ligands(ligs, "scaffold", 0)
  assert [len(p) for p in parts] == [2205, 274, 275]
  scaf = [{chembl.scaffold(ligs[i].smiles) for i in p} for p in parts]
  assert not (scaf[0] & scaf[1] or scaf[0] & scaf[2] or scaf[1] & scaf[2])
  train, val, test = chembl.split_ligands(ligs, "moleculeace", 0)
  assert {ligs[i].moleculeace_split for i in test} == {"test"}
  assert len(test) == 553 and len(train) + len(val) == 2201
  with pytest.raises(ValueError, match="dataset.split: 'random'"):
    chembl.split_ligands(ligs, "random", 0)


def test_vendored_files_match_their_manifest():
  import gzip  # pylint: disable=g-import-not-at-top
  import hashlib  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from mmjax.data.affinity import chembl  # pylint: disable=g-import-not-at-top
  files = chembl.manifest()["files"]
  assert len(files) == 21
  for f in files:
    path = os.path.join(chembl.VENDOR, f["file"])
    stored = open(path, "rb").read()
    assert hashlib.sha256(stored).hexdigest() == f["stored_sha256"], path
    shipped = gzip.decompress(stored) if path.endswith(".gz") else stored
    assert hashlib.sha256(shipped).hexdigest() == f["sha256"], path
