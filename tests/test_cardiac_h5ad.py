"""The `cardiac_h5ad` reader (mmjax/data/cardiac/h5ad_reader.py).

(a) An .h5ad written here from 6 simulated cardiac trajectories
(trajectories.make, one per fate; each of a trajectory's 80 steps one
cell, rows shuffled) reads back into the originals, resampled by the
documented rule, from X, a sparse layer and an obsm embedding, ordered by
pseudotime, by a 7-level day with ties broken by obs_names, or by both.
(b) The scFates test file vendored in mmjax/data/cardiac/vendor loads as
shipped. It has no trajectory ids and no time points, so the test reads
each of its 4 leiden clusters as one trajectory ordered by velocity
pseudotime (label = the cluster): a format fixture, not a differentiation
benchmark. (c) A missing key, a too-short trajectory, an unknown features
spec (and others) are one line naming them. (d) The manifest's hashes.
"""

import hashlib
import json
import os

import anndata
import ml_collections
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from mmjax.data import pipeline
from mmjax.data import splits as splits_lib
from mmjax.data.cardiac import h5ad_reader
from mmjax.data.cardiac import network
from mmjax.data.cardiac import trajectories
from mmjax.data.datasets import load_dataset
from mmjax.errors import UserError

STEPS = trajectories.WINDOW      # cells per simulated trajectory
PROJECTION = np.random.default_rng(7).normal(size=(15, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def sim():
  """6 simulated trajectories (one per fate): x [6, 80, 15], label [6]."""
  d = trajectories.make(seed=0, per_type=1, spatial=0, batch=16)
  return d["x"], d["label"]


def write_sim(path, x, label, *, names=None, keep=None, split=None, seed=3):
  """Writes the trajectories as one cell per step, rows shuffled.

  obs: trajectory_id 't<k>', step, pseudotime step / 79, day (7 levels,
  step // 12, an ordered categorical 'D0' .. 'D6'), cell_type
  ('progenitor' before step 70, the fate after); X the 15 nodes (float32),
  layers['counts'] the same as CSR, obsm['X_pca'] x @ PROJECTION.
  names(k, step) -> obs name; keep {k: number of first steps kept};
  split {k: split name}."""
  rows = []
  for k in range(len(x)):
    for s in range(keep.get(k, STEPS) if keep else STEPS):
      rows.append((k, s))
  rows = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]
  ks = np.array([r[0] for r in rows])
  ss = np.array([r[1] for r in rows])
  xs = x[ks, ss]
  days = pd.Categorical([f"D{s // 12}" for s in ss],
                        categories=[f"D{d}" for d in range(7)], ordered=True)
  obs = pd.DataFrame({
      "trajectory_id": [f"t{k}" for k in ks],
      "step": ss,
      "pseudotime": ss / (STEPS - 1),
      "day": days,
      "cell_type": [network.FATES[label[k]] if s >= 70 else "progenitor"
                    for k, s in zip(ks, ss)],
  }, index=[(names or (lambda k, s: f"t{k}-c{s:02d}"))(k, s)
            for k, s in zip(ks, ss)])
  if split:
    obs["split"] = [split[k] for k in ks]
  adata = anndata.AnnData(X=xs, obs=obs,
                          layers={"counts": scipy.sparse.csr_matrix(xs)},
                          obsm={"X_pca": xs @ PROJECTION})
  adata.write_h5ad(path)
  return path


def config(path, **kw):
  base = dict(path=str(path), trajectory_key="trajectory_id",
              label_key="cell_type", order_key="pseudotime", features="X",
              window=80, split_seed=0)
  base.update(kw)
  return ml_collections.ConfigDict(base)


def by_id(ds):
  """{trajectory id: example} over all splits."""
  return {e["id"]: e for s in ds.sources.values() for e in s}


def interp(cells, window):
  """The documented rule, written independently: np.interp per feature
  over the rank 0 .. n-1 at window evenly spaced points."""
  u = np.linspace(0, len(cells) - 1, window)
  return np.stack([np.interp(u, np.arange(len(cells)), c)
                   for c in np.asarray(cells, np.float64).T], axis=1)


@pytest.fixture(scope="module")
def sim_file(sim, tmp_path_factory):
  return write_sim(tmp_path_factory.mktemp("h5ad") / "sim.h5ad", *sim)


# (a) ------------------------------------------------------------------------


def test_simulated_trajectories_read_back_exactly(sim, sim_file):
  x, label = sim
  ds = h5ad_reader.load_cardiac_h5ad(config(sim_file), "")
  fates = sorted(network.FATES)
  assert ds.spec.class_names == tuple(fates)
  assert ds.spec.task == "classification" and ds.spec.num_outputs == 6
  mod = ds.spec.modalities["trajectory"]
  assert (mod.kind, mod.shape, mod.dtype) == ("sequence", (80, 15), "float32")
  ex = by_id(ds)
  assert sorted(ex) == [f"t{k}" for k in range(6)]
  for k in range(6):
    e = ex[f"t{k}"]
    assert e["trajectory"].dtype == np.float32
    # window == cells: the cells themselves, bitwise.
    np.testing.assert_array_equal(e["trajectory"], x[k])
    # The label is the last cell's cell_type: the fate, not 'progenitor'.
    assert ds.spec.class_names[e["label"]] == network.FATES[label[k]]
  # 65/25/10 stratified over the 6 trajectories, as splits.py computes it.
  ids = sorted(ex)
  want = splits_lib.stratified_split(
      np.asarray([ex[i]["label"] for i in ids]), 0, (0.65, 0.25, 0.10))
  for s, idx in zip(splits_lib.SPLITS, want):
    assert [e["id"] for e in ds.sources[s]] == [ids[i] for i in idx]
  assert [len(ds.sources[s]) for s in splits_lib.SPLITS] == [4, 1, 1]
  padded = pipeline.PaddedSplit(ds.sources["train"], ds.spec, {})
  assert padded.arrays["trajectory"].shape == (4, 80, 15)
  assert (padded.arrays["trajectory_mask"] == 1).all()


@pytest.mark.parametrize("features,width", [("X", 15), ("layer:counts", 15),
                                            ("obsm:X_pca", 4)])
def test_resampled_to_the_window(sim, sim_file, features, width):
  x, _ = sim
  ds = h5ad_reader.load_cardiac_h5ad(
      config(sim_file, features=features, window=20), "")
  assert ds.spec.modalities["trajectory"].shape == (20, width)
  ex = by_id(ds)
  for k in range(6):
    cells = x[k] if width == 15 else x[k] @ PROJECTION
    got = ex[f"t{k}"]["trajectory"]
    np.testing.assert_allclose(got, interp(cells, 20), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[[0, -1]], cells[[0, -1]])


def test_order_by_day_ties_by_obs_names(sim, tmp_path):
  x, _ = sim
  # Names that sort as the steps: day alone (7 levels, ties) still gives
  # the original order, as does (day, pseudotime).
  for order in ("day", ["day", "pseudotime"]):
    ds = h5ad_reader.load_cardiac_h5ad(config(
        write_sim(tmp_path / "a.h5ad", *sim), order_key=order), "")
    for k, e in by_id(ds).items():
      np.testing.assert_array_equal(e["trajectory"], x[int(k[1:])])
  # Names that sort against the steps: within a day, descending step.
  path = write_sim(tmp_path / "b.h5ad", *sim,
                   names=lambda k, s: f"t{k}-c{STEPS - 1 - s:02d}")
  ds = h5ad_reader.load_cardiac_h5ad(config(path, order_key="day"), "")
  steps = np.arange(STEPS)
  want = np.lexsort((-steps, steps // 12))
  for k, e in by_id(ds).items():
    np.testing.assert_array_equal(e["trajectory"], x[int(k[1:])][want])


def test_split_column_and_registry(sim, tmp_path):
  split = {0: "train", 1: "train", 2: "val", 3: "test", 4: "train",
           5: "val"}
  path = write_sim(tmp_path / "s.h5ad", *sim, split=split)
  ds = load_dataset(ml_collections.ConfigDict(dict(
      name="cardiac_h5ad", path=str(path), trajectory_key="trajectory_id",
      label_key="cell_type", order_key="pseudotime", split_seed=0)))
  for s in splits_lib.SPLITS:
    assert [e["id"] for e in ds.sources[s]] == [
        f"t{k}" for k in sorted(split) if split[k] == s]


def test_short_trajectory_interpolated_up_when_allowed(sim, tmp_path):
  x, _ = sim
  path = write_sim(tmp_path / "short.h5ad", *sim, keep={3: 30})
  ds = h5ad_reader.load_cardiac_h5ad(config(path, min_cells=2), "")
  ex = by_id(ds)
  np.testing.assert_allclose(ex["t3"]["trajectory"], interp(x[3][:30], 80),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(ex["t0"]["trajectory"], x[0])


# (b) ------------------------------------------------------------------------


SCFATES = dict(trajectory_key="leiden", label_key="leiden",
               order_key="velocity_pseudotime", features="obsm:X_pca")


def test_vendored_scfates_file_loads():
  ds = h5ad_reader.load_cardiac_h5ad(
      config(h5ad_reader.VENDORED_H5AD, **SCFATES), "")
  assert ds.spec.class_names == ("3", "4", "7", "8")
  assert ds.spec.modalities["trajectory"].shape == (80, 11)
  ex = by_id(ds)
  assert sorted(ex) == ["3", "4", "7", "8"]
  assert sum(len(s) for s in ds.sources.values()) == 4
  # Independently: cluster 8's cells sorted by velocity pseudotime (no
  # ties in this file), interpolated over the rank.
  adata = anndata.read_h5ad(h5ad_reader.VENDORED_H5AD)
  rows = np.flatnonzero(adata.obs["leiden"].astype(str) == "8")
  order = rows[np.argsort(adata.obs["velocity_pseudotime"].to_numpy()[rows],
                          kind="stable")]
  assert len(order) == 218
  want = interp(adata.obsm["X_pca"][order], 80)
  np.testing.assert_allclose(ex["8"]["trajectory"], want, rtol=1e-5,
                             atol=1e-6)
  assert ds.spec.class_names[ex["8"]["label"]] == "8"
  # Its X is a CSR matrix: densified per trajectory, the same numbers.
  assert scipy.sparse.issparse(adata.X)
  ds_x = h5ad_reader.load_cardiac_h5ad(
      config(h5ad_reader.VENDORED_H5AD, **dict(SCFATES, features="X")), "")
  np.testing.assert_allclose(by_id(ds_x)["8"]["trajectory"],
                             interp(adata.X[order].toarray(), 80),
                             rtol=1e-5, atol=1e-6)


# (c) ------------------------------------------------------------------------


def one_line_error(cfg, *needles):
  with pytest.raises(ValueError) as e:
    h5ad_reader.load_cardiac_h5ad(cfg, "")
  msg = str(e.value)
  assert "\n" not in msg, msg
  for n in needles:
    assert n in msg, (n, msg)
  return msg


def test_missing_key(sim_file):
  msg = one_line_error(config(sim_file, label_key="celltype"),
                       str(sim_file), "dataset.label_key 'celltype'",
                       "available:", "cell_type", "trajectory_id")
  assert "pseudotime" in msg
  one_line_error(config(sim_file, order_key="dpt_pseudotime"),
                 str(sim_file), "dataset.order_key 'dpt_pseudotime'")
  one_line_error(config(sim_file, trajectory_key="lineage"),
                 str(sim_file), "dataset.trajectory_key 'lineage'")
  one_line_error(config(sim_file, trajectory_key=""), str(sim_file),
                 "dataset.trajectory_key")


def test_trajectory_too_short(sim, tmp_path):
  path = write_sim(tmp_path / "short.h5ad", *sim, keep={3: 30})
  one_line_error(config(path), str(path), "trajectory 't3'", "30 cells",
                 "dataset.min_cells = 80")
  path = write_sim(tmp_path / "one.h5ad", *sim, keep={5: 1})
  one_line_error(config(path, min_cells=2), "trajectory 't5'", "1 cell,")


def test_unknown_features(sim_file):
  one_line_error(config(sim_file, features="pca"), str(sim_file),
                 "dataset.features 'pca'", "'X', 'layer:<name>'")
  one_line_error(config(sim_file, features="obsm:X_umap"),
                 "no obsm key 'X_umap'", "X_pca")
  one_line_error(config(sim_file, features="layer:spliced"),
                 "no layer 'spliced'", "counts")


def test_other_problems_one_line(sim, sim_file, tmp_path):
  one_line_error(config(tmp_path / "nope.h5ad"), "nope.h5ad",
                 "file not found")
  (tmp_path / "bad.h5ad").write_bytes(b"not hdf5")
  one_line_error(config(tmp_path / "bad.h5ad"), "bad.h5ad",
                 "cannot read as AnnData")
  one_line_error(config(sim_file, order_key="cell_type"),
                 "dataset.order_key 'cell_type'", "non-numeric categories")
  one_line_error(config(sim_file, window=1), "dataset.window")
  path = write_sim(tmp_path / "mixed.h5ad", *sim,
                   split={0: "train", 1: "train", 2: "val", 3: "test",
                          4: "train", 5: "val"})
  adata = anndata.read_h5ad(path)
  first = np.flatnonzero(adata.obs["trajectory_id"] == "t2")[0]
  adata.obs.iloc[first, adata.obs.columns.get_loc("split")] = "test"
  adata.obs.iloc[0, adata.obs.columns.get_loc("pseudotime")] = np.nan
  adata.write_h5ad(path)
  one_line_error(config(path), "dataset.order_key 'pseudotime'",
                 "not finite", f"cell {adata.obs_names[0]!r}")
  one_line_error(config(path, order_key="step"), "trajectory 't2'",
                 "obs['split'] differs")
  with pytest.raises(UserError, match="^dataset cardiac_h5ad: .*'celltype'"):
    load_dataset(ml_collections.ConfigDict(dict(
        name="cardiac_h5ad", path=str(sim_file), label_key="celltype",
        trajectory_key="trajectory_id", split_seed=0)))


# (d) ------------------------------------------------------------------------


def test_manifest_matches_vendored_file():
  with open(os.path.join(h5ad_reader.VENDOR, "MANIFEST.json")) as f:
    man = json.load(f)
  (entry,) = man["files"]
  with open(os.path.join(h5ad_reader.VENDOR, entry["file"]), "rb") as f:
    data = f.read()
  assert os.path.join(h5ad_reader.VENDOR, entry["file"]) == \
      h5ad_reader.VENDORED_H5AD
  assert hashlib.sha256(data).hexdigest() == entry["stored_sha256"]
  assert entry["stored_sha256"] == entry["sha256"]  # stored as shipped
  assert len(data) == entry["bytes"] < 1 << 20
  assert (entry["package"], entry["version"], entry["licence"]) == (
      "scFates", "1.2.5", "BSD-3-Clause")
  assert entry["inner_path"] == "scFates/datasets/test.h5ad"
  with open(os.path.join(h5ad_reader.VENDOR, entry["licence_file"])) as f:
    assert f.read().startswith("BSD 3-Clause License")
