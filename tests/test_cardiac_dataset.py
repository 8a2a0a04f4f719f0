"""The `cardiac` TFDS builder and registered dataset on a tiny build: the
stored records are trajectories.make's (ids, labels, arrays) with
natural_counts in the metadata, the load-time splits are
trajectories.split's (stratified by kind and fate), genes_only drops the
signal columns, and bad dataset keys name key and value."""

import os

import ml_collections
import numpy as np
import pytest

from mmjax.data import pipeline
from mmjax.data.cardiac import builder as builder_lib
from mmjax.data.cardiac import network
from mmjax.data.cardiac import registered
from mmjax.data.cardiac import trajectories
from mmjax.data.datasets import load_dataset

SIZE = 6  # per_type 6, spatial 3: 39 examples, one build for the module


@pytest.fixture(scope="module")
def cardiac_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("cardiac"))


@pytest.fixture(scope="module")
def made():
  return trajectories.make(1, 0, per_type=SIZE, spatial=SIZE // 2)


def _size_dir(cardiac_dir):
  """Where load_cardiac keeps a size-SIZE build (the loads reuse it)."""
  return os.path.join(cardiac_dir, f"cardiac_size{SIZE}")


@pytest.fixture(scope="module")
def built(cardiac_dir):
  return builder_lib.build("scale1", _size_dir(cardiac_dir), size=SIZE)


def _dcfg(cardiac_dir, **kw):
  cfg = dict(name="cardiac", scale=1, split_seed=0, size=SIZE,
             data_dir=cardiac_dir)
  cfg.update(kw)
  return ml_collections.ConfigDict(cfg)


def _text(v):
  return v.decode() if isinstance(v, bytes) else str(v)


def test_builder_stores_make_exactly(built, made, cardiac_dir):
  source = built.as_data_source()[builder_lib.SPLIT]
  recs = sorted((source[i] for i in range(len(source))),
                key=lambda r: _text(r["id"]))
  assert [_text(r["id"]) for r in recs] == made["id"].tolist()
  assert [_text(r["kind"]) for r in recs] == made["kind"].tolist()
  for key in ("x", "label", "position", "index", "last_state",
              "signal_state"):
    assert built.info.features[key].np_dtype == made[key].dtype, key
    got = np.stack([np.asarray(r[key], made[key].dtype) for r in recs])
    np.testing.assert_array_equal(got, made[key], err_msg=key)
  # The metadata is written with the records: a fresh builder reads it.
  again = builder_lib.Cardiac(config="scale1",
                              data_dir=_size_dir(cardiac_dir),
                              file_format="array_record")
  meta = again.info.metadata
  assert meta["natural_counts"] == made["natural_counts"].tolist()
  assert meta["size"] == SIZE and meta["t_obs"] == 10.0
  assert meta["simulation"] == {
      k: list(v) if isinstance(v, tuple) else v
      for k, v in trajectories.simulation_options().items()}
  assert builder_lib.sizes(3) == (2000, 1000)
  with pytest.raises(ValueError, match="'scale4' is not a cardiac config"):
    builder_lib.build("scale4", cardiac_dir)


def test_load_splits_stratified_by_kind_and_fate(built, made, cardiac_dir):
  del built
  ds = load_dataset(_dcfg(cardiac_dir))
  spec = ds.spec
  assert spec.modalities["trajectory"].shape == (80, 15)
  assert spec.modalities["trajectory"].kind == "sequence"
  assert spec.modalities["position"].shape == (1,)
  assert spec.task == "classification" and spec.num_outputs == 6
  assert spec.class_names == network.FATES
  assert spec.metric_groups == (("kind", None),)
  want = trajectories.split(made["label"], 0, kind=made["kind"])
  assert sum(len(s) for s in ds.sources.values()) == len(made["id"])
  at = {i: n for n, i in enumerate(made["id"])}
  for name, src in ds.sources.items():
    assert src.ids.tolist() == made["id"][want[name]].tolist(), name
  # Every (kind, fate) stratum in proportion within one example.
  strata = made["label"] + 6 * (made["kind"] == "spatial")
  for s in np.unique(strata):
    n = (strata == s).sum()
    for name, frac in zip(("train", "val", "test"),
                          trajectories.FRACTIONS):
      got = np.isin(ds.sources[name].ids, made["id"][strata == s]).sum()
      assert abs(got - frac * n) <= 1, (s, name)
  src = ds.sources["val"]
  for i in range(len(src)):
    ex, j = src[i], at[src.ids[i]]
    np.testing.assert_array_equal(ex["trajectory"], made["x"][j])
    assert ex["trajectory"].dtype == np.float32
    assert ex["position"].shape == (1,)
    assert ex["position"][0] == made["position"][j]
    assert ex["label"] == made["label"][j] and ex["kind"] == made["kind"][j]
  split = pipeline.PaddedSplit(ds.sources["train"], spec, {})
  assert split.arrays["trajectory"].shape == (len(ds.sources["train"]), 80,
                                              15)
  assert split.arrays["trajectory_mask"].all()
  assert set(split.groups["kind"]) == {"protocol", "spatial"}
  limited = load_dataset(_dcfg(cardiac_dir, limit=4))
  assert all(len(s) <= 4 for s in limited.sources.values())
  assert set(limited.sources["train"].ids) <= set(ds.sources["train"].ids)


def test_genes_only_drops_the_signal_columns(built, made, cardiac_dir):
  del built
  ds = load_dataset(_dcfg(cardiac_dir, genes_only=True))
  assert ds.spec.modalities["trajectory"].shape == (80, 13)
  assert network.INPUT_INDICES == (0, 1)
  src = ds.sources["test"]
  ex = src[0]
  j = made["id"].tolist().index(src.ids[0])
  np.testing.assert_array_equal(ex["trajectory"], made["x"][j][:, 2:])
  np.testing.assert_array_equal(registered.GENE_COLUMNS, np.arange(2, 15))


@pytest.mark.parametrize("key,value,match", [
    ("scale", 4, "dataset.scale: 4 is not a scale"),
    ("scale", 3.0, r"dataset.scale: 3.0 is not a scale \(known: 1, 2, 3\)"),
    ("genes_only", "yes", "dataset.genes_only: 'yes' is not True or False"),
    ("size", -1, "dataset.size: -1 is not an integer"),
    ("limit", 2.5, "dataset.limit: 2.5 is not an integer"),
    ("split_seed", "a", "dataset.split_seed: 'a' is not an integer"),
])
def test_bad_keys_name_key_and_value(cardiac_dir, key, value, match):
  with pytest.raises(ValueError, match=match):
    load_dataset(_dcfg(cardiac_dir, **{key: value}))
