"""`cardiac_h5ad`: a user's own differentiation data (reference recipe 004)
as an AnnData `.h5ad` file, read with `anndata.read_h5ad`, one sequence
per trajectory.

Config (dataset.*):
  path            the .h5ad file (required).
  trajectory_key  obs column of the trajectory / lineage id (required; e.g.
                  'trajectory_id', 'lineage', a clone barcode 'clone').
  order_key       obs column that orders a trajectory's cells: a time point
                  ('day', default) or a pseudotime ('dpt_pseudotime',
                  'velocity_pseudotime'); or a list of columns, compared in
                  turn (('day', 'pseudotime'): by day, then by pseudotime
                  within a day). A column is numeric, an ordered
                  categorical (its category order) or a categorical whose
                  categories are numbers.
  label_key       obs column of the class (cell type / fate; default
                  'cell_type').
  features        'X' (default), 'layer:<name>' (adata.layers[name]) or
                  'obsm:<name>' (e.g. 'obsm:X_pca'): F feature columns.
  window          steps per sequence (default 80, >= 2).
  min_cells       fewest cells a trajectory may have (default: window, so a
                  trajectory shorter than the window is an error; >= 2:
                  lower it to interpolate shorter trajectories up to the
                  window).
  split_seed      seed of the stratified split.

Sequences. The cells of a trajectory are sorted by the order column(s),
ties by obs_names, then by file row (a stable order). Cell k of its n
sorted cells (k = 0 .. n-1, its rank) sits at position k; step
j = 0 .. window-1 of the sequence sits at u_j = j (n-1) / (window-1) and
is the linear interpolation of the two cells around it:
  x_j = (1 - f) c_i + f c_{i+1},  i = min(floor(u_j), n-2),  f = u_j - i.
So the first and last steps are the first and last cells, a trajectory of
exactly `window` cells is its cells unchanged (bitwise, for float32
features), a longer one is read at evenly spaced ranks (a subsample with
interpolation, not an average), and a shorter one (only when min_cells <
window) is stretched piecewise-linearly. Ranks rather than the order
values set the spacing: time points are coarse (a few days, thousands of
cells tied on each) and pseudotime spacing follows cell density, while
ranks give every cell the same share of the window. Sparse features are
densified one trajectory at a time. Every value a sequence uses must be
finite.

Labels. A trajectory's label is the label_key value of its last cell in
that order (the fate it reaches); the classes are the distinct labels of
the trajectories, sorted (numerically for a numeric column or numeric
categories, else as text), at least 2.

Splits. If obs has a 'split' column, it gives each trajectory's split:
'train', 'val' or 'test', the same for all of a trajectory's cells, every
split non-empty. Otherwise trajectories (sorted by id) are split 65/25/10,
stratified by label (splits.stratified_split, dataset.split_seed), as the
simulated cardiac dataset (trajectories.FRACTIONS); at least 3
trajectories are needed.

Examples: {'trajectory': float32 [window, F], 'label': int32, 'id': the
trajectory id as text}; one modality, Modality('sequence', (window, F),
'float32'); task classification.

Every problem is a one-line ValueError naming the file and the key,
trajectory or cell: a missing obs column (listing the available ones), an
unknown features spec, layer or obsm key (listing the available ones), a
missing or non-finite value, an order column that is not ordered, a
trajectory with fewer than min_cells cells, a trajectory whose cells
disagree on 'split'.

A real file to try it on: vendor/scFates_test.h5ad (VENDORED_H5AD), the
test file scFates 1.2.5 ships (BSD-3-Clause; vendor/MANIFEST.json):
1,330 mouse E15.5 enteric nervous system cells x 20 genes, one
bifurcation, with obs 'leiden' (4 clusters) and 'velocity_pseudotime' and
obsm 'X_pca' (11 components), but no time points and no trajectory ids.
It is a format fixture, not a differentiation benchmark: with
  path=VENDORED_H5AD, trajectory_key='leiden', label_key='leiden',
  order_key='velocity_pseudotime', features='obsm:X_pca', window=80
each leiden cluster is read as one trajectory ordered by velocity
pseudotime (4 sequences [80, 11], one per class).
"""

import logging
import os

import anndata
import numpy as np
import pandas as pd
import scipy.sparse

