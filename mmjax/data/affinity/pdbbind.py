"""`pdbbind_folder`: crystal complexes from a user's PDBbind-format folder.

Layout (PDBbind v2016-v2020; docs/pdbbind.md):

  <root>/index/INDEX_<set>_data.<year>   labels (`parse_index`)
  <root>/<code>/  or  <root>/<set>/<code>/, each holding
    <code>_pocket.pdb   (else <code>_protein.pdb, cut to the grid box)
    <code>_ligand.sdf   (else <code>_ligand.mol2), the crystal pose

Every complex becomes the example the `binding` dataset yields
(registered.affinity_spec): a [D, D, D, 16] grid of the protein's 7 and the
ligand's 9 channels, centred on the ligand's heavy-atom centroid (a crystal
complex has no docking box), plus the ligand graph and the label -log10(Kd or
Ki / M) read from the index. A complex that cannot be used (a missing file,
a ligand RDKit cannot read, a ligand that does not fit in the grid, a code
with no label) is skipped with one warning line naming the file and the
problem; a malformed index line is an error.

Usage:

  ds = load_pdbbind_folder(ConfigDict({"path": "/data/pdbbind",
                                       "grid": {"box": 24.0,
                                                "resolution": 1.0},
                                       "split_seed": 0}), data_dir)
  ex = ds.sources["train"][0]       # {"complex": [D, D, D, 16], ...}
"""

import glob
import os

from absl import logging
import numpy as np

from mmjax.data import splits
from mmjax.data.affinity import ligands
from mmjax.data.affinity import pocket as pocket_lib
from mmjax.data.affinity import registered
from mmjax.data.affinity import voxels
from mmjax.data.datasets import Dataset
from mmjax.errors import UserError

INDEX_GLOB = os.path.join("index", "INDEX_*_data.*")
SCAFFOLD_FRACTIONS = (0.8, 0.1, 0.1)
# Share of the non-test complexes held out (by scaffold) for validation when
# `test_index` fixes the test set.
VAL_FRACTION = 0.1

# The 20 amino acids, and names force fields and the PDB use for some of
# them (protonation states, selenomethionine), read as the parent residue.
AMINO_ACIDS = ("ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS",
               "ILE", "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP",
               "TYR", "VAL")
RESIDUE_ALIASES = {"HID": "HIS", "HIE": "HIS", "HIP": "HIS", "HSD": "HIS",
                   "HSE": "HIS", "HSP": "HIS", "CYX": "CYS", "CYM": "CYS",
                   "ASH": "ASP", "GLH": "GLU", "LYN": "LYS", "MSE": "MET"}
WATERS = ("HOH", "WAT", "DOD", "H2O")
# Ring carbons, by residue and atom name.
AROMATIC_CARBONS = {
    "PHE": ("CG", "CD1", "CD2", "CE1", "CE2", "CZ"),
    "TYR": ("CG", "CD1", "CD2", "CE1", "CE2", "CZ"),
    "TRP": ("CG", "CD1", "CD2", "CE2", "CE3", "CZ2", "CZ3", "CH2"),
    "HIS": ("CG", "CD2", "CE1"),
}
# Side-chain atoms that carry a polar hydrogen (backbone N too, except PRO).
SIDE_CHAIN_DONORS = {
    "LYS": ("NZ",), "ARG": ("NE", "NH1", "NH2"), "ASN": ("ND2",),
    "GLN": ("NE2",), "HIS": ("ND1", "NE2"), "TRP": ("NE1",),
    "SER": ("OG",), "THR": ("OG1",), "TYR": ("OH",),
}
# Partial charge, e: a PDB file has no Gasteiger charges, so each ionised
# side chain's formal charge at pH 7 is shared over the atoms that carry it.
# HIS is taken neutral; chain termini are not charged because a pocket file
# cuts the chain into fragments whose ends are not real termini.
RESIDUE_CHARGES = {
    "ASP": {"OD1": -0.5, "OD2": -0.5},
    "GLU": {"OE1": -0.5, "OE2": -0.5},
    "LYS": {"NZ": 1.0},
    "ARG": {"NE": 1 / 3, "NH1": 1 / 3, "NH2": 1 / 3},
}
# Metal ions are kept (zinc, magnesium... often bind the ligand directly)
# and carry only their formal charge, e; no element channel fits them.
METAL_CHARGES = {"LI": 1.0, "NA": 1.0, "K": 1.0, "MG": 2.0, "CA": 2.0,
                 "MN": 2.0, "FE": 2.0, "CO": 2.0, "NI": 2.0, "CU": 2.0,
                 "ZN": 2.0, "CD": 2.0, "HG": 2.0, "SR": 2.0, "BA": 2.0}
