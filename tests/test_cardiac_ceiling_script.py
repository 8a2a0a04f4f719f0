"""scripts/cardiac_ceiling.py --quick on a tiny build (dataset.size 6: 36
protocol + 3 spatial examples): the examples are the dataset's (those
trajectories.make and trajectories.split give), the JSON accumulates per
scale and split with its provenance, and the two estimates bracket in the
expected order inside [0, 1]."""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))

import cardiac_ceiling  # pylint: disable=g-import-not-at-top,wrong-import-position

from mmjax.data.cardiac import trajectories  # pylint: disable=g-import-not-at-top,wrong-import-position

SIZE = 6
# The reweighted estimators renormalise each half on its own, so plug-in
# >= split-half holds only up to that (exact without weights).
TOL = 0.05


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("cardiac_ceiling"))


def test_loads_the_datasets_examples(data_dir):
  got = cardiac_ceiling.load_examples(1, "test", data_dir, size=SIZE)
  made = trajectories.make(1, 0, per_type=SIZE, spatial=SIZE // 2)
  want = trajectories.split(made["label"], 0, kind=made["kind"])["test"]
  assert got["ids"].tolist() == made["id"][want].tolist()
  np.testing.assert_array_equal(got["labels"], made["label"][want])
  np.testing.assert_array_equal(got["last_state"], made["last_state"][want])
  np.testing.assert_array_equal(got["signal_state"],
                                made["signal_state"][want])
  np.testing.assert_array_equal(got["positions"], made["position"][want])
  np.testing.assert_array_equal(got["natural_counts"],
                                made["natural_counts"])
  assert got["n_build"] == 6 * SIZE + SIZE // 2
  every = cardiac_ceiling.load_examples(1, "all", data_dir, size=SIZE)
  assert every["ids"].tolist() == made["id"].tolist()


def test_subsample_keeps_both_kinds():
  kinds = np.array(["protocol"] * 36 + ["spatial"] * 3)
  rows = cardiac_ceiling.subsample(kinds, 12, 0)
  assert set(kinds[rows]) == {"protocol", "spatial"}
  assert abs(len(rows) - 12) <= 1 and (np.diff(rows) > 0).all()
  np.testing.assert_array_equal(rows, cardiac_ceiling.subsample(kinds, 12, 0))
  assert len(cardiac_ceiling.subsample(kinds, 0, 0)) == 39


def _check_estimate(r, n):
  assert r["n"] == n
  for k in ("plug_in", "split_half"):
    assert 0.0 <= r[k] <= 1.0, (k, r)
  assert r["plug_in"] >= r["split_half"] - TOL, r


def test_quick_run_writes_json(data_dir, tmp_path):
  out = str(tmp_path / "ceiling.json")
  common = ["--quick", "--size", str(SIZE), "--data_dir", data_dir,
            "--scales", "1", "--out", out]
  cardiac_ceiling.main(common + ["--split", "all"])
  doc = cardiac_ceiling.main(common + ["--split", "test"])
  with open(out) as f:
    assert json.load(f) == doc
  assert set(doc["scales"]) == {"scale1"}
  assert set(doc["scales"]["scale1"]) == {"all", "test"}
  e = doc["scales"]["scale1"]["all"]
  for key in ("command", "date", "commit", "versions", "hardware",
              "seconds", "builder", "ids_sha256", "natural_counts",
              "natural_shares", "protocol_weights", "class_counts"):
    assert key in e, key
  assert e["command"].startswith("python scripts/cardiac_ceiling.py")
  assert e["quick"] and e["size"] == SIZE and e["n_build"] == 39
  assert e["n_split"] == 39 and e["n"] in (12, 13)
  assert e["continuations"] == 8 and e["per_half"] == 4
  assert sum(map(sum, e["class_counts"].values())) == e["n"]
  assert len(e["natural_counts"]) == 7 and len(e["protocol_weights"]) == 6
  assert abs(sum(e["natural_shares"]) - 1) < 1e-9
  n_kind = {k: sum(v) for k, v in e["class_counts"].items()}
  assert n_kind["spatial"] >= 1 and n_kind["protocol"] >= 1
  for prior in ("dataset_prior", "natural_prior"):
    _check_estimate(e["ceiling"][prior]["all"], e["n"])
    for kind in ("protocol", "spatial"):
      _check_estimate(e["ceiling"][prior][kind], n_kind[kind])
  # Spatial examples keep their natural prior: the same under both.
  assert (e["ceiling"]["dataset_prior"]["spatial"]
          == e["ceiling"]["natural_prior"]["spatial"])
  assert 0.0 <= e["committor_argmax"]["all"]["accuracy"] <= 1.0
  t = doc["scales"]["scale1"]["test"]
  assert t["n_split"] == t["n"] < 12
  _check_estimate(t["ceiling"]["dataset_prior"]["all"], t["n"])


def test_bad_arguments(tmp_path):
  out = str(tmp_path / "x.json")
  with pytest.raises(SystemExit):
    cardiac_ceiling.main(["--scales", "4", "--out", out])
  with pytest.raises(SystemExit):
    cardiac_ceiling.main(["--continuations", "7", "--out", out])
  assert not os.path.exists(out)
