"""TFDS builder `binding`: measured ChEMBL Ki values of ligands with a
modelled pose in their target's pocket (reference recipe 002).

Configs: `thrombin` (F2, CHEMBL204_Ki, 2,754 ligands; the default) and
`multi_target` (the 7 targets of chembl.TARGETS, 12,687 ligands, one pocket
per target). The labels are real (pKi); the poses are MODELLED (poses.py:
one ETKDGv3 conformer placed rigidly by a contact score), recorded as
pose='modelled'. Stored compactly, one example per ligand, in one split
'ligands' (array_record, no TensorFlow needed):

  id                 str      '<target>-<CSV row>'
  target             str      DOCKSTRING target (F2, ...)
  smiles, scaffold   str      the SMILES and its Bemis-Murcko scaffold
  moleculeace_split  str      'train' or 'test'
  label              float32  pKi = -log10(Ki / M)
  ligand_coords      float32 [n, 3]  posed heavy atoms (Å, receptor frame)
  ligand_channels    float32 [n, 9]  ligands.LIGAND_CHANNELS
  ligand_nodes       float32 [n, len(ligands.ATOM_FEATURES)]
  ligand_edges       float32 [e, len(ligands.BOND_FEATURES)]
  ligand_senders, ligand_receivers  int32 [e]  both directions per bond
  pose               str      'modelled'
  pose_score         float32  poses.py's score of the pose (lower = better)

Voxel grids are made at load time (registered.py), so one build serves any
box and resolution. Train/val/test splits are made at load time too
(chembl.split_ligands).
"""

import dataclasses
import multiprocessing
import os
import time

import numpy as np
import tensorflow_datasets as tfds

from mmjax.data import tfds_build
from mmjax.data.affinity import chembl
from mmjax.data.affinity import ligands as ligands_lib
from mmjax.data.affinity import pocket as pocket_lib
from mmjax.data.affinity import poses

# The one stored split ('all' is reserved by TFDS).
SPLIT = "ligands"
# Ligands featurised per worker task; small enough to balance two workers.
CHUNK = 16
# Below this many ligands the worker pool's start-up costs more than it
# saves.
MIN_POOL_LIGANDS = 64


@dataclasses.dataclass
class BindingConfig(tfds.core.BuilderConfig):
  """Targets and settings of one configuration.

  seed fixes the conformers (ETKDG randomSeed) and the pose search;
  processes = 0 uses one worker per core this process may use (the data
  does not depend on it).
  """
  targets: tuple = ("F2",)
  seed: int = 0
  cube: float = 24.0     # poses keep every atom inside this cube (Å)
  processes: int = 0


def _featurize(args):
  smiles, where, seed = args
  try:
    return ligands_lib.featurize(smiles, where, seed)
  except ValueError as e:
    return str(e)


def featurize_all(ligand_list, seed, processes):
  """ligands.featurize of every ligand (a str error message where it
  failed), in order, with a spawned worker pool when worth it (spawn, not
  fork: the caller may have started JAX's threads)."""
  args = [(l.smiles, l.id, seed) for l in ligand_list]
  if processes <= 1 or len(args) < MIN_POOL_LIGANDS:
    return [_featurize(a) for a in args]
  with multiprocessing.get_context("spawn").Pool(processes) as pool:
    return list(pool.imap(_featurize, args, chunksize=CHUNK))


def auto_processes():
  try:
    n = len(os.sched_getaffinity(0))
  except AttributeError:  # Not on Linux.
    n = os.cpu_count() or 1
  return max(1, n)