_CHANNEL = {name: i for i, name in enumerate(pocket_lib.PROTEIN_CHANNELS)}


# ----------------------------------------------------------------------------
# Index files.


def parse_index(path):
  """Labels of one PDBbind index file.

  Lines are whitespace-split; blank lines and lines starting with '#' are
  skipped. Column 0 is the PDB code, 1 the resolution (a number or 'NMR'),
  2 the release year, 3 the label -log10(Kd or Ki / M); the rest (affinity
  string, reference, ligand name) is ignored.

  Args:
    path: an `INDEX_<set>_data.<year>` file.

  Returns:
    dict {lower-case code: pK (float)} in file order.

  Raises:
    ValueError: naming the file and line, for a line that does not parse.
  """
  out = {}
  with open(path, encoding="utf-8", errors="replace") as f:
    for num, line in enumerate(f, 1):
      if not line.strip() or line.lstrip().startswith("#"):
        continue
      where = f"{path} line {num}"
      cols = line.split()
      if len(cols) < 4:
        raise ValueError(f"{where}: expected code, resolution, year and "
                         f"-logKd/Ki, got {len(cols)} column(s)")
      code, resolution, year, label = cols[:4]
      if not code.isalnum():
        raise ValueError(f"{where}: PDB code {code!r} is not alphanumeric")
      if resolution.upper() != "NMR" and not _is_number(resolution):
        raise ValueError(f"{where}: resolution {resolution!r} is neither a "
                         "number nor NMR")
      if not year.isdigit():
        raise ValueError(f"{where}: release year {year!r} is not a year")
      if not _is_number(label) or not np.isfinite(float(label)):
        raise ValueError(f"{where}: -logKd/Ki {label!r} is not a number")
      out[code.lower()] = float(label)
  return out


def _is_number(s):
  try:
    float(s)
  except ValueError:
    return False
  return True


def index_files(root, index=""):
  """The index files to read: `index` (absolute, or relative to the working
  directory or to `root`), else every index/INDEX_*_data.* under root."""
  if index:
    index = os.path.expanduser(index)
    for p in (index, os.path.join(root, index)):
      if os.path.isfile(p):
        return [p]
    raise ValueError(f"{index}: index file not found (also looked under "
                     f"{root})")
  found = sorted(glob.glob(os.path.join(root, INDEX_GLOB)) +
                 glob.glob(os.path.join(root, "*", INDEX_GLOB)))
  if not found:
    raise ValueError(f"{root}: no {INDEX_GLOB} file; name one with "
                     "dataset.index")
  return found


def read_labels(files):
  """Merged {code: pK} of the index files; the first file listing a code
  gives its label (PDBbind's sets repeat the same value)."""
  labels = {}
  for path in files:
    for code, pk in parse_index(path).items():
      labels.setdefault(code, pk)
  return labels


# ----------------------------------------------------------------------------
# Complex folders and files.


def find_complexes(root):
  """{code: folder} of the complexes under root, as <root>/<code>/ or
  <root>/<set>/<code>/; a folder is a complex if it holds a file named
  <folder name>_<something>. A code found twice keeps the first folder in
  sorted order (warned)."""
  out = {}
  for parent in [root] + sorted(
      os.path.join(root, d) for d in os.listdir(root)
      if d != "index" and os.path.isdir(os.path.join(root, d))):
    for name in sorted(os.listdir(parent)):
      folder = os.path.join(parent, name)
      if not os.path.isdir(folder) or name == "index":
        continue
      if not any(f.startswith(name + "_") for f in os.listdir(folder)):
        continue
      code = name.lower()
      if code in out:
        logging.warning("pdbbind_folder: skipping %s: code %s is already "
                        "read from %s", folder, code, out[code])
        continue
      out[code] = folder
  return out


def _first_file(folder, code, suffixes):
  """The first existing <folder>/<code><suffix>; ValueError naming the
  first one if none exists."""
  paths = [os.path.join(folder, code + s) for s in suffixes]
  for p in paths:
    if os.path.isfile(p):
      return p
  others = ", ".join(os.path.basename(p) for p in paths[1:])
  raise ValueError(f"{paths[0]}: file not found (nor {others})")


