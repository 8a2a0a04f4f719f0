"""The members of a run: models trained together by one vmapped step.

An ensemble, the folds of k-fold cross-validation and the seeds of an
ablation are all members (mmjax.training.steps); `config.members` lists
them and names groups of them (stages), whose ensembles are reported.
"""

import numpy as np

from mmjax.data import splits
from mmjax.errors import UserError


REPLICATE_SEED_STRIDE = 1000


def member_table(config):
  """numpy arrays [K] {seed, fold, alpha, subset, active} and the named
  groups (stages) of member indices; raises UserError naming a bad key.

  `members.subset` (optional, one entry per member; default all 0): a
  member with subset s > 0 trains only on the rows whose dataset level is
  <= s (e.g. the nested scales of progressive data scaling: the source's
  per-example `levels`); 0 = every row.

  `members.replicates` R > 1 repeats the listed members R times, replicate
  r with seeds + 1000 r and groups named '<group>@<r>', so that results
  report each stage as a mean and sd over R independently initialised
  copies (they share the data order and k-fold folds).
  """
  m = config.members
  k = len(m.seeds)
  for key in ("mixup_alpha", "holdout_fold"):
    if len(m[key]) != k:
      raise UserError(f"members.{key} has {len(m[key])} entries, "
                      f"members.seeds has {k}")
  subset = tuple(m.get("subset", ()) or ()) or (0,) * k
  if len(subset) != k:
    raise UserError(f"members.subset has {len(subset)} entries, "
                    f"members.seeds has {k}")
  if min(subset) < 0:
    raise UserError(f"members.subset: levels must be >= 0, got {subset}")
  folds = np.asarray(m.holdout_fold, np.int32)
  if folds.max() >= config.kfold.num_folds:
    raise UserError(f"members.holdout_fold: fold {folds.max()} >= "
                    f"kfold.num_folds={config.kfold.num_folds}")
  groups = {g: tuple(v) for g, v in m.groups.items()}
  for g, idx in groups.items():
    if not idx or min(idx) < 0 or max(idx) >= k:
      raise UserError(f"members.groups.{g}: member indices must be in "
                      f"[0, {k})")
  reps = int(m.get("replicates", 1))
  if reps < 1:
    raise UserError(f"members.replicates: must be >= 1, got {reps}")
  seeds = config.seed + np.asarray(m.seeds, np.int32)
  table = {"seed": np.concatenate([seeds + REPLICATE_SEED_STRIDE * r
                                   for r in range(reps)]),
           "fold": np.tile(folds, reps),
           "alpha": np.tile(np.asarray(m.mixup_alpha, np.float32), reps),
           "subset": np.tile(np.asarray(subset, np.int32), reps),
           "active": np.ones((k * reps,), bool)}
  if reps > 1:
    groups = {f"{g}@{r}": tuple(i + k * r for i in idx)
              for r in range(reps) for g, idx in groups.items()}
  return table, groups


def fold_ids(task, labels, config):
  """k-fold ids [N] of the training examples, stratified by the task's
  strata (classes, or quantile bins of a continuous target)."""
  strata = task.strata(labels, config.kfold.get("strata_bins", 5))
  return splits.assign_folds(strata, config.kfold.num_folds,
                             config.dataset.split_seed)


def reported_groups(groups, k):
  """The stages reported: the config's groups, plus `super_ensemble` (all
  members of a replicate) when a replicate has several members or
  groups."""
  groups = dict(groups)
  reps = {g.partition("@")[2] for g in list(groups)}
  per = k // len(reps)
  for r in reps:  # '' without replicates, else '0', '1', ...
    mine = [g for g in groups if g.partition("@")[2] == r]
    if len(mine) > 1 or per > 1:
      first = int(r or 0) * per
      groups.setdefault("super_ensemble" + (f"@{r}" if r else ""),
                        tuple(range(first, first + per)))
  return groups
