"""`toy_sequence`: variable-length sequences whose labels are exact
functions of the sequence itself, for tests and as the smallest example of
a registered dataset of the `sequence` kind.

Each example is x [t, F] with t uniform in [T/3, T]: channel 0 is a level d
~ N(0, 1) plus unit Gaussian noise per step, the other channels pure noise.
Labels are computed from x, so they are exact:
  regression      y = mean over the t steps of x[:, 0]
  classification  y = 1 if that mean > 0 else 0
Generated in memory from `dataset.split_seed`; 70/15/15 random splits.
Results also hold metrics per `length` ('short': t < 2T/3, else 'long').
"""

import numpy as np

from mmjax.data import splits
from mmjax.data.datasets import Dataset
from mmjax.data.datasets import DatasetSpec
from mmjax.data.modalities import Modality

MAX_LENGTH = 24
FEATURES = 4
VARIANTS = ("classification", "regression")


def generate(n, seed, task):
  """n examples {signal [t, F] float32, label, id} of `task`."""
  rng = np.random.default_rng([seed, 0x5E9])
  out = []
  for i in range(n):
    t = int(rng.integers(MAX_LENGTH // 3, MAX_LENGTH + 1))
    x = rng.normal(size=(t, FEATURES)).astype(np.float32)
    x[:, 0] += np.float32(rng.normal())
    level = float(x[:, 0].astype(np.float64).mean())
    label = (np.float32(level) if task == "regression"
             else np.int64(level > 0))
    out.append({"signal": x, "label": label, "id": f"toy-{i}",
                "length": "short" if 3 * t < 2 * MAX_LENGTH else "long"})
  return out


def load(dcfg, data_dir):
  del data_dir  # Generated in memory: nothing to cache.
  task = dcfg.get("variant", "classification")
  if task not in VARIANTS:
    raise ValueError(f"dataset.variant: '{task}' is not a toy_sequence "
                     f"variant (known: {', '.join(VARIANTS)})")
  examples = generate(dcfg.get("num_examples", 600), dcfg.split_seed, task)
  labels = np.asarray([e["label"] for e in examples])
  strata = (splits.quantile_strata(labels, 5) if task == "regression"
            else labels)
  parts = splits.stratified_split(strata, dcfg.split_seed)
  sources = {s: [examples[i] for i in idx]
             for s, idx in zip(splits.SPLITS, parts)}
  spec = DatasetSpec(
      modalities={"signal": Modality("sequence", (MAX_LENGTH, FEATURES))},
      task=task, num_outputs=2 if task == "classification" else 1,
      metric_groups=(("length", None),),
      class_names=("mean <= 0", "mean > 0") if task == "classification"
      else ())
  return Dataset(sources, spec)
