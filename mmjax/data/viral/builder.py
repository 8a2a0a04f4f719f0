"""TFDS builder `viral`: viral genome windows labelled by exact coding rules
(reference recipe 003), and viral vs bacterial fragments.

Configs (examples.py says how each example is made):
  viral_viability    (default) 300-bp windows of the 6 annotated viral
                     groups: coding-intact (label 0) vs loss-of-function of
                     an essential gene or dinucleotide-shuffled (label 1);
                     4,200 per group, 25,200 in all.
  viral_vs_cellular  300/500/1,000/3,000-bp fragments of 12 viral groups
                     (label 1) and 6 bacterial replicons (label 0), at most
                     600 per group and length.
Stored in one split 'examples' (array_record, no TensorFlow needed), one
record per example:

  id        str    unique
  sequence  str    ACGTN, 5' -> 3'
  label     int32
  kind      str    intact | lof_stop | lof_frameshift | lof_start |
                   shuffle (viral_viability); viral | cellular
  group     str    genome group, the split unit
  genome    str    source record (genomes.Genome.name)
  table     int32  translation table of the source genome
  length    int32  len(sequence)
  detail    str    the edits and their effect per CDS, or the source window

Splits are made at load time (registered.py), by group.
"""

import dataclasses
import time

import numpy as np
import tensorflow_datasets as tfds

from mmjax.data import tfds_build
from mmjax.data.viral import examples as examples_lib

# The one stored split ('all' is reserved by TFDS).
SPLIT = "examples"


@dataclasses.dataclass
class ViralConfig(tfds.core.BuilderConfig):
  """The examples.make variant and its seed."""
  variant: str = "viral_viability"
  seed: int = 0


class Viral(tfds.core.GeneratorBasedBuilder):
  """Viral genome windows and fragments from vendored public records.

  `size` (constructor keyword, default 0 = the config's default) sets
  examples.make's per_group (viral_viability) or per_genome
  (viral_vs_cellular): for tests, in a data_dir of their own, since the
  prepared data is stored under the config's name either way.
  """

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "12 viral groups and 6 bacterial replicons "
                            "from PyPI / Debian packages; exact "
                            "coding-integrity labels.",
                   "1.1.0": "viral_viability: 4,200 windows per group "
                            "(25,200 in all; 700 before), so that a model "
                            "sees each training genome under many more "
                            "independent mutations."}
  BUILDER_CONFIGS = [
      ViralConfig(name="viral_viability", variant="viral_viability",
                  description="300-bp windows of 6 annotated viral groups: "
                              "coding-intact vs loss-of-function or "
                              "dinucleotide-shuffled."),
      ViralConfig(name="viral_vs_cellular", variant="viral_vs_cellular",
                  description="300-3,000 bp fragments of 12 viral groups vs "
                              "6 bacterial replicons."),
  ]
  DEFAULT_CONFIG_NAME = "viral_viability"

  def __init__(self, *, size=0, **kwargs):
    self.size = int(size or 0)
    super().__init__(**kwargs)

  def _info(self):
    text, scalar = tfds.features.Text, tfds.features.Scalar
    features = tfds.features.FeaturesDict({
        "id": text(), "sequence": text(),
        "label": scalar(dtype=np.int32), "kind": text(), "group": text(),
        "genome": text(), "table": scalar(dtype=np.int32),
        "length": scalar(dtype=np.int32), "detail": text(),
    })
    # DatasetInfo directly: dataset_info_from_configs() looks for metadata
    # files next to this module, which a builder defined in a package lacks.
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__, features=features,
        supervised_keys=None,
        metadata=tfds.core.MetadataDict(size=self.size),
        citation="Public INSDC/RefSeq records as shipped by bacphlip 0.9.6, "
                 "Biopython 1.88, gb2seq 0.3.6, pyrodigal-gv 0.3.2, "
                 "pyrodigal 3.7.1, PhiSpy 5.0.10 and Debian bookworm "
                 "(bowtie-examples, r-cran-seqinr); vendor/MANIFEST.json.")

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the inputs are vendored.
    return {SPLIT: self._generate_examples()}

  def _generate_examples(self):
    cfg = self.builder_config
    options = {}
    if self.size:
      key = ("per_group" if cfg.variant == "viral_viability"
             else "per_genome")
      options[key] = self.size
    t0 = time.time()
    examples = examples_lib.make(cfg.variant, cfg.seed, **options)
    print(f"viral/{cfg.name}: {len(examples)} examples made in "
          f"{time.time() - t0:.1f} s")
    for e in examples:
      yield e["id"], {k: e[k] for k in ("id", "sequence", "label", "kind",
                                        "group", "genome", "table",
                                        "length", "detail")}


def build(config_name, data_dir, size=None):
  """Builds `viral/<config_name>` in data_dir if absent; returns the
  builder.

  Args:
    config_name: 'viral_viability' or 'viral_vs_cellular'.
    data_dir: TFDS data directory.
    size: per_group / per_genome of examples.make (tests); the result is
      stored under the config's name, so give it its own data_dir.
  """
  return tfds_build.prepare(Viral, config_name, data_dir, "dataset.variant",
                            size=size or 0)
