"""scripts/viral_baselines.py on tiny synthetic examples (no data module
needed), and on the real data module's --quick subset where it imports."""

import json
import os
import sys
import types

import numpy as np
import pytest
import threadpoolctl

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))

import viral_baselines  # pylint: disable=g-import-not-at-top,wrong-import-position

_SENSE = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT"
          if a + b + c not in ("TAA", "TAG", "TGA")]


def _orf(rng, codons):
  return "".join(rng.choice(_SENSE, size=codons))


def _viability_examples(n_groups=5, per_kind=4, codons=60, seed=0):
  """Intact = one long stop-free frame; lof = a stop or a 1-bp deletion in
  the middle; shuffle = the intact bases permuted."""
  rng = np.random.default_rng(seed)
  exs = []
  for g in range(n_groups):
    for i in range(per_kind):
      intact = _orf(rng, codons)
      mid = 3 * (codons // 2)
      variants = {
          "intact": intact,
          "lof_stop": intact[:mid] + "TAA" + intact[mid + 3:],
          "lof_frameshift": intact[:mid] + intact[mid + 1:] + "A",
          "shuffle": "".join(rng.permutation(list(intact))),
      }
      for kind, seq in variants.items():
        exs.append({"id": f"g{g}-{i}-{kind}", "sequence": seq,
                    "label": int(kind != "intact"), "kind": kind,
                    "group": f"g{g}", "table": 11})
  return exs


def _cellular_examples(n_groups=6, per_group=8, seed=0):
  """Viral groups GC-poor, cellular GC-rich: GC alone separates them."""
  rng = np.random.default_rng(seed)
  exs = []
  for g in range(n_groups):
    viral = g % 2 == 0
    p_gc = 0.35 if viral else 0.6
    for length in (300, 500):
      for i in range(per_group):
        gc = rng.random(length) < p_gc
        seq = np.where(gc, rng.choice(list("GC"), length),
                       rng.choice(list("AT"), length))
        exs.append({"id": f"c{g}-{length}-{i}", "sequence": "".join(seq),
                    "label": int(viral), "group": f"c{g}",
                    "kind": "viral" if viral else "cellular",
                    "table": 11, "length": length})
  return exs


@pytest.fixture(autouse=True)
def _one_thread():
  """As the script's default --threads: OpenMP threads spinning on a loaded
  machine make the tiny boosting fits many times slower."""
  with threadpoolctl.threadpool_limits(1):
    yield


def _fake_module():
  """Stands in for mmjax.data.viral.examples: the last group is test."""

  def make(variant, seed=0):
    del seed
    return (_viability_examples() if variant == "viral_viability"
            else _cellular_examples())

  def split_by_group(exs, seed):
    del seed
    groups = sorted({e["group"] for e in exs})
    g = np.array([groups.index(e["group"]) for e in exs])
    return (np.flatnonzero(g < len(groups) - 2),
            np.flatnonzero(g == len(groups) - 2),
            np.flatnonzero(g == len(groups) - 1))

  def group_folds(exs, k):
    groups = sorted({e["group"] for e in exs})
    # Pairs one viral and one cellular group per fold.
    return np.array([groups.index(e["group"]) // 2 % k for e in exs])

  return types.SimpleNamespace(make=make, split_by_group=split_by_group,
                               group_folds=group_folds)


def test_fit_rule_orients_and_thresholds():
  x = np.array([0.9, 0.8, 0.95, 0.4, 0.5, 0.45])
  y = np.array([0, 0, 0, 1, 1, 1])
  sign, threshold = viral_baselines.fit_rule(x, y)
  assert sign == -1.0 and -0.8 < threshold < -0.5
  # Ties broken toward the lowest threshold of best accuracy.
  sign, threshold = viral_baselines.fit_rule([0, 1, 2, 3], [0, 1, 0, 1])
  assert sign == 1.0 and threshold == pytest.approx(0.5)


def test_viability_baselines_on_synthetic_examples():
  module = _fake_module()
  exs = module.make("viral_viability")
  split = module.split_by_group(exs, 0)
  out = viral_baselines.viability_baselines(exs, split, seeds=[0, 1],
                                            gb_iters=10, log=lambda _: None)
  assert set(out) == {"lof", "shuffle", "all"}
  assert out["lof"]["kinds"] == ["lof_frameshift", "lof_stop"]
  assert out["lof"]["sizes"]["test"]["groups"] == ["g4"]
  rule = out["lof"]["test"]["orf_rule"]
  # A mid-sequence stop halves the longest ORF: the rule, oriented toward
  # short ORFs, ranks every stop below every intact example, in the test
  # group and out of group. (A frameshift may by chance leave a stop-free
  # shifted frame as long as the intact one: a tie.)
  assert rule["per_seed"][0]["sign"] == -1.0
  assert rule["per_seed"][0]["roc_auc_by_kind"]["lof_stop"] == 1.0
  assert rule["summary"]["roc_auc"]["mean"] > 0.8
  assert rule["summary"]["accuracy"]["mean"] > 0.8
  logo = out["lof"]["logo"]["orf_rule"]
  assert logo["per_seed"][0]["roc_auc_by_kind"]["lof_stop"] == 1.0
  assert logo["summary"]["roc_auc"]["mean"] > 0.8
  assert set(out["lof"]["logo"]["orf_rule"]["per_seed"][0]
             ["roc_auc_by_group"]) == {f"g{g}" for g in range(5)}
  gb = out["all"]["test"]["kmer_gb"]
  assert [r["seed"] for r in gb["per_seed"]] == [0, 1]
  assert gb["summary"]["roc_auc"]["n"] == 2
  assert len(out["all"]["test"]["kmer_lr"]["per_seed"]) == 1
  for method in viral_baselines.VIABILITY_METHODS:
    for metric in viral_baselines.METRICS:
      assert out["all"]["test"][method]["summary"][metric]["mean"] is not None


def test_cellular_baselines_on_synthetic_examples():
  module = _fake_module()
  exs = module.make("viral_vs_cellular")
  out = viral_baselines.cellular_baselines(
      exs, module.group_folds(exs, 3), seeds=[0], gb_iters=10,
      log=lambda _: None)
  assert set(out) == {"300", "500"}
  row = out["500"]
  assert row["folds"] == {"0": ["c0", "c1"], "1": ["c2", "c3"],
                          "2": ["c4", "c5"]}
  gc = row["gc_lr"]["per_seed"][0]
  assert gc["roc_auc"] > 0.95
  assert set(gc["roc_auc_per_fold"]) == {"0", "1", "2"}
  assert set(gc["roc_auc_per_genome"]) == {f"c{g}" for g in range(6)}


def test_main_writes_and_merges_json(tmp_path):
  out = str(tmp_path / "viral_baselines.json")
  module = _fake_module()
  viral_baselines.main(["--variant", "viral_viability", "--quick",
                        "--seeds", "0,1", "--out", out], module=module)
  viral_baselines.main(["--variant", "viral_vs_cellular", "--quick",
                        "--seeds", "0", "--folds", "3", "--out", out],
                       module=module)
  doc = json.load(open(out))
  assert set(doc["variants"]) == set(viral_baselines.VARIANTS)
  via = doc["variants"]["viral_viability"]
  assert via["command"].endswith("--seeds 0,1 --out " + out)
  assert via["quick"] and via["fit_on"] == "train + val"
  for key in ("date", "commit", "versions", "seconds", "results"):
    assert key in via
  assert set(doc["variants"]["viral_vs_cellular"]["results"]) == {"300",
                                                                   "500"}


def test_quick_on_the_real_data_module(tmp_path):
  pytest.importorskip("mmjax.data.viral.examples")
  out = str(tmp_path / "viral_baselines.json")
  doc = viral_baselines.main(["--quick", "--seeds", "0", "--out", out])
  for variant in viral_baselines.VARIANTS:
    assert doc["variants"][variant]["results"], variant