class Binding(tfds.core.GeneratorBasedBuilder):
  """ChEMBL Ki values with modelled poses in DOCKSTRING pockets.

  `limit` (constructor keyword, default 0 = all) keeps only the first
  `limit` ligands of each target: for tests, in a data_dir of their own,
  since the prepared data is stored under the config's name either way.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "MoleculeACE 3.0.0 Ki sets, DOCKSTRING 0.3.4 "
                            "pockets, modelled rigid poses."}
  BUILDER_CONFIGS = [
      BindingConfig(name="thrombin", targets=("F2",),
                    description="Thrombin (F2): CHEMBL204_Ki, 2,754 "
                                "ligands."),
      BindingConfig(name="multi_target", targets=tuple(chembl.TARGETS),
                    description="7 targets (F2, F10, ABL1, AR, NR3C1, DRD3, "
                                "JAK2), 12,687 ligands."),
  ]
  DEFAULT_CONFIG_NAME = "thrombin"

  def __init__(self, *, limit=0, **kwargs):
    self.limit = int(limit or 0)
    super().__init__(**kwargs)

  def _info(self):
    t = tfds.features.Tensor
    nf, ef = len(ligands_lib.ATOM_FEATURES), len(ligands_lib.BOND_FEATURES)
    features = tfds.features.FeaturesDict({
        "id": tfds.features.Text(),
        "target": tfds.features.Text(),
        "smiles": tfds.features.Text(),
        "scaffold": tfds.features.Text(),
        "moleculeace_split": tfds.features.Text(),
        "label": tfds.features.Scalar(dtype=np.float32),
        "ligand_coords": t(shape=(None, 3), dtype=np.float32),
        "ligand_channels": t(shape=(None, len(ligands_lib.LIGAND_CHANNELS)),
                             dtype=np.float32),
        "ligand_nodes": t(shape=(None, nf), dtype=np.float32),
        "ligand_edges": t(shape=(None, ef), dtype=np.float32),
        "ligand_senders": t(shape=(None,), dtype=np.int32),
        "ligand_receivers": t(shape=(None,), dtype=np.int32),
        "pose": tfds.features.Text(),
        "pose_score": tfds.features.Scalar(dtype=np.float32),
    })
    # DatasetInfo directly: dataset_info_from_configs() looks for metadata
    # files next to this module, which a builder defined in a package lacks.
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__, features=features,
        supervised_keys=None,
        metadata=tfds.core.MetadataDict(limit=self.limit),
        homepage="https://github.com/molML/MoleculeACE",
        citation="ChEMBL (CC BY-SA 3.0) via MoleculeACE 3.0.0; receptors "
                 "from DOCKSTRING 0.3.4.")

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the inputs are vendored.
    return {SPLIT: self._generate_examples()}

  def _generate_examples(self):
    cfg = self.builder_config
    processes = cfg.processes or auto_processes()
    for t_index, target in enumerate(cfg.targets):
      t0 = time.time()
      ligs = chembl.read_ligands(target)
      if self.limit:
        ligs = ligs[:self.limit]
      feats = featurize_all(ligs, cfg.seed, processes)
      t1 = time.time()
      failed = [f for f in feats if isinstance(f, str)]
      for message in failed:
        print(f"binding/{cfg.name}: skipped {message}")
      keep = [i for i, f in enumerate(feats) if not isinstance(f, str)]
      pocket = pocket_lib.load_target(target)
      grid = poses.score_grid(pocket)
      # The pose search's key: target and CSV row, not the batch.
      placed = poses.place_ligands(
          grid, [feats[i]["conformer"] for i in keep],
          [t_index * 1_000_000 + i for i in keep], cube=cfg.cube,
          seed=cfg.seed)
      print(f"binding/{cfg.name}: {target}: {len(keep)} ligands "
            f"({len(failed)} skipped), featurised in {t1 - t0:.1f} s with "
            f"{processes} processes, posed in {time.time() - t1:.1f} s")
      for i, (coords, score) in zip(keep, placed):
        lig, f = ligs[i], feats[i]
        yield lig.id, {
            "id": lig.id, "target": target, "smiles": lig.smiles,
            "scaffold": chembl.scaffold(lig.smiles),
            "moleculeace_split": lig.moleculeace_split,
            "label": np.float32(lig.pk),
            "ligand_coords": coords, "ligand_channels": f["channels"],
            "ligand_nodes": f["nodes"], "ligand_edges": f["edges"],
            "ligand_senders": f["senders"],
            "ligand_receivers": f["receivers"],
            "pose": "modelled", "pose_score": np.float32(score),
        }


def build(config_name, data_dir, limit=None):
  """Builds `binding/<config_name>` in data_dir if absent; returns the
  builder.

  Args:
    config_name: 'thrombin' or 'multi_target'.
    data_dir: TFDS data directory.
    limit: keep only the first `limit` ligands per target (tests); the
      result is stored under the config's name, so give it its own
      data_dir.
  """
  return tfds_build.prepare(Binding, config_name, data_dir,
                            "dataset.variant", limit=limit or 0)