def read_ligand(path):
  """The crystal ligand of an SDF (first record) or MOL2 file, sanitized,
  hydrogens removed after reading (heavy atoms keep their coordinates).

  Returns:
    rdkit Mol with one conformer, heavy atoms only.

  Raises:
    ValueError: naming the file, if RDKit cannot read or sanitize it.
  """
  from rdkit import Chem  # pylint: disable=g-import-not-at-top
  from rdkit import rdBase  # pylint: disable=g-import-not-at-top
  # RDKit prints its own multi-line complaints; the ValueError replaces them.
  with rdBase.BlockLogs():
    if path.endswith(".mol2"):
      mol = Chem.MolFromMol2File(path, sanitize=True, removeHs=False)
    else:
      mol = Chem.MolFromMolFile(path, sanitize=True, removeHs=False)
    if mol is not None:
      try:
        mol = Chem.RemoveHs(mol, sanitize=True)
      except Exception:  # pylint: disable=broad-except
        mol = None
  if mol is None:
    raise ValueError(f"{path}: RDKit cannot read or sanitize the ligand")
  if mol.GetNumAtoms() == 0 or mol.GetNumConformers() == 0:
    raise ValueError(f"{path}: the ligand has no heavy atoms or no "
                     "coordinates")
  return mol


def read_protein(path, center=None, half_extent=None):
  """Heavy atoms of a PDB file and their PROTEIN_CHANNELS.

  Kept: ATOM/HETATM records of the 20 amino acids (and RESIDUE_ALIASES),
  and metal ions (METAL_CHARGES, partial-charge channel only). Dropped:
  hydrogens, waters, every other residue (ligands, cofactors, ions such as
  sulfate), alternate locations other than the first. Channels by
  residue/atom name: 'C' every carbon but the ring carbons of PHE, TYR, TRP
  and HIS ('aromatic C'); 'N' every nitrogen; 'O acceptor' every oxygen;
  'S' sulfur (and selenium of MSE); 'polar-H donor' backbone N except PRO
  and SIDE_CHAIN_DONORS; 'partial charge' RESIDUE_CHARGES.

  Args:
    path: a PDB file.
    center: float [3] Angstrom; with half_extent, keeps only atoms within
      half_extent of it along every axis.
    half_extent: Angstrom.

  Returns:
    (coords float32 [n, 3] Angstrom, channels float32 [n, 7]).

  Raises:
    ValueError: naming the file and line for unreadable coordinates, or the
      file if no atom is left.
  """
  coords, channels = [], []
  with open(path, encoding="utf-8", errors="replace") as f:
    for num, line in enumerate(f, 1):
      if not line.startswith(("ATOM  ", "HETATM")):
        continue
      alt = line[16:17]
      if alt not in (" ", "A", "1"):
        continue
      name = line[12:16].strip()
      resname = line[17:20].strip().upper()
      element = line[76:78].strip().upper() if len(line) > 76 else ""
      residue = RESIDUE_ALIASES.get(resname, resname)
      if residue in WATERS:
        continue
      if not element:
        element = resname if resname in METAL_CHARGES else name.lstrip(
            "0123456789")[:1].upper()
      if element in ("H", "D"):
        continue
      ch = np.zeros(len(pocket_lib.PROTEIN_CHANNELS), np.float32)
      if residue in AMINO_ACIDS:
        _amino_acid_channels(ch, residue, name, element)
      elif element in METAL_CHARGES and resname == element:
        ch[_CHANNEL["partial charge"]] = METAL_CHARGES[element]
      else:
        continue
      try:
        xyz = [float(line[30:38]), float(line[38:46]), float(line[46:54])]
      except ValueError:
        raise ValueError(f"{path} line {num}: coordinates "
                         f"{line[30:54].strip()!r} are not numbers") from None
      coords.append(xyz)
      channels.append(ch)
  coords = np.asarray(coords, np.float32).reshape(-1, 3)
  channels = np.asarray(channels, np.float32).reshape(
      -1, len(pocket_lib.PROTEIN_CHANNELS))
  if not np.all(np.isfinite(coords)):
    raise ValueError(f"{path}: coordinates are not finite")
  if center is not None:
    keep = np.all(np.abs(coords - center) <= half_extent, axis=1)
    coords, channels = coords[keep], channels[keep]
  if not len(coords):
    raise ValueError(f"{path}: no amino-acid heavy atom"
                     + (" within the grid box" if center is not None else ""))
  return coords, channels


