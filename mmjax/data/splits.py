"""Stratified data splits, shared by every dataset.

Two jobs, both on integer strata (class labels, or `quantile_strata` of a
continuous target):

* `stratified_split`: train/val/test (any fractions) for a dataset builder.
  Each stratum is shuffled, its members get evenly spaced ranks in [0, 1),
  and all items, ordered by rank, are cut into `split_sizes(N)`. So every
  split holds every stratum in proportion (within one item), the split sizes
  are exact (largest remainder), and tiny datasets still get a val and test
  item when there are enough items to go round (`split_sizes`).
* `assign_folds`: k-fold ids of the training examples (the trainer's members).

No dataset knowledge here: callers pass the strata in a canonical order
(e.g. sorted by id) so the result depends only on the data and the seed.
"""

import numpy as np

SPLITS = ("train", "val", "test")
FRACTIONS = (0.70, 0.15, 0.15)  # same order as SPLITS


def split_sizes(n, fractions=FRACTIONS):
  """Sizes of the parts for n items.

  By largest remainder (ties go to the earlier part); then each empty part
  after the first (in order) takes one item from the largest part if that
  leaves the donor non-empty. With 70/15/15: 1 -> (1, 0, 0), 2 -> (1, 1, 0),
  3 -> (1, 1, 1), 4 -> (2, 1, 1), 100 -> (70, 15, 15).

  Args:
    n: number of items, >= 0.
    fractions: positive fractions summing to 1.

  Returns:
    list of int, one per fraction, summing to n.
  """
  _check_fractions(fractions)
  exact = [n * f for f in fractions]
  counts = [int(np.floor(x)) for x in exact]
  order = sorted(range(len(fractions)), key=lambda s: (counts[s] - exact[s], s))
  for s in order[:n - sum(counts)]:
    counts[s] += 1
  for s in range(1, len(fractions)):
    donor = max(range(len(fractions)), key=lambda d: (counts[d], -d))
    if counts[s] == 0 and counts[donor] >= 2:
      counts[donor] -= 1
      counts[s] += 1
  return counts


def stratified_split(strata, seed, fractions=FRACTIONS):
  """Splits items into parts of `split_sizes`, every stratum in proportion.

  Stratum c (in ascending order of c) is shuffled with one
  `np.random.default_rng(seed)`; its k-th of n_c shuffled members gets the
  rank (k + 0.5) / n_c. Items ordered by (rank, stratum) are cut into
  consecutive parts, so every prefix, hence every part, holds each stratum
  in proportion to its size (within one item).

  Args:
    strata: int [N] stratum of each item (class label or quantile bin).
    seed: anything `np.random.default_rng` accepts.
    fractions: positive fractions summing to 1, one per part.

  Returns:
    list of sorted int64 index arrays into `strata`, one per fraction.
  """
  strata = _as_strata(strata)
  rng = np.random.default_rng(seed)
  rank = np.empty(len(strata))
  for c in np.unique(strata):
    members = np.flatnonzero(strata == c)
    order = rng.permutation(len(members))
    rank[members[order]] = (np.arange(len(members)) + 0.5) / len(members)
  ranked = np.lexsort((strata, rank))
  bounds = np.cumsum(split_sizes(len(strata), fractions))[:-1]
  return [np.sort(p).astype(np.int64) for p in np.split(ranked, bounds)]


