"""The ablation driver: variants as members, paired gains, its three files."""

import json
import os

import pytest

from conftest import run_launch

from configs import extreme_boost, optimized
from mmjax.drivers import ablation


def test_variant_configs_change_one_thing():
  base = optimized.get_config()
  kfold = ablation.variant_config(base, "kfold", 3)
  assert len(kfold.members.seeds) == 3 * base.kfold.num_folds
  assert kfold.members.holdout_fold[:5] == (0, 1, 2, 3, 4)
  assert set(kfold.members.groups) == {"rep0", "rep1", "rep2"}
  cap = ablation.variant_config(base, "capacity", 3)
  assert cap.model.token_dim == 512 and cap.model.fusion == base.model.fusion
  full = ablation.variant_config(base, "full_recipe", 2)
  assert full.model.fusion == "cross_modal"
  assert len(full.members.seeds) == 2 * len(
      extreme_boost.get_config().members.seeds)
  assert full.num_epochs == base.num_epochs


def test_ablation_smoke_writes_table(tmp_path):
  proc = run_launch(tmp_path, "--config.ablation.variants=('tta',)",
                    config="configs/extreme_boost.py:ablation_smoke",
                    timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert {"ablation.md", "ablation.png", "ablation.json"} <= {
      p.name for p in tmp_path.iterdir()}
  summary = json.loads((tmp_path / "ablation.json").read_text())
  row = summary["rows"][0]
  assert row["variant"] == "tta" and row["expected_gain"] == 0.5
  assert len(row["per_seed"]) == summary["seeds"] == 2
  base = json.loads((tmp_path / "baseline" / "results.json").read_text())
  tta = [100 * m["test"]["accuracy"] for m in base["members"]]
  assert [round(x, 2) for x in tta] == row["per_seed"]
  # tta reuses the baseline's run: its members and its time.
  assert row["members"] == len(base["members"]) == 2
  assert row["train_time_s"] == base["train_time_s"] > 0
  assert summary["baseline_train_time_s"] == base["train_time_s"]
  assert "| tta | +0.5 |" in (tmp_path / "ablation.md").read_text()


def test_split_replicates_keeps_each_member_as_in_one_run():
  base = optimized.get_config()
  full = ablation.variant_config(base, "full_recipe", 5)  # 5 x 9 members
  parts = ablation.split_replicates(full, 25)
  assert [len(p.members.seeds) for p in parts] == [18, 18, 9]
  assert [sorted(p.members.groups) for p in parts] == [
      ["rep0", "rep1"], ["rep2", "rep3"], ["rep4"]]
  m = full.members
  for key in ("seeds", "holdout_fold", "mixup_alpha"):
    assert sum((tuple(p.members[key]) for p in parts), ()) == tuple(m[key])
  for p in parts:  # a part's group r holds replicate r's members
    for g, idx in p.members.groups.items():
      assert [p.members.seeds[i] for i in idx] == [
          m.seeds[i] for i in m.groups[g]]
  assert ablation.split_replicates(full, 0) == [full]
  assert ablation.split_replicates(full, 45) == [full]
  with pytest.raises(ValueError, match="max_members_per_run=5"):
    ablation.split_replicates(full, 5)


def test_merge_results_shifts_member_indices():
  def run(n, reps, t):
    return {"members": [{"test": {"accuracy": 0.5}}] * n, "train_time_s": t,
            "stages": {**{r: {"members": list(i)} for r, i in reps.items()},
                       "super_ensemble": {"members": list(range(n))}}}
  merged = ablation.merge_results([run(4, {"rep0": (0, 1), "rep1": (2, 3)}, 10.0),
                                   run(2, {"rep2": (0, 1)}, 5.0)])
  assert len(merged["members"]) == 6 and merged["train_time_s"] == 15.0
  assert {k: v["members"] for k, v in merged["stages"].items()} == {
      "rep0": [0, 1], "rep1": [2, 3], "rep2": [4, 5]}


def test_a_variant_finished_in_one_run_is_read_back_under_a_split_limit(
    tmp_path, monkeypatch):
  """Lowering max_members_per_run (it trades memory and speed, not results)
  keeps a variant that already finished as one run; one not yet finished
  trains in parts."""
  config = extreme_boost.get_config("ablation_smoke")
  config.unlock()
  config.ablation.variants = ("kfold",)
  config.ablation.max_members_per_run = 5  # kfold: 2 replicates x 5 folds
  calls = []

  def fake_train_and_evaluate(c, workdir):
    n = len(c.members.seeds)
    calls.append((os.path.relpath(workdir, tmp_path), n))
    stages = {g: {"members": list(i), "test": {"accuracy": 0.5}}
              for g, i in c.members.get("groups", {}).items()}
    return {"members": [{"test": {"accuracy": 0.5}}] * n, "stages": stages,
            "train_time_s": 1.0}, False

  monkeypatch.setattr(ablation.trainer_lib, "train_and_evaluate",
                      fake_train_and_evaluate)
  (tmp_path / "kfold").mkdir()
  (tmp_path / "kfold" / "results.json").write_text("{}")
  ablation.run(config, str(tmp_path))
  assert calls == [("baseline", 2), ("kfold", 10)]
  os.remove(tmp_path / "kfold" / "results.json")
  calls.clear()
  ablation.run(config, str(tmp_path))
  assert calls == [("baseline", 2), (os.path.join("kfold", "part0"), 5),
                   (os.path.join("kfold", "part1"), 5)]
