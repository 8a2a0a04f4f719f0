"""scripts/cardiac_baselines.py --quick on a tiny build (dataset.size 6:
36 protocol + 3 spatial examples): the JSON holds every scale, feature set
and model with its provenance, the accuracies lie in [0, 1], the scales'
training rows nest, and a bad --scales exits with a one-line error."""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))

import cardiac_baselines  # pylint: disable=g-import-not-at-top,wrong-import-position

SIZE = 6
N_BUILD = 6 * SIZE + SIZE // 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("cardiac_baselines"))


def test_train_rows_nest():
  levels = np.array([3, 1, 2, 1, 3, 2, 2, 1, 4])
  rows = {s: cardiac_baselines.train_rows(levels, s) for s in (1, 2, 3)}
  assert rows[1].tolist() == [1, 3, 7]
  assert rows[2].tolist() == [1, 2, 3, 5, 6, 7]
  assert rows[3].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
  assert set(rows[1]) <= set(rows[2]) <= set(rows[3])


def test_scale1_trains_on_a_subset_of_scale2(data_dir):
  splits, _ = cardiac_baselines.load_splits(data_dir, SIZE)
  tr = splits["train"]
  ids = {s: set(tr["ids"][cardiac_baselines.train_rows(tr["levels"], s)])
         for s in (1, 2, 3)}
  assert ids[1] and ids[1] <= ids[2] <= ids[3] == set(tr["ids"])
  assert sum(len(s["ids"]) for s in splits.values()) == N_BUILD
  assert splits["train"]["trajectories"].shape[1:] == (80, 15)


def _check_split(m):
  assert m.get("n", 1) > 0  # The gb mean and sd carry no n.
  for key in ("accuracy", "macro_f1"):
    assert 0.0 <= m[key] <= 1.0, (key, m)
  assert set(m["accuracy_by_kind"]) == {"protocol", "spatial"}
  for v in m["accuracy_by_kind"].values():
    assert v is None or 0.0 <= v <= 1.0, m


def _check_run(r):
  for name in ("train", "val", "test"):
    _check_split(r[name])
  assert r["gap"] == pytest.approx(r["train"]["accuracy"]
                                   - r["val"]["accuracy"])
  assert r["fit_seconds"] >= 0


def test_quick_run_writes_json(data_dir, tmp_path, capsys):
  out = str(tmp_path / "baselines.json")
  doc = cardiac_baselines.main(
      ["--quick", "--size", str(SIZE), "--data_dir", data_dir,
       "--scales", "2,1", "--gb_seeds", "0,1", "--out", out])
  with open(out) as f:
    assert json.load(f) == doc
  for key in ("command", "date", "commit", "versions", "hardware",
              "arguments", "builder", "seconds", "features", "models"):
    assert key in doc, key
  assert doc["command"].startswith("python scripts/cardiac_baselines.py")
  assert doc["arguments"]["scales"] == [1, 2]
  assert doc["arguments"]["gb_seeds"] == [0, 1]
  assert doc["arguments"]["quick"] and doc["arguments"]["size"] == SIZE
  assert set(doc["scales"]) == {"scale1", "scale2"}
  s1, s2 = doc["scales"]["scale1"], doc["scales"]["scale2"]
  assert s1["n"]["train"] <= s2["n"]["train"]
  # Every scale is validated and tested on the same examples.
  assert s1["ids_sha256"]["val"] == s2["ids_sha256"]["val"]
  assert s1["ids_sha256"]["test"] == s2["ids_sha256"]["test"]
  assert sum(s1["n"].values()) <= N_BUILD
  for entry in (s1, s2):
    assert set(entry["features"]) == {"window", "last_state"}
    assert entry["features"]["window"]["num_features"] == 80 * 15 + 1
    assert entry["features"]["last_state"]["num_features"] == 15 + 1
    for row in entry["features"].values():
      _check_run(row["lr"])
      assert row["lr"]["n_iter"] >= 1
      gb = row["gb"]
      assert [r["seed"] for r in gb["per_seed"]] == [0, 1]
      for r in gb["per_seed"]:
        _check_run(r)
      _check_run(gb["mean"])
      assert gb["mean"]["test"]["accuracy"] == pytest.approx(
          np.mean([r["test"]["accuracy"] for r in gb["per_seed"]]))
      assert gb["sd"]["test"]["accuracy"] >= 0
  printed = capsys.readouterr().out
  assert "| scale | features | model |" in printed
  assert printed.count("| 1 | window | gb |") == 1


@pytest.mark.parametrize("scales", ["4", "1,x", ","])
def test_bad_scales(tmp_path, capsys, scales):
  out = str(tmp_path / "x.json")
  with pytest.raises(SystemExit) as e:
    cardiac_baselines.main(["--scales", scales, "--out", out])
  assert e.value.code != 0
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "--scales" in err, err
  assert not os.path.exists(out)
