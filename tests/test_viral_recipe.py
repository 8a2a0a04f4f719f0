"""Reference recipe 003 end to end: `configs/viral.py:smoke` trains through
the trainer, with the confidence head's metrics and the per-kind metrics
in results.json; the config's options are checked."""

import json
import os
import sys

import numpy as np
import pytest

from configs import viral
from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import pool_folds  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_smoke_run_reports_confidence_and_per_kind_metrics(tmp_path):
  config = viral.get_config("smoke")
  config.dataset.data_dir = str(tmp_path / "data")
  workdir = workdir_lib.prepare_workdir(str(tmp_path / "run"))
  workdir_lib.write_or_check_config(config, workdir)
  results = trainer_lib.Trainer(config, workdir).run()
  test = results["test"]
  for key in ("roc_auc", "accuracy", "f1", "precision", "recall", "ece",
              "confidence_ece", "accuracy_at_50", "accuracy_at_80"):
    assert key in test, key
  assert 0.0 <= test["roc_auc"] <= 1.0
  # Each kind of negative against the intact windows, and each genome.
  kinds = results["groups"]["kind"]
  assert set(kinds) == {"lof_stop", "lof_frameshift", "lof_start",
                        "shuffle"}
  assert "group" in results["groups"]
  with open(f"{workdir}/results.json") as f:
    assert json.load(f)["groups"]["kind"].keys() == kinds.keys()
  # predictions.npz: every member's test outputs (2 logits + confidence),
  # which scripts/pool_folds.py scores as results.json does.
  with np.load(f"{workdir}/predictions.npz") as z:
    k, n, c = z["test_outputs"].shape
    assert (k, c) == (len(results["members"]), 3)
    assert z["test_labels"].shape == z["test_kind"].shape == (n,)
  out = tmp_path / "pooled.json"
  pool_folds.main([workdir, workdir, "--group", "kind", "--reference",
                   "intact", "--out", str(out)])
  pooled = json.loads(out.read_text())
  aucs = [m["test"]["roc_auc"] for m in results["members"]]
  assert pooled["pooled"]["roc_auc"]["mean"] == pytest.approx(np.mean(aucs))
  assert set(pooled["per_group"]["values"]) == set(kinds)


def test_reference_scale_is_the_default():
  c = viral.get_config()
  enc = c.model.encoders.genome
  assert (enc.width, enc.depth, enc.num_heads) == (512, 8, 16)
  assert c.model.dtype == "bfloat16"
  assert (c.loss.focal_alpha, c.loss.gamma) == (0.25, 2.0)
  assert (c.learning_rate, c.optimizer.weight_decay) == (1e-4, 1e-5)
  assert (c.num_epochs, c.batch_size) == (200, 64)
  assert c.early_stopping.metric == "roc_auc"
  assert viral.get_config("cellular").dataset.variant == "viral_vs_cellular"
  assert viral.get_config("lof").dataset.kinds == viral.LOF_KINDS


@pytest.mark.parametrize("arg,match", [
    ("nope", "unknown option 'nope'"),
    ("lof,shuffle", "choose lof or shuffle"),
    ("cellular,lof", "negatives of viral_viability"),
])
def test_bad_options_name_the_problem(arg, match):
  with pytest.raises(ValueError, match=match):
    viral.get_config(arg)