def _amino_acid_channels(ch, residue, name, element):
  """Fills one amino-acid atom's PROTEIN_CHANNELS row `ch` in place."""
  if element == "C":
    aromatic = name in AROMATIC_CARBONS.get(residue, ())
    ch[_CHANNEL["aromatic C" if aromatic else "C"]] = 1.0
  elif element == "N":
    ch[_CHANNEL["N"]] = 1.0
  elif element == "O":
    ch[_CHANNEL["O acceptor"]] = 1.0
  elif element in ("S", "SE"):
    ch[_CHANNEL["S"]] = 1.0
  if ((name == "N" and residue != "PRO") or
      name in SIDE_CHAIN_DONORS.get(residue, ())):
    ch[_CHANNEL["polar-H donor"]] = 1.0
  ch[_CHANNEL["partial charge"]] = RESIDUE_CHARGES.get(residue, {}).get(
      name, 0.0)


# ----------------------------------------------------------------------------
# One complex, and the dataset.


def scaffold(mol):
  """Bemis-Murcko scaffold SMILES as chembl.scaffold computes it ('' for
  acyclic ligands, which then share one group)."""
  from rdkit.Chem.Scaffolds import MurckoScaffold  # pylint: disable=g-import-not-at-top
  return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def read_complex(folder, code, box, resolution):
  """Everything an example needs from one complex folder, except the grid.

  Args:
    folder: the complex's folder.
    code: its PDB code (file prefix).
    box: grid edge, Angstrom.
    resolution: voxel edge, Angstrom.

  Returns:
    dict with `pocket` (pocket.Pocket centred on the ligand centroid),
    `ligand_coords` float32 [n, 3] Angstrom, `ligand_channels` float32
    [n, 9], the ligand graph (`ligand_nodes`, `ligand_edges`,
    `ligand_senders`, `ligand_receivers`) and `scaffold`.

  Raises:
    ValueError: one line naming the file and what is wrong.
  """
  lig_path = _first_file(folder, code, ("_ligand.sdf", "_ligand.mol2"))
  prot_path = _first_file(folder, code, ("_pocket.pdb", "_protein.pdb"))
  mol = read_ligand(lig_path)
  lig_xyz = np.asarray(mol.GetConformer().GetPositions(), np.float32)
  if not np.all(np.isfinite(lig_xyz)):
    raise ValueError(f"{lig_path}: ligand coordinates are not finite")
  # A crystal complex has no docking box: the ligand's own centroid is the
  # one centre every complex has.
  center = lig_xyz.mean(0)
  half = box / 2
  off = np.abs(lig_xyz - center).max(1)
  if np.any(off > half):
    i = int(np.argmax(off))
    raise ValueError(
        f"{lig_path}: outside the grid: ligand atom {i + 1} at "
        f"({', '.join(f'{v:.1f}' for v in lig_xyz[i])}) Å is {off[i]:.1f} Å "
        "from the ligand centroid along an axis, more than half the "
        f"{box:g} Å box")
  try:
    nodes, edges, senders, receivers = ligands.ligand_graph(mol)
    lig_ch = np.asarray(ligands.ligand_atom_channels(mol), np.float32)
  except (ValueError, RuntimeError) as e:
    raise ValueError(f"{lig_path}: cannot featurize the ligand "
                     f"({str(e).splitlines()[0] if str(e) else e!r})") from None
  if not np.all(np.isfinite(lig_ch)) or not np.all(np.isfinite(nodes)):
    raise ValueError(f"{lig_path}: ligand features (partial charges) are "
                     "not finite")
  # The protein is cut where voxelize would drop its atoms anyway: beyond
  # the box by more than CUTOFF_SIGMAS Gaussian widths.
  coords, channels = read_protein(
      prot_path, center,
      half + voxels.CUTOFF_SIGMAS * voxels.default_sigma(resolution))
  pocket = pocket_lib.Pocket(coords=coords, channels=channels,
                             center=center.astype(np.float32),
                             size=np.full(3, box, np.float32))
  return {"pocket": pocket, "ligand_coords": lig_xyz,
          "ligand_channels": lig_ch,
          "ligand_nodes": np.asarray(nodes, np.float32),
          "ligand_edges": np.asarray(edges, np.float32),
          "ligand_senders": np.asarray(senders, np.int32),
          "ligand_receivers": np.asarray(receivers, np.int32),
          "scaffold": scaffold(mol)}


