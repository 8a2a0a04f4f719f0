"""mmjax's `topology` recipe end to end: `configs/topology.py:smoke` trains
the plaquette encoder on materials_tb's k-space modality alone through the
trainer; the default and the ablation options are checked."""

import numpy as np
import pytest

from configs import topology
from mmjax.data import datasets
from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib


def test_smoke_run_trains_on_kspace_alone(tmp_path):
  config = topology.get_config("smoke")
  workdir = workdir_lib.prepare_workdir(str(tmp_path / "run"))
  workdir_lib.write_or_check_config(config, workdir)
  trainer = trainer_lib.Trainer(config, workdir)
  assert tuple(trainer.spec.modalities) == ("kspace",)
  batch = trainer.train.take(np.arange(4))
  assert batch["kspace_nodes"].shape == (4, 64, 64)
  assert batch["modality_mask"].shape == (4, 1)
  assert not any(k.startswith(("crystal", "scalar", "decomp"))
                 for k in batch)
  results = trainer.run()
  assert results["epochs_run"] == 3
  for key in ("accuracy", "roc_auc"):
    assert 0.0 <= results["test"][key] <= 1.0, key
  assert np.isfinite(results["test"]["loss"])


def test_materials_modalities_are_checked():
  config = topology.get_config("smoke")
  config.dataset.modalities = ("kspace", "phonons")
  with pytest.raises(ValueError, match="unknown modality 'phonons'"):
    datasets.load_dataset(config.dataset)


def test_default_and_options():
  c = topology.get_config()
  assert c.dataset.name == "materials_tb" and c.dataset.variant == "default"
  assert tuple(c.dataset.modalities) == tuple(c.model.modalities) == (
      "kspace",)
  enc = c.model.encoders.kspace
  assert (enc.type, enc.inputs, enc.neighbourhood, enc.pooling) == (
      "plaquette", "invariants", "plaquette", "sum")
  assert c.model.fusion == "concat"
  assert dict(c.loss.terms) == {"cross_entropy": 1.0}
  assert c.members.replicates == 3
  assert (c.early_stopping.metric, c.early_stopping.mode) == ("loss", "min")
  assert c.num_epochs == 10
  want = {"node": ("coordinates", "node", "sum"),
          "coordinates": ("coordinates", "plaquette", "sum"),
          "max": ("invariants", "plaquette", "max"),
          "mean": ("invariants", "plaquette", "mean")}
  for opt, (inputs, hood, pooling) in want.items():
    e = topology.get_config(opt).model.encoders.kspace
    assert (e.inputs, e.neighbourhood, e.pooling) == (inputs, hood,
                                                      pooling), opt
    # An ablation changes only the encoder.
    other = topology.get_config(opt)
    other.model.encoders.kspace = c.model.encoders.kspace
    assert other.to_dict() == c.to_dict(), opt
  both = topology.get_config("smoke,coordinates,max").model.encoders.kspace
  assert (both.inputs, both.pooling) == ("coordinates", "max")


@pytest.mark.parametrize("arg,match", [
    ("nope", "unknown option 'nope'"),
    ("max,mean", "choose one pooling of max, mean"),
])
def test_bad_options_name_the_problem(arg, match):
  with pytest.raises(ValueError, match=match):
    topology.get_config(arg)