from mmjax.data import splits as splits_lib
from mmjax.data.datasets import Dataset
from mmjax.data.datasets import DatasetSpec
from mmjax.data.modalities import Modality

MODALITY = "trajectory"
SPLIT_COLUMN = "split"
FRACTIONS = (0.65, 0.25, 0.10)   # train, val, test (splits.SPLITS order)
VENDOR = os.path.join(os.path.dirname(__file__), "vendor")
VENDORED_H5AD = os.path.join(VENDOR, "scFates_test.h5ad")
_FEATURES_FORMS = "'X', 'layer:<name>' or 'obsm:<name>'"


def _listing(names, most=40):
  names = [str(n) for n in names]
  more = f", ... ({len(names) - most} more)" if len(names) > most else ""
  return ", ".join(names[:most]) + more if names else "none"


def read(path):
  """The AnnData of `path`; ValueError (one line) if it cannot be read."""
  if not os.path.isfile(path):
    raise ValueError(f"{path}: file not found")
  try:
    return anndata.read_h5ad(path)
  except Exception as e:  # h5py and anndata raise many types on bad files.
    first = str(e).splitlines()[0] if str(e) else ""
    raise ValueError(f"{path}: cannot read as AnnData .h5ad "
                     f"({type(e).__name__}: {first[:200]})") from e


def obs_column(adata, key, config_key, path):
  """adata.obs[key]; ValueError naming the key, file and the columns."""
  if not isinstance(key, str) or key not in adata.obs.columns:
    raise ValueError(f"{path}: dataset.{config_key} {key!r} is not an obs "
                     f"column (available: {_listing(adata.obs.columns)})")
  return adata.obs[key]


def feature_matrix(adata, spec, path):
  """The [n_obs, F] matrix `spec` names ('X' | 'layer:<name>' |
  'obsm:<name>'): a numpy array or a scipy sparse matrix."""
  kind, _, name = str(spec).partition(":")
  if spec == "X":
    m = adata.X
    if m is None:
      raise ValueError(f"{path}: dataset.features 'X': the file has no X")
  elif kind == "layer" and name:
    if name not in adata.layers:
      raise ValueError(f"{path}: dataset.features {spec!r}: no layer "
                       f"{name!r} (layers: {_listing(adata.layers)})")
    m = adata.layers[name]
  elif kind == "obsm" and name:
    if name not in adata.obsm:
      raise ValueError(f"{path}: dataset.features {spec!r}: no obsm key "
                       f"{name!r} (obsm: {_listing(adata.obsm)})")
    m = adata.obsm[name]
  else:
    raise ValueError(f"{path}: dataset.features {spec!r} is not "
                     f"{_FEATURES_FORMS}")
  if isinstance(m, pd.DataFrame):
    m = m.to_numpy()
  if not scipy.sparse.issparse(m):
    m = np.asarray(m)
  if m.ndim != 2 or m.shape[0] != adata.n_obs or m.shape[1] < 1:
    raise ValueError(f"{path}: dataset.features {spec!r} has shape "
                     f"{m.shape}, expected [{adata.n_obs} cells, F >= 1]")
  if m.dtype.kind not in "iufb":
    raise ValueError(f"{path}: dataset.features {spec!r} has dtype "
                     f"{m.dtype}, not numbers")
  return m


def order_values(series, key, path):
  """float64 [n_obs] sort key of an order column (NaN where missing)."""
  if isinstance(series.dtype, pd.CategoricalDtype):
    codes = series.cat.codes.to_numpy()
    if series.cat.ordered:
      cats = np.arange(len(series.cat.categories), dtype=np.float64)
    else:
      cats = pd.to_numeric(pd.Series(series.cat.categories),
                           errors="coerce").to_numpy(np.float64)
      bad = [c for c, v in zip(series.cat.categories, cats) if np.isnan(v)]
      if bad:
        raise ValueError(f"{path}: dataset.order_key {key!r} is an unordered "
                         f"categorical with non-numeric categories "
                         f"({_listing(bad, 5)}): make it ordered or numeric")
    return np.where(codes >= 0, cats[np.maximum(codes, 0)], np.nan)
  if series.dtype.kind in "iuf":
    return series.to_numpy(np.float64)
  values = pd.to_numeric(series, errors="coerce").to_numpy(np.float64)
  bad = np.flatnonzero(np.isnan(values) & series.notna().to_numpy())
  if len(bad):
    raise ValueError(f"{path}: dataset.order_key {key!r} of cell "
                     f"{series.index[bad[0]]!r} is {series.iloc[bad[0]]!r}, "
                     "not a number (use a numeric or ordered categorical "
                     "column)")
  return values


