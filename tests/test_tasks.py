"""Tasks, registries and early stopping on any metric: a regression and a
classification recipe of the `sequence` kind train end to end; loss terms
and metrics match PyTorch / SciPy."""

import json

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch
from scipy import stats

from configs import toy_sequence
from mmjax.data import splits
from mmjax.tasks import build_task
from mmjax.training import early_stopping
from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib


def _run(config, tmp_path):
  workdir = workdir_lib.prepare_workdir(str(tmp_path))
  workdir_lib.write_or_check_config(config, workdir)
  results = trainer_lib.Trainer(config, workdir).run()
  rows = [json.loads(l) for l in open(f"{workdir}/metrics.jsonl")]
  return results, rows


def test_group_rows_with_and_without_a_reference():
  from mmjax.training import evaluation  # pylint: disable=g-import-not-at-top
  values = np.asarray(["a", "ref", "b", "a", "ref"])
  rows = evaluation.group_rows(values, None)
  assert sorted(rows) == ["a", "b", "ref"]
  np.testing.assert_array_equal(rows["a"], [1, 0, 0, 1, 0])
  rows = evaluation.group_rows(values, "ref")
  assert sorted(rows) == ["a", "b"]  # each value against the reference
  np.testing.assert_array_equal(rows["a"], [1, 1, 0, 1, 1])
  np.testing.assert_array_equal(rows["b"], [0, 1, 1, 0, 1])


def test_regression_recipe_trains_end_to_end(tmp_path):
  results, rows = _run(toy_sequence.get_config("regression"), tmp_path)
  assert results["task"] == "regression"
  for key in ("r2", "pearson", "spearman", "mae", "rmse", "loss"):
    assert np.isfinite(results["test"][key]), key
  assert results["test"]["r2"] > 0.8  # y is a mean the model can pool.
  assert results["best_stage_rule"] == "highest val r2"
  # Metrics per value of the dataset's metric-group key, on its rows.
  by_length = results["groups"]["length"]
  assert set(by_length) == {"short", "long"}
  stage = results["best_stage"]
  n_test = sum(by_length[v]["stages"][stage]["n"]["test"] for v in by_length)
  assert n_test == 90  # 15% of 600: every test row in exactly one value
  for v in by_length:
    assert np.isfinite(by_length[v]["stages"][stage]["test"]["r2"])
  # A k-fold member (quantile-binned strata) has a held-out estimate.
  kfold = [m for m in results["members"] if m["holdout_fold"] >= 0]
  assert len(kfold) == 1 and kfold[0]["holdout"]["r2"] > 0.8
  # The monitor scored a training subset in eval mode each epoch.
  assert sum(r["split"] == "train_eval" for r in rows) == results[
      "epochs_run"]


def test_classification_recipe_trains_end_to_end(tmp_path):
  config = toy_sequence.get_config("classification")
  results, _ = _run(config, tmp_path)
  assert results["task"] == "classification"
  for key in ("accuracy", "balanced_accuracy", "precision", "recall", "f1",
              "roc_auc"):
    assert 0.0 <= results["test"][key] <= 1.0, key
  assert results["test"]["roc_auc"] > 0.9


def test_early_stopping_on_a_metric_to_maximise():
  es = early_stopping.EarlyStopping("max", patience=2, min_delta=0.01)
  assert es.update(0.5, 10, 0) == (True, False)
  assert es.update(0.505, 20, 1) == (False, False)  # Within min_delta.
  assert es.update(float("nan"), 30, 2) == (False, True)
  assert es.state["best"] == 0.5 and es.state["best_epoch"] == 0
  resumed = early_stopping.EarlyStopping("max", 2, 0.01, es.state)
  assert resumed.stopped


def test_bad_task_keys_are_one_line_errors():
  c = toy_sequence.get_config("regression")
  c.loss.terms = {"mse": 1.0, "focal": 1.0}
  with pytest.raises(ValueError, match="loss.terms.focal: not a regression"):
    build_task(c)
  c = toy_sequence.get_config("regression")
  c.task = "ranking"
  with pytest.raises(ValueError, match="task: unknown task 'ranking'"):
    build_task(c)


def _loss_cfg(**kw):
  return ml_collections.ConfigDict(kw)


def test_combined_regression_loss_matches_torch():
  rng = np.random.default_rng(0)
  pred, y = rng.normal(size=(32, 1)) * 2, rng.normal(size=(32, 1))
  task = build_task(ml_collections.ConfigDict(dict(
      task="regression", model=dict(num_outputs=1),
      loss=dict(terms=dict(mse=1.0, mae=0.5, huber=0.3), huber_delta=1.0))))
  got = task.loss(jnp.asarray(pred, jnp.float32),
                  task.targets(jnp.asarray(y[:, 0], jnp.float32))).mean()
  p, t = torch.tensor(pred), torch.tensor(y)
  want = (torch.nn.functional.mse_loss(p, t) +
          0.5 * torch.nn.functional.l1_loss(p, t) +
          0.3 * torch.nn.functional.huber_loss(p, t, delta=1.0))
  np.testing.assert_allclose(got, want.item(), rtol=1e-5)


