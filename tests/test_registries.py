"""Encoders, modality kinds and datasets are found by name: a new encoder
is a registered function, nothing else changes; a mismatch between an
encoder and its modality's kind is a one-line error."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import toy_sequence
from mmjax.data import datasets
from mmjax.data import modalities
from mmjax.models import encoders
from mmjax.models.multimodal import build_model


def test_a_new_encoder_is_one_registration():
  @encoders.register_encoder("mean_pool_test", kind="sequence",
                             mixup="embedding", noise="input")
  def mean_pool(spec, dtype, name):
    del spec, dtype, name
    return lambda batch, m, train, rows: (
        (batch[m] * batch[f"{m}_mask"][..., None]).sum(1) /
        batch[f"{m}_mask"].sum(1, keepdims=True))

  try:
    c = toy_sequence.get_config("classification")
    c.model.encoders.signal = ml_collections.ConfigDict({"type":
                                                         "mean_pool_test"})
    ds = datasets.load_dataset(c.dataset)
    model = build_model(c.model, ds.spec)
    from mmjax.data import pipeline  # pylint: disable=g-import-not-at-top
    split = pipeline.PaddedSplit(ds.sources["val"], ds.spec,
                                 c.dataset.budgets.to_dict())
    batch = split.take(np.arange(8))
    variables = model.init(jax.random.key(0), batch, train=False)
    out = model.apply(variables, batch, train=False)
    assert out["logits"].shape == (8, 2)
  finally:
    del encoders.ENCODERS["mean_pool_test"]


def test_encoder_of_the_wrong_kind_is_rejected():
  c = toy_sequence.get_config("classification")
  c.model.encoders.signal = ml_collections.ConfigDict(
      dict(type="gcn", widths=(8,)))
  spec = datasets.load_dataset(c.dataset).spec
  with pytest.raises(ValueError, match="model.encoders.signal.type: 'gcn' "
                     "reads graph modalities, the dataset's signal is a "
                     "sequence"):
    build_model(c.model, spec)


def test_unknown_names_list_the_known_ones():
  c = toy_sequence.get_config("classification")
  c.model.encoders.signal.type = "lstm"
  with pytest.raises(ValueError, match="unknown encoder 'lstm' .known: .*"
                     "transformer"):
    build_model(c.model)
  c.dataset.name = "imagenet"
  with pytest.raises(Exception, match="unknown dataset 'imagenet' .known: "
                     "materials_tb"):
    datasets.load_dataset(c.dataset)


def test_kinds_pad_to_their_declared_shapes():
  seq = modalities.Modality("sequence", (6, 2))
  out = modalities.kind_of(seq).pad({"s": np.ones((4, 2))}, "s", seq, None,
                                    "example 7")
  assert out["s"].shape == (6, 2) and out["s_mask"].tolist() == [1] * 4 + [0] * 2
  with pytest.raises(ValueError, match="example 7: s has 9 steps, outside "
                     r"\[1, 6\]"):
    modalities.kind_of(seq).pad({"s": np.ones((9, 2))}, "s", seq, None,
                                "example 7")
  grid = modalities.Modality("grid", (4, 4, 4, 3))
  assert modalities.kind_of(grid).pad(
      {"g": np.zeros((4, 4, 4, 3))}, "g", grid, None, "x")["g"].shape == (
          4, 4, 4, 3)
  with pytest.raises(ValueError, match="x: g has shape"):
    modalities.kind_of(grid).pad({"g": np.zeros((4, 4, 3))}, "g", grid,
                                 None, "x")