class ComplexSource:
  """Random-access examples of read complexes; a grid is voxelized when its
  example is read (a split of thousands of grids would not fit in memory).

  src[i] = {"complex": float32 [D, D, D, 16], "ligand_nodes",
  "ligand_edges", "ligand_senders", "ligand_receivers", "label" float32
  (pK), "id" (PDB code), "pose": "crystal"}.

  Attributes:
    ids: str array [len(self)] PDB codes; labels: float32 [len(self)] pK.
  """

  def __init__(self, records, box, resolution, zero_protein=False):
    self.records = list(records)
    self.box, self.resolution = float(box), float(resolution)
    self.zero_protein = bool(zero_protein)
    self.ids = np.asarray([r["id"] for r in self.records], str)
    self.labels = np.asarray([r["label"] for r in self.records], np.float32)

  def __len__(self):
    return len(self.records)

  def __getitems__(self, idx):
    return [self[i] for i in idx]

  def __getitem__(self, i):
    r = self.records[i]
    grid = voxels.complex_grid(r["pocket"], r["ligand_coords"],
                               r["ligand_channels"], self.box,
                               self.resolution,
                               zero_protein=self.zero_protein)
    return {"complex": np.asarray(grid, np.float32),
            "ligand_nodes": r["ligand_nodes"],
            "ligand_edges": r["ligand_edges"],
            "ligand_senders": r["ligand_senders"],
            "ligand_receivers": r["ligand_receivers"],
            "label": np.float32(r["label"]), "id": r["id"],
            "pose": "crystal"}


def load_pdbbind_folder(dcfg, data_dir):
  """The `pdbbind_folder` dataset (docs/pdbbind.md).

  Args:
    dcfg: config.dataset: `path` (root folder), `index` (optional index
      file; default every index/INDEX_*_data.* under path), `test_index`
      (optional index file whose codes are the test set), `grid` dict(box,
      resolution) in Angstrom (default registered.DEFAULT_GRID),
      `zero_protein` (default False; True zeroes protein channels 0-6),
      `split_seed`.
    data_dir: unused; the folder is read on every load.

  Returns:
    Dataset with train/val/test `ComplexSource`s and
    registered.affinity_spec(box, resolution).

  Raises:
    UserError: no dataset.path.
    ValueError: a missing folder or index, a malformed index line, or no
      usable complex.
  """
  del data_dir  # Read from the user's folder on every load.
  if not dcfg.get("path", ""):
    raise UserError("dataset.path: give the PDBbind-format folder "
                    "(--config.dataset.path=DIR)")
  root = os.path.expanduser(dcfg.path)
  if not os.path.isdir(root):
    raise ValueError(f"{root}: not a directory")
  grid = dict(registered.DEFAULT_GRID)
  grid.update(dict(dcfg.get("grid", None) or {}))
  unknown = set(grid) - set(registered.DEFAULT_GRID)
  if unknown:
    raise ValueError(f"dataset.grid: unknown key '{sorted(unknown)[0]}' "
                     "(known: box, resolution)")
  box, resolution = float(grid["box"]), float(grid["resolution"])
  voxels.grid_size(box, resolution)  # Fails early on a grid with no voxel.
  seed = dcfg.get("split_seed", 0)
  files = index_files(root, dcfg.get("index", ""))
  labels = read_labels(files)
  test_codes = None
  if dcfg.get("test_index", ""):
    test_codes = set(read_labels(index_files(root, dcfg.test_index)))

  records, skipped = [], 0
  for code, folder in sorted(find_complexes(root).items()):
    try:
      if code not in labels:
        raise ValueError(f"{folder}: code {code} has no label in "
                         f"{', '.join(files)}")
      rec = read_complex(folder, os.path.basename(folder), box,
                         resolution)
    except (ValueError, OSError) as e:
      logging.warning("pdbbind_folder: skipping %s", _one_line(e))
      skipped += 1
      continue
    rec.update(id=code, label=labels[code])
    records.append(rec)
  if not records:
    raise ValueError(f"{root}: no usable complex ({skipped} skipped; "
                     "expected <code>/<code>_ligand.sdf and "
                     "<code>_pocket.pdb or <code>_protein.pdb folders)")

  keys = np.asarray([r["scaffold"] for r in records])
  if test_codes is None:
    parts = splits.group_split(keys, seed, SCAFFOLD_FRACTIONS)
  else:
    is_test = np.asarray([r["id"] in test_codes for r in records])
    rest = np.flatnonzero(~is_test)
    fit, val = splits.group_split(keys[rest], seed,
                                  (1 - VAL_FRACTION, VAL_FRACTION))
    parts = [rest[fit], rest[val], np.flatnonzero(is_test)]
  sources = {s: ComplexSource([records[i] for i in idx], box, resolution,
                             dcfg.get("zero_protein", False))
             for s, idx in zip(splits.SPLITS, parts)}
  return Dataset(sources, registered.affinity_spec(box, resolution))


def _one_line(e):
  """An exception's message on one line (OSError's include the path)."""
  return " ".join(str(e).split())
