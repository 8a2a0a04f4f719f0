"""TFDS builder `cardiac`: early windows of noisy differentiation
trajectories of the Herrmann et al. (2012) cardiac GRN, labelled by the
fate (fixed point) each one settles in (reference recipe 004;
trajectories.py says how each example is made).

Configs (trajectories.SCALES, seed 0; the scales nest: a smaller scale's
examples are the first ones of a larger scale's, same ids and arrays):
  scale1   1,000 protocol trajectories per fate + 500 spatial (6,500)
  scale2   1,500 per fate + 750 spatial (9,750)
  scale3   (default) 2,000 per fate + 1,000 spatial (13,000)

Simulation (trajectories.DEFAULTS, dynamics.py; recorded in the build's
metadata): time in units of tau (a node's relaxation time); HillCube
dynamics (Hill n 4, k 0.5) with chemical-Langevin noise at system size
15, Euler-Maruyama steps of dt 0.125 tau; every trajectory starts at 0
(iPSC) with Wnt on and BMP off; inside the switching window t in (1, 12)
Wnt is withdrawn with hazard 0.12 / tau and BMP switched on with hazard
0.07 / tau, one-way (spatial examples: both hazards x 4^(p - 0.5) at a
position p ~ U[0, 1]); 352 noisy steps (t = 44) then 256 noise-free
settling steps under the final inputs; the label is the fixed point
reached. Batches of 512 trajectories per jitted call. What a model sees:
the window of the first 80 steps after the start, t in (0, 10] (t = dt ..
80 dt), all 15 nodes in network.NODES order (the 2 input signals in
columns 0, 1).

Stored in one split 'examples' (array_record, no TensorFlow needed), one
record per example, keyed by id (TFDS shuffles the stored order; sorting
by id gives trajectories.make's order back):

  id            str      '<kind>-<index:07d>', unique, stable across scales
  x             float32  [80, 15] expression and signals, NODES order
  label         int32    index into network.FATES
  position      float32  p in [0, 1]; 0.5 for protocol examples
  kind          str      protocol | spatial
  index         int64    draw index within the kind
  last_state    float32  [15] = x[-1], the state ceiling.committor continues
  signal_state  float32  [2] = x[-1, :2], (Wnt, BMP) at t_obs

Metadata (builder.info.metadata): natural_counts (int [7], fates 0..5 and
-1 of every protocol trajectory drawn: ceiling.weights' natural shares),
seed, window, t_obs (= 10.0 tau), the simulation options, and size.
Splits are made at load time (registered.py), stratified by (kind, label).
"""

import dataclasses
import time

import numpy as np
import tensorflow_datasets as tfds

from mmjax.data import tfds_build
from mmjax.data.cardiac import network
from mmjax.data.cardiac import trajectories

# The one stored split ('all' is reserved by TFDS).
SPLIT = "examples"
NUM_NODES = len(network.NODES)
FIELDS = ("id", "x", "label", "position", "kind", "index", "last_state",
          "signal_state")


@dataclasses.dataclass
class CardiacConfig(tfds.core.BuilderConfig):
  """The trajectories.make scale and its seed."""
  scale: int = 3
  seed: int = 0


def _config(scale):
  per_type, spatial = trajectories.SCALES[scale]
  return CardiacConfig(
      name=f"scale{scale}", scale=scale,
      description=f"{per_type:,} protocol trajectories per fate (class-"
                  f"balanced) + {spatial:,} spatial ones (natural labels): "
                  f"{len(network.FATES) * per_type + spatial:,} examples.")


def sizes(scale, size=0):
  """(per_type, spatial) of a build: the scale's, or `size` and size // 2
  for a reduced build (tests)."""
  return (int(size), int(size) // 2) if size else trajectories.SCALES[scale]


class Cardiac(tfds.core.GeneratorBasedBuilder):
  """Noisy cardiac GRN trajectories, labelled by the fate reached.

  `size` (constructor keyword, default 0 = the config's scale) sets
  trajectories.make's per_type, and spatial = size // 2: for tests, in a
  data_dir of their own, since the prepared data is stored under the
  config's name either way.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Three nested scales (6,500 / 9,750 / 13,000 "
                            "examples) of simulated trajectories, seed 0."}
  BUILDER_CONFIGS = [_config(s) for s in sorted(trajectories.SCALES)]
  DEFAULT_CONFIG_NAME = "scale3"

  def __init__(self, *, size=0, **kwargs):
    self.size = int(size or 0)
    super().__init__(**kwargs)

  def _info(self):
    text, scalar, tensor = (tfds.features.Text, tfds.features.Scalar,
                            tfds.features.Tensor)
    window = trajectories.WINDOW
    features = tfds.features.FeaturesDict({
        "id": text(),
        "x": tensor(shape=(window, NUM_NODES), dtype=np.float32),
        "label": scalar(dtype=np.int32),
        "position": scalar(dtype=np.float32),
        "kind": text(),
        "index": scalar(dtype=np.int64),
        "last_state": tensor(shape=(NUM_NODES,), dtype=np.float32),
        "signal_state": tensor(shape=(len(network.INPUTS),),
                               dtype=np.float32),
    })
    opts = trajectories.simulation_options()
    # natural_counts is filled in by _generate_examples, before TFDS
    # writes the metadata next to the records.
    metadata = tfds.core.MetadataDict(
        size=self.size, seed=self.builder_config.seed, window=window,
        t_obs=window * opts["dt"], batch=trajectories.BATCH,
        simulation={k: list(v) if isinstance(v, tuple) else v
                    for k, v in opts.items()},
        natural_counts=[])
    # DatasetInfo directly: dataset_info_from_configs() looks for metadata
    # files next to this module, which a builder defined in a package lacks.
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__, features=features,
        supervised_keys=None, metadata=metadata,
        citation="Herrmann F, Gross A, Zhou D, Kestler HA, Kuehl M (2012) "
                 "A Boolean model of the cardiac gene regulatory network "
                 "determining first and second heart field identity. PLoS "
                 "One 7(10):e46798; simulated (dynamics.py).")

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the examples are simulated.
    return {SPLIT: self._generate_examples()}

  def _generate_examples(self):
    cfg = self.builder_config
    per_type, spatial = sizes(cfg.scale, self.size)
    t0 = time.time()
    made = trajectories.make(cfg.scale, cfg.seed, per_type=per_type,
                             spatial=spatial)
    print(f"cardiac/{cfg.name}: {len(made['id'])} examples made in "
          f"{time.time() - t0:.1f} s")
    self.info.metadata["natural_counts"] = [
        int(c) for c in made["natural_counts"]]
    for i in range(len(made["id"])):
      yield str(made["id"][i]), {k: made[k][i] for k in FIELDS}


def build(config_name, data_dir, size=None):
  """Builds `cardiac/<config_name>` in data_dir if absent; returns the
  builder.

  Args:
    config_name: 'scale1', 'scale2' or 'scale3'.
    data_dir: TFDS data directory.
    size: per_type of trajectories.make, spatial size // 2 (tests); the
      result is stored under the config's name, so give it its own
      data_dir.
  """
  return tfds_build.prepare(Cardiac, config_name, data_dir, "cardiac",
                            size=size or 0)
