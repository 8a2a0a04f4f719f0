"""Members: ensembles and k-fold folds trained together by one vmapped step
give what training them one by one gives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.optimized import get_config
from mmjax.errors import UserError
from mmjax.training import checkpoint
from mmjax.training import members as members_lib
from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib
from mmjax.training.steps import mixup_partners


def _run(tmp_path, name, seeds, folds, alphas):
  config = get_config("smoke")
  config.members.seeds = seeds
  config.members.holdout_fold = folds
  config.members.mixup_alpha = alphas
  config.members.groups = {"all": tuple(range(len(seeds)))}
  workdir = str(tmp_path / name)
  workdir_lib.prepare_workdir(workdir)
  workdir_lib.write_or_check_config(config, workdir)
  results = trainer_lib.Trainer(config, workdir).run()
  params, _ = checkpoint.final_params(workdir)
  return results, params


def test_vmapped_kfold_equals_folds_one_by_one(tmp_path):
  seeds, folds, alphas = (0, 1), (0, 1), (0.2, 0.4)
  together, params = _run(tmp_path, "together", seeds, folds, alphas)
  for i in range(2):
    alone, p_alone = _run(tmp_path, f"fold{i}", (seeds[i],), (folds[i],),
                          (alphas[i],))
    member = jax.tree.map(lambda x, i=i: x[i], params)
    # Adam's early steps are ~lr * sign(g): where a gradient is ~0, float
    # noise between a batched and an unbatched matmul can flip the sign, so
    # weights agree to a few lr (2e-4), not to float precision. The losses
    # below, which depend on all weights together, agree much more closely.
    for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(p_alone)):
      np.testing.assert_allclose(a, b[0], atol=2e-3, rtol=0)
    got = together["members"][i]
    assert got["holdout_fold"] == folds[i]
    np.testing.assert_allclose(got["holdout"]["loss"],
                               alone["members"][0]["holdout"]["loss"],
                               atol=1e-4)
    np.testing.assert_allclose(got["test"]["loss"], alone["test"]["loss"],
                               atol=1e-4)


def test_fold_members_differ_from_each_other(tmp_path):
  _, params = _run(tmp_path, "two", (0, 0), (0, 1), (0.0, 0.0))
  leaf = jax.tree.leaves(params)[0]
  # Same seed, different held-out folds: different data, different weights.
  assert not np.allclose(leaf[0], leaf[1])


def test_mixup_partners_stay_inside_the_mask():
  for seed in range(20):
    rng = jax.random.key(seed)
    mask = jax.random.bernoulli(jax.random.fold_in(rng, 1), 0.6, (32,))
    mask = mask.astype(jnp.float32)
    perm = np.asarray(mixup_partners(rng, mask))
    m = np.asarray(mask) > 0
    assert m[perm[m]].all()  # allowed samples pair with allowed samples
    assert (perm[~m] == np.flatnonzero(~m)).all()  # the rest stay put
    if m.sum() > 1:
      assert (perm[m] != np.flatnonzero(m)).all()  # nobody mixes with itself


def test_members_config_errors():
  config = get_config("smoke")
  config.members.seeds = (0, 1)
  with pytest.raises(UserError, match="members.mixup_alpha"):
    members_lib.member_table(config)
  config.members.mixup_alpha = (0.0, 0.0)
  config.members.holdout_fold = (0, 7)
  with pytest.raises(UserError, match="holdout_fold"):
    members_lib.member_table(config)


def test_max_train_keeps_a_fixed_subset(tmp_path):
  config = get_config("smoke")
  config.dataset.max_train = 100
  workdir_lib.prepare_workdir(str(tmp_path))
  a = trainer_lib.Trainer(config, str(tmp_path))
  b = trainer_lib.Trainer(config, str(tmp_path))
  assert a.train.size == 100 and a.steps_per_epoch == 100 // config.batch_size
  assert all(len(v) == 100 for v in a.train.arrays.values())
  np.testing.assert_array_equal(a.train.arrays["crystal_nodes"],
                                b.train.arrays["crystal_nodes"])


def test_member_parallel_must_divide_members(tmp_path):
  config = get_config("smoke")
  config.member_parallel = 2
  with pytest.raises(UserError, match="member_parallel"):
    trainer_lib.Trainer(config, str(tmp_path))


def test_extreme_boost_smoke_reports_its_four_stages(tmp_path):
  """The reference recipe 001 run end to end: four stages, k-fold members
  scored on their held-out folds, TTA and plain scores side by side."""
  from conftest import run_launch  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  proc = run_launch(tmp_path, config="configs/extreme_boost.py:smoke",
                    timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  r = json.loads((tmp_path / "results.json").read_text())
  assert set(r["stages"]) == {"kfold", "ensemble", "full", "super_ensemble"}
  assert r["best_stage"] in r["stages"] and r["tta_passes"] == 2
  for stage in r["stages"].values():
    assert {"val", "test", "train", "val_no_tta", "test_no_tta"} <= set(stage)
  kfold = [m for m in r["members"] if m["holdout_fold"] >= 0]
  assert [m["holdout_fold"] for m in kfold] == [0, 1, 2, 3, 4]
  assert all(0 <= m["holdout"]["accuracy"] <= 1 for m in kfold)
  chosen = r["stages"][r["best_stage"]]
  assert r["train_val_gap"] == pytest.approx(
      chosen["train"]["accuracy"] - chosen["val_no_tta"]["accuracy"])
  assert r["final_eval_s"] > 0
