"""The affinity recipe (reference recipe 002) end to end on a subset of the
binding dataset, and the training pieces it added: members as an unrolled
loop, outputs standardised by the training targets."""

import json

import jax
import numpy as np
import pytest

from configs import affinity
from configs import toy_sequence
from mmjax.models.multimodal import build_model
from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib


def _run(config, path):
  workdir = workdir_lib.prepare_workdir(str(path))
  workdir_lib.write_or_check_config(config, workdir)
  return trainer_lib.Trainer(config, workdir).run(), workdir


def test_affinity_smoke_trains_end_to_end(tmp_path):
  """The hybrid (both modalities, both kinds of encoder, fusion) on a
  48-ligand build of thrombin."""
  config = affinity.get_config("hybrid,smoke")
  config.member_loop = "unroll"
  results, workdir = _run(config, tmp_path)
  assert results["task"] == "regression"
  for key in ("r2", "pearson", "spearman", "mae", "rmse"):
    assert np.isfinite(results["test"][key]), key
  # Standardised outputs start at the pKi mean: no epoch spent learning a
  # bias of ~7 pK, so even 3 tiny epochs are within 2.5 pK.
  assert results["test"]["mae"] < 2.5
  saved = json.load(open(f"{workdir}/config.json"))
  assert saved["dataset"]["name"] == "binding"


def test_affinity_options_are_checked():
  with pytest.raises(ValueError, match="unknown option 'hybird'"):
    affinity.get_config("hybird")
  with pytest.raises(ValueError, match="choose one model"):
    affinity.get_config("hybrid,residual")
  c = affinity.get_config("hybrid,cpu")
  assert c.model.modalities == ("complex", "ligand")
  assert c.dataset.modalities == ("complex", "ligand")
  assert affinity.get_config("").dataset.grid.resolution == 1.0


def test_unrolled_members_equal_vmapped_members(tmp_path):
  """member_loop='unroll' computes each member's step as vmap does: the same
  losses and gradient norms to float precision. (Parameters after an Adam
  step may differ by up to ~lr where a gradient is ~0: Adam's first update
  is g / |g|, so float noise in a zero gradient picks its sign.)"""
  from mmjax.training import early_stopping  # pylint: disable=g-import-not-at-top
  out = {}
  for loop in ("vmap", "unroll"):
    config = toy_sequence.get_config("regression")
    config.member_loop = loop
    tr = trainer_lib.Trainer(config, workdir_lib.prepare_workdir(
        str(tmp_path / loop)))
    tr.stoppers = early_stopping.for_members(config.early_stopping, tr.k)
    state = tr.init_state
    before = jax.device_get(state.params)
    batch = next(iter(tr._train_batches(0)))  # pylint: disable=protected-access
    state, metrics = tr.train_step(state, tr.resident, batch,
                                   tr._member_table())  # pylint: disable=protected-access
    out[loop] = (before, jax.device_get(state.params),
                 jax.device_get(metrics), config.learning_rate)
  for a, b in zip(jax.tree.leaves(out["vmap"][0]),
                  jax.tree.leaves(out["unroll"][0])):
    np.testing.assert_array_equal(a, b)
  for key in ("objective", "grad_norm", "mae"):
    np.testing.assert_allclose(out["unroll"][2][key], out["vmap"][2][key],
                               rtol=1e-5)
  lr = out["vmap"][3]
  for a, b in zip(jax.tree.leaves(out["vmap"][1]),
                  jax.tree.leaves(out["unroll"][1])):
    assert np.abs(a - b).max() <= 2.5 * lr


def test_member_loop_is_checked(tmp_path):
  config = toy_sequence.get_config("regression")
  config.member_loop = "pmap"
  with pytest.raises(Exception, match="member_loop: unknown 'pmap'"):
    trainer_lib.Trainer(config, str(tmp_path))


def test_standardized_outputs_start_at_the_targets_mean():
  config = toy_sequence.get_config("regression")
  config.model.standardize_outputs = True
  targets = np.array([6.0, 7.0, 8.0, 9.0], np.float32)
  model = build_model(config.model, targets=targets)
  assert model.output_offset == pytest.approx(7.5)
  assert model.output_scale == pytest.approx(np.std(targets))
  batch = {"signal": np.zeros((4, 24, 4), np.float32),
           "signal_mask": np.ones((4, 24), np.float32),
           "modality_mask": np.ones((4, 1), np.float32)}
  variables = model.init(jax.random.key(0), batch, train=False)
  out = model.apply(variables, batch, train=False)["logits"]
  assert np.all(np.abs(np.asarray(out) - 7.5) < 3 * np.std(targets))
  # Without targets (the early config check) nothing is shifted.
  assert build_model(config.model).output_offset == 0.0
