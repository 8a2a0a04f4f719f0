"""The Boolean cardiac gene regulatory network of Herrmann, Gross, Zhou,
Kestler and Kuehl (2012), "A Boolean model of the cardiac gene regulatory
network determining first and second heart field identity", PLoS One
7(10):e46798 (numpy only).

Rules as exported by the Cell Collective (module 2136) and curated in
sybila/biodivine-boolean-models model 010, `.bnet` syntax (& and, | or,
! not); CANA 1.0.0's truth tables of the same model agree on all 2^15
states (checked in the research notes, not here):

  exogen_canWnt_II = exogen_CanWnt_I
  exogen_BMP2_II   = exogen_BMP2_I
  canWnt   = exogen_canWnt_II
  Bmp2     = exogen_BMP2_II & !canWnt
  Mesp1    = canWnt & !exogen_BMP2_II
  Dkk1     = Mesp1 | (canWnt & !exogen_BMP2_II)
  Foxc1_2  = canWnt & exogen_canWnt_II
  Tbx1     = Foxc1_2
  Fgf8     = (Tbx1 & !Mesp1) | (Foxc1_2 & !Mesp1)
  Isl1     = Mesp1 | Tbx1 | Fgf8 | (canWnt & exogen_canWnt_II)
  GATAs    = Nkx2_5 | Tbx5 | Mesp1
  Nkx2_5   = Tbx5 | Tbx1 | (Mesp1 & Dkk1) | (Bmp2 & GATAs)
             | (Isl1 & GATAs)
  Tbx5     = (Tbx5 | Nkx2_5 | Mesp1)
             & !(canWnt | (Dkk1 & !Tbx5 & !Mesp1) | Tbx1)

15 nodes: the 2 external inputs (`INPUTS`: canonical Wnt and BMP2 given
from outside, e.g. CHIR99021 and BMP4 in a dish) keep their value (an
identity self-loop; biodivine drops the identity of exogen_CanWnt_I, CANA
keeps both, the notes' cross-check treats both as held), and 13 regulated
nodes with 37 regulations. The `_II` relays delay each signal by one
synchronous step. A state is bool [..., 15] in `NODES` order.

Synchronous update has exactly 6 fixed points over the 2^15 states and no
cycles (the research notes' enumeration; `fixed_points` repeats it): two
per input configuration without Wnt, one per configuration with Wnt
(`FIXED_POINTS`, named by `FATES`). Fate pairs that differ only by BMP
(non-cardiac / BMP-exposed non-cardiac, FHF / FHF under BMP) differ only
in the BMP input, its relay and Bmp2 (BMP2_II & !canWnt, on in both
BMP-exposed fixed points); Wnt-maintained mesoderm / SHF differ in the
BMP input and relay and in Mesp1, Dkk1 (mesoderm) against Fgf8 (SHF).
"""

import functools

import numpy as np

NODES = (
    "exogen_CanWnt_I",   # 0  input: canonical Wnt, exogenous
    "exogen_BMP2_I",     # 1  input: BMP2, exogenous
    "exogen_canWnt_II",  # 2  relay of the Wnt input (one step later)
    "exogen_BMP2_II",    # 3  relay of the BMP input
    "canWnt",            # 4
    "Bmp2",              # 5
    "Mesp1",             # 6
    "Dkk1",              # 7
    "Foxc1_2",           # 8
    "Tbx1",              # 9
    "Fgf8",              # 10
    "Isl1",              # 11
    "GATAs",             # 12
    "Nkx2_5",            # 13
    "Tbx5",              # 14
)
INDEX = {name: i for i, name in enumerate(NODES)}
INPUTS = ("exogen_CanWnt_I", "exogen_BMP2_I")  # signals[..., 0], [..., 1]
INPUT_INDICES = tuple(INDEX[n] for n in INPUTS)

# Regulators of each node, in NODES order (the truth tables' bit order).
# An input's only regulator is itself.
REGULATORS = {
    "exogen_CanWnt_I": ("exogen_CanWnt_I",),
    "exogen_BMP2_I": ("exogen_BMP2_I",),
    "exogen_canWnt_II": ("exogen_CanWnt_I",),
    "exogen_BMP2_II": ("exogen_BMP2_I",),
    "canWnt": ("exogen_canWnt_II",),
    "Bmp2": ("exogen_BMP2_II", "canWnt"),
    "Mesp1": ("exogen_BMP2_II", "canWnt"),
    "Dkk1": ("exogen_BMP2_II", "canWnt", "Mesp1"),
    "Foxc1_2": ("exogen_canWnt_II", "canWnt"),
    "Tbx1": ("Foxc1_2",),
    "Fgf8": ("Mesp1", "Foxc1_2", "Tbx1"),
    "Isl1": ("exogen_canWnt_II", "canWnt", "Mesp1", "Tbx1", "Fgf8"),
    "GATAs": ("Mesp1", "Nkx2_5", "Tbx5"),
    "Nkx2_5": ("Bmp2", "Mesp1", "Dkk1", "Tbx1", "Isl1", "GATAs", "Tbx5"),
    "Tbx5": ("canWnt", "Mesp1", "Dkk1", "Tbx1", "Nkx2_5", "Tbx5"),
}

FATES = ("noncardiac", "fhf", "bmp_noncardiac", "bmp_fhf", "wnt_mesoderm",
         "shf")
