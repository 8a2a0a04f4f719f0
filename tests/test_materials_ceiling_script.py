"""scripts/materials_ceiling.py on the smoke build of materials_tb: it reads
the examples training reads, the degree of the stored k-space features
reproduces their labels, and the JSON carries its provenance."""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))

import materials_ceiling  # pylint: disable=g-import-not-at-top,wrong-import-position

from mmjax.data.materials import chern  # pylint: disable=g-import-not-at-top,wrong-import-position
from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top,wrong-import-position

LIMIT = 24
SMOKE_SIZES = {"train": 280, "val": 60, "test": 60}


def test_split_report_of_known_degrees():
  r = materials_ceiling.split_report(
      np.array(["a", "b", "c", "d"]), np.array([1, 0, 1, 1]),
      np.array([-1.02, 0.01, 2.0, 0.49]))
  # C = 1, 0, -2, 0 -> rule 1, 0, 1, 0.
  assert r["n"] == 4 and r["accuracy"] == 0.75 and r["wrong"] == 1
  assert r["wrong_ids"] == ["d"]
  assert r["confusion"] == {"label0_rule0": 1, "label0_rule1": 0,
                            "label1_rule0": 1, "label1_rule1": 2}
  assert r["abs_chern"] == {"0": 2, "1": 1, "2": 1}
  assert r["chern"] == {"-2": 1, "0": 2, "1": 1}
  assert r["abs_chern_by_label"] == {"0": {"0": 1}, "1": {"0": 1, "1": 1,
                                                          "2": 1}}
  assert r["integer_distance"]["max"] == pytest.approx(0.49)
  assert r["label_counts"] == {"0": 1, "1": 3}


def test_rule_reproduces_the_smoke_labels(data_dir, tmp_path):
  out = str(tmp_path / "ceiling.json")
  common = ["--variant", "smoke", "--data_dir", data_dir, "--out", out]
  materials_ceiling.main(common + ["--splits", "test"])
  doc = materials_ceiling.main(common + ["--limit", str(LIMIT)])
  with open(out) as f:
    assert json.load(f) == doc
  assert set(doc["variants"]) == {"smoke"}   # the second run replaced it
  e = doc["variants"]["smoke"]
  for key in ("command", "date", "commit", "versions", "hardware",
              "seconds", "builder", "split_sizes", "rule", "mesh"):
    assert key in e, key
  assert e["command"].startswith("python scripts/materials_ceiling.py")
  assert e["builder"].startswith("materials_tb/smoke/")
  assert e["split_sizes"] == SMOKE_SIZES and e["limit"] == LIMIT
  assert list(e["splits"]) == ["train", "val", "test"]
  for split, r in e["splits"].items():
    assert r["n"] == LIMIT, split
    assert r["accuracy"] == 1.0 and r["wrong"] == 0 and not r["wrong_ids"]
    assert sum(r["confusion"].values()) == LIMIT
    assert sum(r["abs_chern"].values()) == LIMIT
    assert r["confusion"]["label0_rule1"] == r["confusion"][
        "label1_rule0"] == 0
    assert r["integer_distance"]["max"] < 0.05
    assert r["integer_distance"]["p99"] <= r["integer_distance"]["max"]


def test_reads_the_examples_training_reads(data_dir):
  from mmjax.data import datasets  # pylint: disable=g-import-not-at-top
  from mmjax.data.materials import materials_tb  # pylint: disable=g-import-not-at-top
  dcfg = materials_ceiling.dataset_config("smoke", data_dir)
  assert dcfg.name == "materials_tb" and dcfg.variant == "smoke"
  src = datasets.load_dataset(dcfg).sources["val"]
  got = materials_ceiling.load_degrees(src, batch=7)
  direct = materials_tb.load_materials_tb("smoke", data_dir)["val"]
  assert len(got["ids"]) == len(direct) == SMOKE_SIZES["val"]
  exs = [direct[i] for i in range(len(direct))]
  assert got["ids"].tolist() == [ex["id"] for ex in exs]
  np.testing.assert_array_equal(got["labels"], [ex["label"] for ex in exs])
  np.testing.assert_array_equal(got["degree"], chern.degree_from_kspace_nodes(
      np.stack([ex["kspace_nodes"] for ex in exs])))
  # The default variant is the one configs/optimized.py trains on.
  from configs import optimized  # pylint: disable=g-import-not-at-top
  assert (materials_ceiling.dataset_config("", data_dir).variant
          == optimized.get_config().dataset.variant)


def test_bad_arguments_and_load_errors(tmp_path, monkeypatch):
  out = str(tmp_path / "x.json")
  for bad in (["--splits", "dev"], ["--variant", "huge"], ["--limit", "-1"],
              ["--splits", ","]):
    with pytest.raises(SystemExit):
      materials_ceiling.main(bad + ["--out", out])
  from mmjax.data import datasets  # pylint: disable=g-import-not-at-top

  def fail(dcfg):
    raise UserError("dataset materials_tb: cannot build")
  monkeypatch.setattr(datasets, "load_dataset", fail)
  with pytest.raises(SystemExit) as err:
    materials_ceiling.main(["--out", out, "--data_dir", str(tmp_path)])
  assert str(err.value) == ("materials_ceiling: dataset materials_tb: "
                            "cannot build")
  assert not os.path.exists(out)
