"""Tests of mmjax.data.splits: train/val/test splits, quantile strata, folds."""

import numpy as np
import pytest

from mmjax.data import splits


def _trainer_assign_folds(labels, num_folds, seed):
  """The trainer's assign_folds as it was before it moved to splits.py."""
  rng = np.random.default_rng([seed, 0xF01D])
  folds = np.empty(len(labels), np.int32)
  for c in np.unique(labels):
    idx = np.flatnonzero(labels == c)
    folds[rng.permutation(idx)] = np.arange(len(idx)) % num_folds
  return folds


def _cif_folder_split(labels, seed):
  """cif_folder.assign_splits' stratified branch before it moved, on items
  already in id order (the caller sorts): the reference for the semantics."""
  rng = np.random.default_rng(seed)
  ranked = []
  for c in sorted(set(labels)):
    members = [i for i, l in enumerate(labels) if l == c]
    for k, i in enumerate(rng.permutation(len(members))):
      ranked.append(((k + 0.5) / len(members), c, members[i]))
  ranked.sort(key=lambda t: t[:2])
  out, start = [], 0
  for size in splits.split_sizes(len(labels)):
    out.append(sorted(t[2] for t in ranked[start:start + size]))
    start += size
  return out


@pytest.mark.parametrize("trial", range(40))
def test_assign_folds_matches_the_trainer_bit_for_bit(trial):
  rng = np.random.default_rng(trial)
  n = int(rng.integers(0, 300))
  classes = rng.choice([-3, 0, 1, 2, 7, 100], size=int(rng.integers(1, 5)),
                       replace=False)
  labels = rng.choice(classes, size=n).astype(rng.choice([np.int32, np.int64]))
  num_folds = int(rng.integers(1, 11))
  seed = int(rng.integers(0, 2**31))
  got = splits.assign_folds(labels, num_folds, seed)
  want = _trainer_assign_folds(labels, num_folds, seed)
  assert got.dtype == want.dtype == np.int32
  np.testing.assert_array_equal(got, want)


def test_assign_folds_is_stratified():
  labels = np.repeat([0, 1], [50, 23])
  folds = splits.assign_folds(labels, 5, seed=3)
  for c in (0, 1):
    counts = np.bincount(folds[labels == c], minlength=5)
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("n,expect", [(0, (0, 0, 0)), (1, (1, 0, 0)),
                                      (2, (1, 1, 0)), (3, (1, 1, 1)),
                                      (4, (2, 1, 1)), (7, (5, 1, 1)),
                                      (100, (70, 15, 15)),
                                      (400, (280, 60, 60)),
                                      (24_000, (16_800, 3_600, 3_600))])
def test_split_sizes(n, expect):
  assert tuple(splits.split_sizes(n)) == expect


def test_split_sizes_other_fractions():
  assert splits.split_sizes(10, (0.5, 0.5)) == [5, 5]
  assert splits.split_sizes(2, (0.8, 0.1, 0.1)) == [1, 1, 0]
  for bad in ((0.5, 0.4), (1.2, -0.2), ()):
    with pytest.raises(ValueError, match="fractions"):
      splits.split_sizes(10, bad)


@pytest.mark.parametrize("trial", range(20))
def test_stratified_split_matches_cif_folder_semantics(trial):
  rng = np.random.default_rng(100 + trial)
  n = int(rng.integers(1, 120))
  labels = rng.integers(0, int(rng.integers(1, 4)), n)
  got = splits.stratified_split(labels, seed=trial)
  want = _cif_folder_split(labels.tolist(), trial)
  assert [g.tolist() for g in got] == want


def test_stratified_split_partitions_in_proportion():
  labels = np.repeat([0, 1, 2], [150, 50, 13])
  parts = splits.stratified_split(labels, seed=0)
  assert [len(p) for p in parts] == splits.split_sizes(len(labels))
  joined = np.concatenate(parts)
  np.testing.assert_array_equal(np.sort(joined), np.arange(len(labels)))
  for p, frac in zip(parts, splits.FRACTIONS):
    assert np.all(np.diff(p) > 0) and p.dtype == np.int64
    for c, n_c in ((0, 150), (1, 50), (2, 13)):
      assert abs(np.sum(labels[p] == c) - n_c * frac) <= 1


def test_stratified_split_balanced_classes_give_balanced_splits():
  labels = np.tile([0, 1], 200)
  for p in splits.stratified_split(labels, seed=5):
    np.testing.assert_array_equal(np.bincount(labels[p]), [len(p) // 2] * 2)


def test_stratified_split_depends_only_on_strata_and_seed():
  labels = np.random.default_rng(0).integers(0, 2, 200)
  a = splits.stratified_split(labels, 1)
  b = splits.stratified_split(labels.astype(np.int32), 1)
  c = splits.stratified_split(labels, 2)
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_stratified_split_rejects_non_integer_strata():
  with pytest.raises(ValueError, match="quantile_strata"):
    splits.stratified_split(np.linspace(0, 1, 10), 0)


def test_quantile_strata():
  values = np.random.default_rng(0).normal(size=1000)
  bins = splits.quantile_strata(values, 10)
  assert bins.dtype == np.int64
  np.testing.assert_array_equal(np.bincount(bins), [100] * 10)
  order = np.argsort(values)
  assert np.all(np.diff(bins[order]) >= 0)            # monotone in the value
  # Ties share a bin.
  tied = splits.quantile_strata([1.0, 1.0, 1.0, 2.0, 3.0, 3.0], 3)
  assert len(set(tied[:3].tolist())) == 1 and tied[4] == tied[5]
  assert splits.quantile_strata([5.0], 4).tolist() == [0]
  # A regression target split in proportion to its quantiles.
  parts = splits.stratified_split(bins, 0)
  for p, frac in zip(parts, splits.FRACTIONS):
    assert np.all(np.abs(np.bincount(bins[p], minlength=10) - 100 * frac) <= 1)


def test_quantile_strata_rejects_bad_input():
  with pytest.raises(ValueError, match="finite"):
    splits.quantile_strata([0.0, np.nan], 2)
  with pytest.raises(ValueError, match="num_bins"):
    splits.quantile_strata([0.0, 1.0], 0)


@pytest.mark.parametrize("trial", range(20))
def test_group_split_keeps_every_group_in_one_part(trial):
  rng = np.random.default_rng(trial)
  n = int(rng.integers(3, 400))
  groups = rng.integers(0, int(rng.integers(3, 200)), size=n)
  parts = splits.group_split(groups, trial)
  assert sorted(np.concatenate(parts).tolist()) == list(range(n))
  seen = [set(groups[p].tolist()) for p in parts]
  assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
  if len(np.unique(groups)) >= 3:
    assert all(len(p) for p in parts)
  again = splits.group_split(groups, trial)
  assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_group_split_sizes_follow_the_fractions_within_a_group():
  groups = np.repeat(np.arange(1000), 3)  # 3,000 items in groups of 3
  parts = splits.group_split(groups, 0)
  for part, f in zip(parts, (0.8, 0.1, 0.1)):
    assert abs(len(part) - f * 3000) <= 3
  # A seeded random order, not largest-first: another seed, other parts.
  assert not np.array_equal(splits.group_split(groups, 1)[2], parts[2])