FATE_DESCRIPTIONS = (
    "non-cardiac / uncommitted, no signal",
    "first heart field (GATAs, Nkx2-5, Tbx5)",
    "non-cardiac, BMP-exposed",
    "first heart field under BMP",
    "Wnt-maintained cardiac mesoderm (Mesp1+)",
    "second heart field progenitor (Isl1, Tbx1, Fgf8, Foxc1/2, Nkx2-5)",
)
# ON nodes of each fixed point (all others OFF), in FATES order: the
# research notes' A0..A5.
_FIXED_POINT_ON = (
    (),
    ("GATAs", "Nkx2_5", "Tbx5"),
    ("exogen_BMP2_I", "exogen_BMP2_II", "Bmp2"),
    ("exogen_BMP2_I", "exogen_BMP2_II", "Bmp2", "GATAs", "Nkx2_5", "Tbx5"),
    ("exogen_CanWnt_I", "exogen_canWnt_II", "canWnt", "Mesp1", "Dkk1",
     "Foxc1_2", "Tbx1", "Isl1", "GATAs", "Nkx2_5"),
    ("exogen_CanWnt_I", "exogen_BMP2_I", "exogen_canWnt_II",
     "exogen_BMP2_II", "canWnt", "Foxc1_2", "Tbx1", "Fgf8", "Isl1", "GATAs",
     "Nkx2_5"),
)


def state_of(on):
  """bool [15] state with exactly the nodes named in `on` ON."""
  s = np.zeros(len(NODES), bool)
  s[[INDEX[n] for n in on]] = True
  return s


FIXED_POINTS = np.stack([state_of(on) for on in _FIXED_POINT_ON])  # [6, 15]
FIXED_POINTS.setflags(write=False)


def update(state):
  """One synchronous step: bool [..., 15] -> bool [..., 15]."""
  s = np.asarray(state, bool)
  g = {name: s[..., i] for i, name in enumerate(NODES)}
  new = {
      "exogen_CanWnt_I": g["exogen_CanWnt_I"],
      "exogen_BMP2_I": g["exogen_BMP2_I"],
      "exogen_canWnt_II": g["exogen_CanWnt_I"],
      "exogen_BMP2_II": g["exogen_BMP2_I"],
      "canWnt": g["exogen_canWnt_II"],
      "Bmp2": g["exogen_BMP2_II"] & ~g["canWnt"],
      "Mesp1": g["canWnt"] & ~g["exogen_BMP2_II"],
      "Dkk1": g["Mesp1"] | (g["canWnt"] & ~g["exogen_BMP2_II"]),
      "Foxc1_2": g["canWnt"] & g["exogen_canWnt_II"],
      "Tbx1": g["Foxc1_2"],
      "Fgf8": (g["Tbx1"] & ~g["Mesp1"]) | (g["Foxc1_2"] & ~g["Mesp1"]),
      "Isl1": (g["Mesp1"] | g["Tbx1"] | g["Fgf8"]
               | (g["canWnt"] & g["exogen_canWnt_II"])),
      "GATAs": g["Nkx2_5"] | g["Tbx5"] | g["Mesp1"],
      "Nkx2_5": (g["Tbx5"] | g["Tbx1"] | (g["Mesp1"] & g["Dkk1"])
                 | (g["Bmp2"] & g["GATAs"]) | (g["Isl1"] & g["GATAs"])),
      "Tbx5": ((g["Tbx5"] | g["Nkx2_5"] | g["Mesp1"])
               & ~(g["canWnt"] | (g["Dkk1"] & ~g["Tbx5"] & ~g["Mesp1"])
                   | g["Tbx1"])),
  }
  return np.stack([new[name] for name in NODES], axis=-1)


@functools.lru_cache(maxsize=None)
def _truth_tables():
  out = []
  for i, name in enumerate(NODES):
    regs = tuple(INDEX[r] for r in REGULATORS[name])
    m = len(regs)
    # Row j sets regulator k to bit (m - 1 - k) of j: itertools.product
    # order, so table.reshape((2,) * m) has axis k = regulator k.
    bits = (np.arange(2 ** m)[:, None] >> np.arange(m - 1, -1, -1)) & 1
    states = np.zeros((2 ** m, len(NODES)), bool)
    states[:, regs] = bits.astype(bool)
    table = update(states)[:, i].astype(np.int8)
    table.setflags(write=False)
    out.append((regs, table))
  return tuple(out)


def truth_tables():
  """Per node (in NODES order): (regs, table).

  regs: indices (into NODES) of the node's regulators, increasing.
  table: int8 [2^len(regs)], the node's next value when regulator k has
  bit (len(regs) - 1 - k) of the row index (first regulator = most
  significant bit, itertools.product order). Other nodes do not matter
  (tests/test_cardiac_network.py checks this against `update` on all
  2^15 states). Inputs: regs (i,), table [0, 1].
  """
  return list(_truth_tables())


def all_states():
  """bool [2^15, 15]: every state; node i is bit i of the row index."""
  codes = np.arange(2 ** len(NODES))
  return ((codes[:, None] >> np.arange(len(NODES))) & 1).astype(bool)


def fixed_points():
  """bool [K, 15]: every state with update(s) == s, in all_states order
  (K = 6, the rows of FIXED_POINTS in another order)."""
  s = all_states()
  return s[(update(s) == s).all(-1)]


def fate_of(state):
  """Index into FATES of a bool state [..., 15] (int, or int64 [...]),
  -1 where it is not one of the FIXED_POINTS."""
  s = np.asarray(state, bool)
  hit = (s[..., None, :] == FIXED_POINTS).all(-1)  # [..., 6]
  idx = np.where(hit.any(-1), hit.argmax(-1), -1)
  return int(idx) if idx.ndim == 0 else idx