def resample(cells, window):
  """float64 [window, F] of the rank-ordered cells [n, F], n >= 2, by
  linear interpolation over the rank (module docstring)."""
  n = len(cells)
  u = np.arange(window) * (n - 1) / (window - 1)
  i = np.minimum(np.floor(u).astype(np.int64), n - 2)
  f = (u - i)[:, None]
  return (1 - f) * cells[i] + f * cells[i + 1]


def _labels(series, rows):
  """(int64 [T] class index, class names) of the label column at `rows`."""
  part = series.iloc[rows]
  if isinstance(part.dtype, pd.CategoricalDtype):
    numeric = pd.api.types.is_numeric_dtype(part.cat.categories.dtype)
  else:
    numeric = part.dtype.kind in "iuf"
  values = part.to_numpy()
  keys = (np.asarray(values, np.float64) if numeric
          else np.asarray([str(v) for v in values]))
  uniq, ids = np.unique(keys, return_inverse=True)
  names = {}
  for k, v in zip(ids, values):
    names.setdefault(int(k), str(v))
  return ids.astype(np.int64), tuple(names[k] for k in range(len(uniq)))


def _int(dcfg, key, default, low):
  v = dcfg.get(key, None)
  v = default if v is None else v
  if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
    raise ValueError(f"dataset.{key}: {v!r} is not an integer >= {low}")
  return int(v)


