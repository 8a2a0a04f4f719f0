"""Progressive data scaling: nested levels, per-member subset masks, and the
driver's two modes (configs/cardiac.py:smoke)."""

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import cardiac
from mmjax.data.cardiac import registered
from mmjax.data.cardiac import trajectories
from mmjax.drivers import progressive
from mmjax.errors import UserError
from mmjax.models.mlp import BatchNorm
from mmjax.tasks.classification import ClassificationTask
from mmjax.training import steps


def test_scale_levels_nest():
  # Protocol: rank within the fate in draw order; spatial: the draw index.
  labels = np.array([0, 1, 0, 0, 1, 2, 0])
  kinds = np.array(["protocol"] * 5 + ["spatial"] * 2)
  index = np.array([0, 1, 2, 3, 4, 0, 5])
  scales = {1: (1, 1), 2: (2, 3), 3: (3, 6)}
  got = trajectories.scale_levels(labels, kinds, index, scales)
  np.testing.assert_array_equal(got, [1, 1, 2, 3, 2, 1, 3])
  assert trajectories.reduced_scales(12, 6) == {1: (6, 3), 2: (9, 4),
                                                3: (12, 6)}


class _Tiny(nn.Module):

  @nn.compact
  def __call__(self, batch, *, train, mixup=None, rows=None):
    del mixup
    h = nn.Dense(8)(batch["x"])
    h = BatchNorm()(h, train=train, rows=rows)
    return {"logits": nn.Dense(3)(nn.relu(h)), "features": h}


def _step_after(batch, member):
  model, tx = _Tiny(), optax.sgd(0.1)
  task = ClassificationTask(ml_collections.ConfigDict(
      dict(terms=dict(cross_entropy=1.0))), 3)
  state = steps.create_state(model, tx, batch, 0)
  step = steps.make_member_step(model, tx, lambda s: 0.1, task,
                                ml_collections.ConfigDict())
  return step(state, batch, member)[0]


def test_a_subset_member_learns_only_from_its_rows():
  rng = np.random.default_rng(0)
  levels = np.array([1, 2, 1, 3, 1, 2, 3, 1], np.int32)
  batch = {"x": jnp.asarray(rng.normal(size=(8, 5)), jnp.float32),
           "label": jnp.asarray(rng.integers(0, 3, 8), jnp.int32),
           "sample_mask": jnp.ones((8,), jnp.float32),
           "subset": jnp.asarray(levels)}
  member = dict(steps.single_member(0), subset=jnp.asarray(1, jnp.int32))
  got = _step_after(batch, member)
  # The same rows held out as a k-fold fold: the same loss and BatchNorm
  # statistics, so the same update.
  as_fold = {k: v for k, v in batch.items() if k != "subset"}
  as_fold["fold"] = jnp.asarray((levels > 1).astype(np.int32))
  want = _step_after(as_fold, dict(steps.single_member(0),
                                   fold=jnp.asarray(1, jnp.int32)))
  for a, b in zip(jax.tree.leaves((got.params, got.batch_stats)),
                  jax.tree.leaves((want.params, want.batch_stats))):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
  # Rows above the member's level change nothing.
  moved = dict(batch, x=batch["x"].at[levels > 1].add(5.0))
  again = _step_after(moved, member)
  for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(again.params)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _smoke(tmp_path, mode):
  config = cardiac.get_config(f"smoke,{mode}")
  config.dataset.data_dir = str(tmp_path / "data")
  return config


def test_train_scale_keeps_nested_training_rows(tmp_path):
  data = str(tmp_path / "data")
  rows = {}
  for s in (1, 2, 3):
    ds = registered.load_cardiac(
        {"scale": 3, "size": 12, "train_scale": s}, data)
    rows[s] = set(ds.sources["train"].ids)
    assert set(ds.sources["train"].levels) <= set(range(1, s + 1))
    assert len(ds.sources["val"]) == len(
        registered.load_cardiac({"scale": 3, "size": 12}, data
                                ).sources["val"])
  assert rows[1] < rows[2] < rows[3]
  with pytest.raises(ValueError, match="dataset.train_scale: 4"):
    registered.load_cardiac({"scale": 3, "size": 12, "train_scale": 4}, data)


@pytest.mark.parametrize("mode", progressive.MODES)
def test_driver_trains_every_scale_and_chooses_by_validation(tmp_path, mode):
  config = _smoke(tmp_path, mode)
  workdir = str(tmp_path / mode)
  summary = progressive.run(config, workdir)
  assert summary["mode"] == mode and summary["scales"] == [1, 2, 3]
  rows = summary["rows"]
  assert sorted(rows) == ["1", "2", "3"]
  for r in rows.values():
    assert len(r["test"]["accuracy"]["values"]) == 3  # 3 seeds
    assert 0.0 <= r["val"]["accuracy"]["mean"] <= 1.0
    assert "protocol" in r["test_groups"]["kind"]  # from predictions.npz
  val = {int(s): r["val"]["accuracy"]["mean"] for s, r in rows.items()}
  assert val[summary["chosen_scale"]] == max(val.values())
  with open(os.path.join(workdir, "progressive.json")) as f:
    assert json.load(f)["chosen_scale"] == summary["chosen_scale"]
  assert "(chosen)" in open(os.path.join(workdir, "progressive.md")).read()
  runs = ["scale1", "scale2", "scale3"] if mode == "in_turn" else ["scales"]
  for run in runs:
    with open(os.path.join(workdir, run, "results.json")) as f:
      res = json.load(f)
    want = [0] * 3 if mode == "in_turn" else [1, 2, 3] * 3
    assert [m["subset"] for m in res["members"]] == want


def test_the_seeds_and_inits_agree_across_modes():
  config = cardiac.get_config("smoke")
  v = progressive.vmapped_config(config)
  s = progressive.scale_config(config, 2)
  assert v.members.subset == (1, 2, 3) and v.members.seeds == (0, 0, 0)
  assert s.dataset.train_scale == 2 and s.members.seeds == (0,)
  assert v.members.replicates == s.members.replicates == 3
  config.progressive.mode = "sideways"
  with pytest.raises(UserError, match="progressive.mode: unknown 'sideways'"):
    progressive.run(config, "unused")
