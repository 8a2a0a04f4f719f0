"""Members: ensembles and k-fold folds trained together by one vmapped step
give what training them one by one gives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.optimized import get_config
from mmjax.training import trainer as trainer_lib
from mmjax.training.steps import mixup_partners


def _run(tmp_path, name, seeds, folds, alphas):
  config = get_config("smoke")
  config.members.seeds = seeds
  config.members.holdout_fold = folds
  config.members.mixup_alpha = alphas
  config.members.groups = {"all": tuple(range(len(seeds)))}
  workdir = str(tmp_path / name)
  trainer_lib.prepare_workdir(workdir)
  trainer_lib.write_or_check_config(config, workdir)
  results = trainer_lib.Trainer(config, workdir).run()
  params, _ = trainer_lib.final_params(workdir)
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
  with pytest.raises(trainer_lib.UserError, match="members.mixup_alpha"):
    trainer_lib.member_table(config)
  config.members.mixup_alpha = (0.0, 0.0)
  config.members.holdout_fold = (0, 7)
  with pytest.raises(trainer_lib.UserError, match="holdout_fold"):
    trainer_lib.member_table(config)


def test_max_train_keeps_a_fixed_subset(tmp_path):
  config = get_config("smoke")
  config.dataset.max_train = 100
  trainer_lib.prepare_workdir(str(tmp_path))
  a = trainer_lib.Trainer(config, str(tmp_path))
  b = trainer_lib.Trainer(config, str(tmp_path))
  assert a.train.size == 100 and a.steps_per_epoch == 100 // config.batch_size
  assert all(len(v) == 100 for v in a.train.arrays.values())
  np.testing.assert_array_equal(a.train.arrays["crystal_nodes"],
                                b.train.arrays["crystal_nodes"])


def test_member_parallel_must_divide_members(tmp_path):
  config = get_config("smoke")
  config.member_parallel = 2
  with pytest.raises(trainer_lib.UserError, match="member_parallel"):
    trainer_lib.Trainer(config, str(tmp_path))