def group_split(groups, seed, fractions=(0.8, 0.1, 0.1)):
  """Splits items so that every group (e.g. a Bemis-Murcko scaffold, a
  genome) falls in exactly one part.

  The distinct groups (sorted, then shuffled with
  `np.random.default_rng(seed)`) are laid end to end in that random order;
  a group goes to the part in whose share of [0, N) its first item falls.
  A seeded random order, not largest-first: largest-first leaves only
  singleton groups for the last part and shifts its label distribution.
  Part sizes are the fractions within one group's size; a part left empty
  takes one group from the part with the most groups, when there are
  enough groups to go round.

  Args:
    groups: [N] hashable group key of each item (str or int).
    seed: anything `np.random.default_rng` accepts.
    fractions: positive fractions summing to 1, one per part.

  Returns:
    list of sorted int64 index arrays into `groups`, one per fraction.
  """
  _check_fractions(fractions)
  groups = np.asarray(groups)
  if groups.ndim != 1:
    raise ValueError(f"groups must be 1-D, got shape {groups.shape}")
  keys, inverse, counts = np.unique(groups, return_inverse=True,
                                    return_counts=True)
  order = np.random.default_rng(seed).permutation(len(keys))
  start = np.empty(len(keys))
  start[order] = np.concatenate([[0], np.cumsum(counts[order])[:-1]])
  bounds = np.cumsum(fractions)[:-1] * len(groups)
  part_of_group = np.searchsorted(bounds, start, side="right")
  # An empty part (few, large groups) takes the last group, in the random
  # order, of the part with the most groups, if that part keeps one.
  for s in range(len(fractions)):
    if not np.any(part_of_group == s):
      donor = max(range(len(fractions)),
                  key=lambda d: (np.sum(part_of_group == d), -d))
      members = order[part_of_group[order] == donor]
      if len(members) >= 2:
        part_of_group[members[-1]] = s
  part = part_of_group[inverse]
  return [np.flatnonzero(part == s).astype(np.int64)
          for s in range(len(fractions))]


def quantile_strata(values, num_bins):
  """Bins a continuous target into `num_bins` quantile bins for stratifying.

  Bin edges are the interior quantiles of `values`; equal values share a bin,
  so heavily tied targets can leave bins uneven or empty.

  Args:
    values: float [N] finite target values.
    num_bins: number of bins, >= 1.

  Returns:
    int64 [N] bin index in [0, num_bins), non-decreasing in the value.
  """
  values = np.asarray(values, np.float64)
  if values.ndim != 1 or not np.all(np.isfinite(values)):
    raise ValueError(f"quantile_strata: values must be finite and 1-D, got "
                     f"shape {values.shape}")
  if int(num_bins) != num_bins or num_bins < 1:
    raise ValueError(f"quantile_strata: num_bins must be a positive integer, "
                     f"got {num_bins!r}")
  if not len(values):
    return np.zeros(0, np.int64)
  edges = np.quantile(values, np.linspace(0, 1, int(num_bins) + 1)[1:-1])
  return np.searchsorted(edges, values, side="left").astype(np.int64)


def assign_folds(strata, num_folds, seed):
  """Stratified k-fold ids [N] for the training examples.

  Each stratum is shuffled and dealt round-robin to folds 0..num_folds-1,
  so fold sizes per stratum differ by at most one. The training code's fold
  ids depend on this exact sequence of draws: changing it moves existing
  k-fold runs to different folds.

  Args:
    strata: int [N] stratum (class label) of each training example.
    num_folds: number of folds.
    seed: integer seed.

  Returns:
    int32 [N] fold of each example.
  """
  strata = np.asarray(strata)
  rng = np.random.default_rng([seed, 0xF01D])
  folds = np.empty(len(strata), np.int32)
  for c in np.unique(strata):
    idx = np.flatnonzero(strata == c)
    folds[rng.permutation(idx)] = np.arange(len(idx)) % num_folds
  return folds


def _as_strata(strata):
  """int64 [N] copy of `strata`; rejects anything that is not 1-D integers."""
  a = np.asarray(strata)
  if a.ndim != 1 or (len(a) and a.dtype.kind not in "iub"):
    raise ValueError(f"strata must be a 1-D integer array, got dtype "
                     f"{a.dtype} shape {a.shape} (bin continuous targets with "
                     "quantile_strata)")
  return a.astype(np.int64)


def _check_fractions(fractions):
  f = np.asarray(fractions, np.float64)
  if f.ndim != 1 or not len(f) or np.any(f <= 0) or abs(f.sum() - 1) > 1e-9:
    raise ValueError(f"fractions must be positive and sum to 1, got "
                     f"{tuple(fractions)}")
