"""Ligand featurisation with RDKit: the molecular graph, per-atom voxel
channels and one 3-D conformer.

Every function works on the heavy atoms of a molecule from
`mol_from_smiles`, in RDKit's atom order, so row i of `ligand_graph`'s
nodes, of `ligand_atom_channels` and of `embed_conformer` is the same atom.
"""

import functools
import os

import numpy as np

ELEMENTS = ("C", "N", "O", "S", "F", "Cl", "Br", "I", "P")
DEGREES = (0, 1, 2, 3, 4)          # and a last bin "degree >= 5"
CHARGES = (-1, 0, 1)               # others fall in no bin
HYDROGENS = (0, 1, 2)              # and a last bin "H >= 3"
HYBRIDS = ("SP", "SP2", "SP3")     # and a last bin for the rest

ATOM_FEATURES = (
    tuple(f"element {e}" for e in ELEMENTS) + ("element other",)
    + tuple(f"degree {d}" for d in DEGREES) + ("degree >=5",)
    + tuple(f"formal charge {c:+d}" for c in CHARGES)
    + ("aromatic",)
    + tuple(f"total H {h}" for h in HYDROGENS) + ("total H >=3",)
    + ("in ring",)
    + tuple(f"hybridisation {h}" for h in HYBRIDS)
    + ("hybridisation other",))
BOND_FEATURES = ("single", "double", "triple", "aromatic", "conjugated",
                 "in ring")

# Voxel channels: the weight of each atom's Gaussian in each channel. "C" is
# non-aromatic carbon, as AutoDock's C vs A on the protein side.
LIGAND_CHANNELS = ("C", "aromatic C", "N", "O", "S", "halogen", "donor",
                   "acceptor", "partial charge")
HALOGENS = ("F", "Cl", "Br", "I")


def mol_from_smiles(smiles, where):
  """RDKit molecule (heavy atoms; hydrogens implicit) from a SMILES.

  Raises:
    ValueError naming `where` if the SMILES does not parse or has no heavy
    atom.
  """
  from rdkit import Chem  # pylint: disable=g-import-not-at-top
  from rdkit import RDLogger  # pylint: disable=g-import-not-at-top
  RDLogger.DisableLog("rdApp.*")  # The ValueError below says what failed.
  mol = Chem.MolFromSmiles(smiles) if smiles else None
  if mol is not None:
    mol = Chem.RemoveHs(mol)
  if mol is None or mol.GetNumAtoms() == 0:
    raise ValueError(f"{where}: SMILES '{smiles}' does not parse")
  return mol


def _one_hot(value, choices, other_bin):
  out = [float(value == c) for c in choices]
  if other_bin:
    out.append(float(value not in choices))
  return out


def atom_features(atom):
  """float features [len(ATOM_FEATURES)] of one RDKit atom."""
  hybrid = str(atom.GetHybridization())
  f = (_one_hot(atom.GetSymbol(), ELEMENTS, True)
       + _one_hot(min(atom.GetDegree(), 5), DEGREES, True)
       + _one_hot(atom.GetFormalCharge(), CHARGES, False)
       + [float(atom.GetIsAromatic())]
       + _one_hot(min(atom.GetTotalNumHs(), 3), HYDROGENS, True)
       + [float(atom.IsInRing())]
       + _one_hot(hybrid, HYBRIDS, True))
  return f


def bond_features(bond):
  """float features [len(BOND_FEATURES)] of one RDKit bond."""
  kind = str(bond.GetBondType())
  return [float(kind == "SINGLE"), float(kind == "DOUBLE"),
          float(kind == "TRIPLE"), float(kind == "AROMATIC"),
          float(bond.GetIsConjugated()), float(bond.IsInRing())]


def ligand_graph(mol):
  """The molecular graph over heavy atoms.

  Returns:
    nodes float32 [n, len(ATOM_FEATURES)], edges float32 [e,
    len(BOND_FEATURES)], senders int32 [e], receivers int32 [e]: every bond
    stored in both directions (e = 2 * bonds), no self loops.
  """
  nodes = np.asarray([atom_features(a) for a in mol.GetAtoms()], np.float32)
  snd, rcv, edges = [], [], []
  for b in mol.GetBonds():
    i, j, f = b.GetBeginAtomIdx(), b.GetEndAtomIdx(), bond_features(b)
    snd += [i, j]
    rcv += [j, i]
    edges += [f, f]
  edges = np.asarray(edges, np.float32).reshape(-1, len(BOND_FEATURES))
  return (nodes.reshape(-1, len(ATOM_FEATURES)), edges,
          np.asarray(snd, np.int32), np.asarray(rcv, np.int32))


@functools.lru_cache(maxsize=1)
def _feature_factory():
  from rdkit import RDConfig  # pylint: disable=g-import-not-at-top
  from rdkit.Chem import ChemicalFeatures  # pylint: disable=g-import-not-at-top
  return ChemicalFeatures.BuildFeatureFactory(
      os.path.join(RDConfig.RDDataDir, "BaseFeatures.fdef"))