def load_cardiac_h5ad(dcfg, data_dir):
  """Reads a user's .h5ad into one sequence per trajectory (module
  docstring): Dataset with splits 'train', 'val', 'test'."""
  del data_dir  # Read in place: nothing to build or cache.
  path = dcfg.get("path", None)
  if not path:
    raise ValueError("cardiac_h5ad: dataset.path (the .h5ad file) is not set")
  path = os.path.expanduser(str(path))
  traj_key = dcfg.get("trajectory_key", None)
  if not traj_key:
    raise ValueError(f"{path}: dataset.trajectory_key (the obs column of "
                     "the trajectory / lineage id) is not set")
  label_key = dcfg.get("label_key", None) or "cell_type"
  order_keys = dcfg.get("order_key", None) or "day"
  order_keys = ([order_keys] if isinstance(order_keys, str)
                else list(order_keys))
  features = dcfg.get("features", None) or "X"
  window = _int(dcfg, "window", 80, 2)
  min_cells = _int(dcfg, "min_cells", window, 2)

  adata = read(path)
  names = [str(n) for n in adata.obs_names]
  traj = obs_column(adata, traj_key, "trajectory_key", path)
  label_col = obs_column(adata, label_key, "label_key", path)
  orders = [order_values(obs_column(adata, k, "order_key", path), k, path)
            for k in order_keys]
  matrix = feature_matrix(adata, features, path)

  missing = np.flatnonzero(traj.isna().to_numpy())
  if len(missing):
    raise ValueError(f"{path}: dataset.trajectory_key {traj_key!r} is "
                     f"missing for cell {names[missing[0]]!r}")
  traj_ids = traj.astype(str).to_numpy()
  codes, uniq = pd.factorize(traj_ids, sort=True)
  for k, v in zip(order_keys, orders):
    bad = np.flatnonzero(~np.isfinite(v))
    if len(bad):
      raise ValueError(f"{path}: dataset.order_key {k!r} is missing or not "
                       f"finite for cell {names[bad[0]]!r} (trajectory "
                       f"{traj_ids[bad[0]]!r})")

  # One sort: by trajectory, then the order keys, obs_names, file row.
  _, name_rank = np.unique(names, return_inverse=True)
  rows = np.arange(adata.n_obs)
  perm = np.lexsort((rows, name_rank) + tuple(reversed(orders)) + (codes,))
  counts = np.bincount(codes, minlength=len(uniq))
  groups = np.split(perm, np.cumsum(counts)[:-1])

  xs, last = [], []
  for tid, g in zip(uniq, groups):
    where = f"{path}: trajectory {tid!r} (obs[{traj_key!r}])"
    if len(g) < min_cells:
      raise ValueError(f"{where} has {len(g)} cell"
                       f"{'s' if len(g) != 1 else ''}, fewer than "
                       f"dataset.min_cells = {min_cells} (window {window}; "
                       "a dataset.min_cells >= 2 below the window "
                       "interpolates shorter trajectories up to it)")
    part = matrix[g]
    cells = (part.toarray() if scipy.sparse.issparse(part)
             else np.asarray(part)).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(cells).all(axis=1))
    if len(bad):
      raise ValueError(f"{where}: dataset.features {features!r} is not "
                       f"finite for cell {names[g[bad[0]]]!r}")
    if label_col.iloc[g[-1]] is None or pd.isna(label_col.iloc[g[-1]]):
      raise ValueError(f"{where}: dataset.label_key {label_key!r} is "
                       f"missing for its last cell {names[g[-1]]!r}")
    xs.append(resample(cells, window).astype(np.float32))
    last.append(g[-1])
  labels, class_names = _labels(label_col, np.asarray(last))
  if len(class_names) < 2:
    raise ValueError(f"{path}: dataset.label_key {label_key!r}: every "
                     f"trajectory ends in {class_names[0]!r}; a classifier "
                     "needs two or more classes")

  parts = _splits(adata, groups, uniq, labels, dcfg, path)
  examples = [{MODALITY: x, "label": np.int32(l), "id": str(t)}
              for x, l, t in zip(xs, labels, uniq)]
  sources = {s: [examples[i] for i in idx]
             for s, idx in zip(splits_lib.SPLITS, parts)}
  logging.info("cardiac_h5ad: %s: %d trajectories (%s), %d features from "
               "%s, window %d, splits %s", path, len(uniq),
               ", ".join(f"{c}: {n}" for c, n in
                         zip(class_names, np.bincount(labels))),
               matrix.shape[1], features, window,
               "/".join(str(len(p)) for p in parts))
  spec = DatasetSpec(
      modalities={MODALITY: Modality("sequence", (window, matrix.shape[1]),
                                     "float32")},
      task="classification", num_outputs=len(class_names),
      class_names=class_names)
  return Dataset(sources, spec)


def _splits(adata, groups, uniq, labels, dcfg, path):
  """Index arrays into the trajectories, one per splits.SPLITS part: from
  obs['split'] if present, else stratified 65/25/10 by label."""
  if SPLIT_COLUMN not in adata.obs.columns:
    if len(uniq) < 3:
      raise ValueError(f"{path}: {len(uniq)} trajectories; a train/val/test "
                       "split needs at least 3")
    return splits_lib.stratified_split(labels, dcfg.get("split_seed", 0),
                                       FRACTIONS)
  col = adata.obs[SPLIT_COLUMN].astype(object).to_numpy()
  names = [str(n) for n in adata.obs_names]
  part = np.empty(len(uniq), np.int64)
  for t, (tid, g) in enumerate(zip(uniq, groups)):
    values = set(str(v) for v in col[g])
    if len(values) != 1:
      raise ValueError(f"{path}: trajectory {tid!r}: obs[{SPLIT_COLUMN!r}] "
                       "differs between its cells "
                       f"({_listing(sorted(values), 5)})")
    value = values.pop()
    if value not in splits_lib.SPLITS:
      raise ValueError(f"{path}: trajectory {tid!r}: obs[{SPLIT_COLUMN!r}] "
                       f"is {value!r} (cell {names[g[0]]!r}), not one of "
                       f"{', '.join(splits_lib.SPLITS)}")
    part[t] = splits_lib.SPLITS.index(value)
  out = [np.flatnonzero(part == s).astype(np.int64)
         for s in range(len(splits_lib.SPLITS))]
  for s, idx in zip(splits_lib.SPLITS, out):
    if not len(idx):
      raise ValueError(f"{path}: obs[{SPLIT_COLUMN!r}] gives no trajectory "
                       f"to {s!r}")
  return out
