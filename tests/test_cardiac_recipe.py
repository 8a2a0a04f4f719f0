"""Reference recipe 004 end to end: `configs/cardiac.py:smoke` trains
through the trainer, with per-kind metrics in results.json and every
member's outputs in predictions.npz; the default config is the reference
scale and the config's options are checked."""

import json

import numpy as np
import pytest

from configs import cardiac
from mmjax.data.cardiac import network
from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib


def test_smoke_run_reports_per_kind_metrics(tmp_path):
  config = cardiac.get_config("smoke")
  config.dataset.data_dir = str(tmp_path / "data")
  workdir = workdir_lib.prepare_workdir(str(tmp_path / "run"))
  workdir_lib.write_or_check_config(config, workdir)
  results = trainer_lib.Trainer(config, workdir).run()
  assert results["epochs_run"] == 2
  test = results["test"]
  for key in ("accuracy", "balanced_accuracy", "f1", "roc_auc", "loss"):
    assert key in test, key
  assert 0.0 <= test["accuracy"] <= 1.0
  kinds = results["groups"]["kind"]
  assert set(kinds) == {"protocol", "spatial"}
  with open(f"{workdir}/results.json") as f:
    assert json.load(f)["groups"]["kind"].keys() == kinds.keys()
  with np.load(f"{workdir}/predictions.npz") as z:
    k, n, c = z["test_outputs"].shape
    assert (k, c) == (len(results["members"]), len(network.FATES))
    assert z["test_labels"].shape == z["test_kind"].shape == (n,)
  # The overfitting monitor's verdicts, read back from metrics.jsonl:
  # every epoch's train/val gap above the notice threshold, and its level.
  report = results["overfitting"]
  assert (report["gap_notice"], report["gap_warning"]) == (0.08, 0.15)
  gaps = [json.loads(l) for l in open(f"{workdir}/metrics.jsonl")]
  gaps = {r["epoch"] + 1: r["gap"] for r in gaps if r["split"] == "train_eval"}
  assert len(gaps) == 2
  assert report["epochs"] == [
      {"epoch": e, "gap": g, "level": "warning" if g > 0.15 else "notice"}
      for e, g in sorted(gaps.items()) if g > 0.08]
  assert report["warnings"] == sum(g > 0.15 for g in gaps.values())


def test_reference_scale_is_the_default():
  c = cardiac.get_config()
  enc = c.model.encoders.trajectory
  assert (enc.type, enc.width, enc.depth, enc.num_heads) == (
      "residual_attention", 160, 3, 4)
  assert tuple(enc.dropouts) == (0.1, 0.2, 0.3) and enc.positions
  assert c.model.encoders.position.type == "mlp"
  assert c.model.encoders.position.widths == (16,)
  assert (c.model.fusion, c.model.head_widths) == ("concat", (160,))
  assert c.model.dtype == "bfloat16"
  assert (c.num_epochs, c.batch_size) == (60, 32)
  assert c.dataset.scale == 3 and not c.dataset.genes_only
  # The default is the progressive-scaling driver over the nested scales.
  assert c.driver == "progressive" and c.dataset.train_scale == 0
  assert tuple(c.progressive.scales) == (1, 2, 3)
  assert (c.progressive.seeds, c.progressive.mode) == (3, "in_turn")
  assert cardiac.get_config("vmapped").progressive.mode == "vmapped"
  assert dict(c.loss.terms) == {"cross_entropy": 1.0}
  assert dict(c.loss.label_smoothing) == dict(start=0.15, end=0.045,
                                              shape="linear")
  assert dict(c.optimizer.weight_decay) == dict(start=0.01, end=0.10,
                                                shape="linear")
  assert c.schedule.name == "warmup_cosine_restarts"
  assert (c.early_stopping.metric, c.early_stopping.patience) == (
      "accuracy", 15)
  assert c.members.replicates == 3
  one = cardiac.get_config("scale1")
  assert (one.dataset.scale, one.dataset.train_scale) == (3, 1)
  assert "driver" not in one
  assert cardiac.get_config("cpu,scale2").dataset.train_scale == 2
  assert cardiac.get_config("cpu").model.dtype == "float32"


@pytest.mark.parametrize("arg,match", [
    ("nope", "unknown option 'nope'"),
    ("scale1,scale3", "choose one scale of scale1, scale2, scale3, got "
                      "scale1, scale3"),
    ("in_turn,vmapped", "choose one mode of in_turn, vmapped"),
    ("scale1,in_turn", "scale1 is one run; in_turn is a mode"),
])
def test_bad_options_name_the_problem(arg, match):
  with pytest.raises(ValueError, match=match):
    cardiac.get_config(arg)
