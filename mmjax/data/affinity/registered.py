"""The `binding` dataset as a registered dataset (mmjax.data.datasets).

Each example: `complex` float32 [D, D, D, 16] (voxels.complex_grid of the
posed ligand in its target's pocket, made when the example is read),
`ligand_nodes` / `ligand_edges` / `ligand_senders` / `ligand_receivers`
(the ligand graph), `label` float32 pKi, `id` and `target` (str).

Config keys (dataset.*): variant 'thrombin' | 'multi_target'; split
'scaffold' (default) | 'moleculeace' (chembl.split_ligands); split_seed;
grid dict(box=24.0, resolution=1.0) in Å; zero_protein (default False;
True zeroes the protein channels 0-6: a ligand-only input); modalities
(default both: ('complex', 'ligand')), the ones a model reads; limit
(default 0 = all: > 0 builds and reads only the first `limit` ligands of
each target, kept apart in <data_dir>/binding_limit<limit>).

Memory: a 1 Å grid is 24^3 x 16 float32 = 0.88 MB per example (2 Å:
0.11 MB), so a split held padded in memory at 1 Å takes ~0.9 GB per
1,000 examples.
"""

import logging
import os

import numpy as np

from mmjax.data import splits as splits_lib
from mmjax.data.affinity import chembl
from mmjax.data.affinity import ligands as ligands_lib
from mmjax.data.affinity import pocket as pocket_lib
from mmjax.data.affinity import voxels
from mmjax.data.datasets import Dataset
from mmjax.data.datasets import DatasetSpec
from mmjax.data.modalities import Modality

DEFAULT_GRID = {"box": 24.0, "resolution": 1.0}
GRAPH_KEYS = ("ligand_nodes", "ligand_edges", "ligand_senders",
              "ligand_receivers")


MODALITIES = ("complex", "ligand")


def affinity_spec(box, resolution, modalities=MODALITIES, by_target=False):
  """A voxel grid and a ligand graph with edge features (those of
  `modalities`, in this order); pKi regression, with metrics per target
  beside the pooled ones if `by_target`."""
  d = voxels.grid_size(box, resolution)
  unknown = [m for m in modalities if m not in MODALITIES]
  if unknown or not modalities:
    raise ValueError(f"dataset.modalities: {tuple(modalities)} must be a "
                     f"non-empty subset of {MODALITIES}")
  mods = {
      "complex": Modality("grid", (d, d, d, voxels.NUM_CHANNELS)),
      "ligand": Modality("graph", (len(ligands_lib.ATOM_FEATURES),
                                   len(ligands_lib.BOND_FEATURES))),
  }
  return DatasetSpec(
      modalities={m: mods[m] for m in MODALITIES if m in modalities},
      task="regression", num_outputs=1,
      metric_groups=(("target", None),) if by_target else ())


def _text(v):
  return v.decode() if isinstance(v, bytes) else str(v)


class BindingSource:
  """Random-access view of some stored binding examples, with the voxel
  grid made at access.

  Attributes:
    ids, targets: str arrays [len(self)] of the examples' ids and targets
      (per-target metrics), labels float32 [len(self)] pKi.
  """

  def __init__(self, source, rows, ids, targets, labels, box, resolution,
               zero_protein):
    self._source = source
    self._rows = np.asarray(rows, np.int64)
    self.ids, self.targets, self.labels = ids, targets, labels
    self.box, self.resolution = float(box), float(resolution)
    self.zero_protein = bool(zero_protein)

  def __len__(self):
    return len(self._rows)

  def __getitem__(self, i):
    rec = self._source[int(self._rows[i])]
    target = _text(rec["target"])
    ex = {k: np.asarray(rec[k]) for k in GRAPH_KEYS}
    ex["complex"] = voxels.complex_grid(
        pocket_lib.load_target(target), rec["ligand_coords"],
        rec["ligand_channels"], self.box, self.resolution,
        zero_protein=self.zero_protein)
    ex["label"] = np.float32(rec["label"])
    ex["id"] = _text(rec["id"])
    ex["target"] = target
    return ex

  def __getitems__(self, idx):
    return [self[i] for i in idx]


def read_index(source):
  """(ligands [N] chembl.Ligand, row [N] int) of a stored source, sorted by
  target (chembl.TARGETS order) and CSV row, whatever order TFDS stored
  them in."""
  ligs, rows = [], []
  for r in range(len(source)):
    rec = source[r]
    ligs.append(chembl.Ligand(_text(rec["id"]), _text(rec["target"]),
                              _text(rec["smiles"]), float(rec["label"]),
                              _text(rec["moleculeace_split"])))
    rows.append(r)
  order = list(chembl.TARGETS)
  key = [(order.index(l.target), int(l.id.rsplit("-", 1)[1])) for l in ligs]
  perm = sorted(range(len(ligs)), key=key.__getitem__)
  return [ligs[p] for p in perm], np.asarray(rows)[perm]


def load_binding(dcfg, data_dir):
  """Builds (first time) and loads `binding/<dataset.variant>`; splits at
  load time by chembl.split_ligands."""
  from mmjax.data.affinity import binding  # pylint: disable=g-import-not-at-top
  variant = dcfg.get("variant", "thrombin") or "thrombin"
  limit = int(dcfg.get("limit", 0) or 0)
  if limit:
    data_dir = os.path.join(data_dir, f"binding_limit{limit}")
  builder = binding.build(variant, data_dir, limit=limit or None)
  source = builder.as_data_source()[binding.SPLIT]
  limit = int(builder.info.metadata.get("limit", 0) or 0)
  if limit:
    logging.warning("binding/%s in %s holds only the first %d ligands per "
                    "target (a subset build)", variant, data_dir, limit)
  ligs, rows = read_index(source)
  grid = dict(DEFAULT_GRID)
  grid.update(dict(dcfg.get("grid", None) or {}))
  unknown = set(grid) - set(DEFAULT_GRID)
  if unknown:
    raise ValueError(f"dataset.grid: unknown key '{sorted(unknown)[0]}' "
                     "(known: box, resolution)")
  box, res = float(grid["box"]), float(grid["resolution"])
  parts = chembl.split_ligands(ligs, dcfg.get("split", "scaffold"),
                               dcfg.split_seed)
  ids = np.asarray([l.id for l in ligs])
  targets = np.asarray([l.target for l in ligs])
  labels = np.asarray([l.pk for l in ligs], np.float32)
  sources = {
      s: BindingSource(source, rows[idx], ids[idx], targets[idx],
                       labels[idx], box, res,
                       dcfg.get("zero_protein", False))
      for s, idx in zip(splits_lib.SPLITS, parts)}
  modalities = tuple(dcfg.get("modalities", None) or MODALITIES)
  return Dataset(sources, affinity_spec(box, res, modalities,
                                        by_target=variant == "multi_target"))