def test_focal_alpha_matches_torch_binary_focal():
  rng = np.random.default_rng(1)
  logits, labels = rng.normal(size=(40, 2)) * 2, rng.integers(0, 2, 40)
  task = build_task(ml_collections.ConfigDict(dict(
      task="classification", model=dict(num_outputs=2),
      loss=dict(terms=dict(focal=1.0), gamma=2.0, focal_alpha=0.25))))
  got = task.loss(jnp.asarray(logits, jnp.float32),
                  task.targets(jnp.asarray(labels)))
  lg, y = torch.tensor(logits), torch.tensor(labels)
  ce = torch.nn.functional.cross_entropy(lg, y, reduction="none")
  alpha_t = torch.where(y == 1, 0.25, 0.75)
  want = alpha_t * (1 - torch.exp(-ce)) ** 2 * ce
  np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-7)


def test_regression_metrics_are_their_definitions():
  rng = np.random.default_rng(2)
  y = rng.normal(size=200)
  p = 0.8 * y + 0.3 * rng.normal(size=200) + 0.1
  task = build_task(ml_collections.ConfigDict(dict(
      task="regression", model=dict(num_outputs=1),
      loss=dict(terms=dict(mse=1.0)))))
  m = task.metrics(p[:, None], y)
  np.testing.assert_allclose(
      m["r2"], 1 - ((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
  np.testing.assert_allclose(m["pearson"], stats.pearsonr(p, y)[0])
  np.testing.assert_allclose(m["spearman"], stats.spearmanr(p, y)[0])
  np.testing.assert_allclose(m["rmse"], np.sqrt(((p - y) ** 2).mean()))


def test_regression_folds_span_the_target_range():
  y = np.random.default_rng(3).normal(size=500)
  task = build_task(ml_collections.ConfigDict(dict(
      task="regression", model=dict(num_outputs=1),
      loss=dict(terms=dict(mse=1.0)))))
  folds = splits.assign_folds(task.strata(y, 5), 5, 0)
  for f in range(5):
    part = y[folds == f]
    assert abs(len(part) - 100) <= 5
    assert part.min() < np.quantile(y, 0.1) and part.max() > np.quantile(
        y, 0.9)


def _scheduled_config():
  """Every new optimizer piece at once: parameter groups, warmup + warm
  restarts, scheduled label smoothing and weight decay."""
  c = toy_sequence.get_config("classification")
  c.num_epochs = 4
  # A float field cannot become a dict: such keys are set by replacing
  # their parent ConfigDict, as a recipe's config file does.
  c.optimizer = ml_collections.ConfigDict(dict(
      c.optimizer.to_dict(),
      lr_mults=((r"signal_encoder/.*", 0.5), (r"signal_token/.*", 1.5),
                (r"head/.*", 1.0)),
      weight_decay=dict(start=0.01, end=0.10, shape="linear")))
  c.schedule = ml_collections.ConfigDict(dict(
      name="warmup_cosine_restarts", warmup_epochs=1, t_0=1, t_mult=2,
      eta_min=0.0))
  c.loss = ml_collections.ConfigDict(dict(
      c.loss.to_dict(), label_smoothing=dict(start=0.15, end=0.045,
                                             shape="linear")))
  return c


def test_scheduled_hyperparameters_train_and_resume_exactly(tmp_path,
                                                            monkeypatch):
  import os  # pylint: disable=g-import-not-at-top
  import signal  # pylint: disable=g-import-not-at-top
  from conftest import assert_same_trees  # pylint: disable=g-import-not-at-top
  from mmjax.training import checkpoint  # pylint: disable=g-import-not-at-top
  from mmjax.training import preemption  # pylint: disable=g-import-not-at-top
  straight, rows = _run(_scheduled_config(), tmp_path / "straight")
  smoothing = [r["label_smoothing"] for r in rows
               if r["split"] == "train_epoch"]
  np.testing.assert_allclose(smoothing, [0.15, 0.115, 0.08, 0.045],
                             atol=1e-6)
  # Stopped by SIGTERM mid-epoch 2, then resumed by a fresh trainer.
  config = _scheduled_config()
  workdir = workdir_lib.prepare_workdir(str(tmp_path / "resumed"))
  workdir_lib.write_or_check_config(config, workdir)
  trainer = trainer_lib.Trainer(config, workdir)
  flush = trainer_lib.Trainer._flush  # pylint: disable=protected-access
  sent = []

  def flush_then_signal(self, pending, meta, log, step, bar):
    flush(self, pending, meta, log, step, bar)
    if not sent and step > trainer.steps_per_epoch + 2:
      sent.append(step)
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(trainer_lib.Trainer, "_flush", flush_then_signal)
  with pytest.raises(preemption.Preempted):
    trainer.run()
  monkeypatch.undo()
  resumed = trainer_lib.Trainer(config, workdir).run()
  assert resumed["test"] == straight["test"]
  pa, _ = checkpoint.final_params(tmp_path / "straight")
  pb, _ = checkpoint.final_params(workdir)
  assert_same_trees(pa, pb)


def test_replicates_report_each_stage_as_mean_and_sd(tmp_path):
  config = toy_sequence.get_config("regression")
  config.num_epochs = 2
  config.members.replicates = 3
  results, _ = _run(config, tmp_path)
  assert results["replicates"] == 3 and len(results["members"]) == 6
  assert {m["seed"] for m in results["members"]} == {0, 1, 1000, 1001,
                                                     2000, 2001}
  assert set(results["summary"]) == {"kfold", "full", "super_ensemble"}
  test = results["summary"][results["best_stage"]]["test"]
  reps = [results["stages"][f"{results['best_stage']}@{r}"]["test"]["r2"]
          for r in range(3)]
  np.testing.assert_allclose(test["r2"]["mean"], np.mean(reps))
  np.testing.assert_allclose(test["r2"]["sd"], np.std(reps, ddof=1))
  assert results["test"]["r2"] == test["r2"]["mean"]
