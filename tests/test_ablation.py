"""The ablation driver: variants as members, paired gains, its three files."""

import json

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