def donors_acceptors(mol):
  """Boolean [n] donor and [n] acceptor flags from RDKit's BaseFeatures
  definitions (the pharmacophore families Donor and Acceptor)."""
  n = mol.GetNumAtoms()
  donor, acceptor = np.zeros(n, bool), np.zeros(n, bool)
  for feat in _feature_factory().GetFeaturesForMol(mol):
    family = feat.GetFamily()
    if family in ("Donor", "Acceptor"):
      flags = donor if family == "Donor" else acceptor
      flags[list(feat.GetAtomIds())] = True
  return donor, acceptor


def gasteiger_charges(mol):
  """float [n] Gasteiger charges (e) of the heavy atoms, each including its
  implicit hydrogens' charge (as the protein's heavy atoms absorb theirs);
  0 where RDKit has no parameters (NaN)."""
  from rdkit.Chem import rdPartialCharges  # pylint: disable=g-import-not-at-top
  mol = type(mol)(mol)  # The charges are stored as atom properties.
  rdPartialCharges.ComputeGasteigerCharges(mol)
  q = np.asarray([a.GetDoubleProp("_GasteigerCharge")
                  + a.GetDoubleProp("_GasteigerHCharge")
                  for a in mol.GetAtoms()], np.float64)
  return np.where(np.isfinite(q), q, 0.0)


def ligand_atom_channels(mol):
  """Voxel channel weights per heavy atom, float32 [n, len(LIGAND_CHANNELS)].

  One-hot element channels (C non-aromatic, aromatic C, N, O, S, halogen;
  other elements such as P fall in none), donor / acceptor flags
  (`donors_acceptors`) and the Gasteiger partial charge in e
  (`gasteiger_charges`).
  """
  donor, acceptor = donors_acceptors(mol)
  out = np.zeros((mol.GetNumAtoms(), len(LIGAND_CHANNELS)), np.float32)
  for i, a in enumerate(mol.GetAtoms()):
    s = a.GetSymbol()
    if s == "C":
      out[i, 1 if a.GetIsAromatic() else 0] = 1
    elif s in ("N", "O", "S"):
      out[i, LIGAND_CHANNELS.index(s)] = 1
    elif s in HALOGENS:
      out[i, 5] = 1
  out[:, 6] = donor
  out[:, 7] = acceptor
  out[:, 8] = gasteiger_charges(mol)
  return out


def embed_conformer(mol, seed, mmff_iters=200):
  """One 3-D conformer of the heavy atoms, centred at the origin.

  ETKDGv3 on the molecule with explicit hydrogens (randomSeed=seed, so the
  result is reproducible), then at most `mmff_iters` MMFF94 steps where
  MMFF has parameters; if ETKDG fails, the same from random starting
  coordinates.

  Returns:
    float32 [n_heavy, 3] in Å, rows in the order of mol's atoms, with
    their mean at the origin.

  Raises:
    ValueError naming the molecule if no embedding succeeds.
  """
  from rdkit import Chem  # pylint: disable=g-import-not-at-top
  from rdkit.Chem import AllChem  # pylint: disable=g-import-not-at-top
  n = mol.GetNumAtoms()
  molh = Chem.AddHs(mol)  # AddHs appends hydrogens after the heavy atoms.
  params = AllChem.ETKDGv3()
  params.randomSeed = int(seed)
  cid = AllChem.EmbedMolecule(molh, params)
  if cid < 0:
    params.useRandomCoords = True
    params.maxIterations = 1000
    cid = AllChem.EmbedMolecule(molh, params)
  if cid < 0:
    raise ValueError(f"molecule '{Chem.MolToSmiles(mol)}': no 3-D "
                     "embedding (ETKDGv3 and random coordinates both failed)")
  if mmff_iters and AllChem.MMFFHasAllMoleculeParams(molh):
    AllChem.MMFFOptimizeMolecule(molh, maxIters=int(mmff_iters))
  xyz = molh.GetConformer(cid).GetPositions()[:n]
  return (xyz - xyz.mean(0)).astype(np.float32)


def featurize(smiles, where, seed):
  """Everything a binding example stores about one ligand (picklable, for a
  worker pool).

  Returns:
    dict nodes, edges, senders, receivers (`ligand_graph`), channels
    (`ligand_atom_channels`), conformer (`embed_conformer`).

  Raises:
    ValueError naming `where` if the SMILES does not parse or no conformer
    can be embedded.
  """
  mol = mol_from_smiles(smiles, where)
  nodes, edges, senders, receivers = ligand_graph(mol)
  try:
    conformer = embed_conformer(mol, seed)
  except ValueError as e:
    raise ValueError(f"{where}: {e}") from None
  return dict(nodes=nodes, edges=edges, senders=senders, receivers=receivers,
              channels=ligand_atom_channels(mol), conformer=conformer)
