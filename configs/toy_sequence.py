r"""`toy_sequence`: the smallest recipe of a `sequence` modality, for tests
and as a template for a new recipe (a config, a dataset, an encoder).

  python launch.py --config=configs/toy_sequence.py:classification
  python launch.py --config=configs/toy_sequence.py:regression

A one-block transformer over variable-length sequences (mmjax/data/
toy_sequence.py: labels are exact functions of the sequence). Regression
uses the combined loss MSE + 0.5 MAE + 0.3 Huber, early-stops on validation
R^2 and trains a k-fold member (quantile-binned strata) beside a full one;
classification early-stops on validation ROC-AUC.
"""

import ml_collections

from configs import optimized


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  task = arg or "classification"
  if task not in ("classification", "regression"):
    raise ValueError(f"configs/toy_sequence.py: unknown variant '{arg}' "
                     "(known: classification, regression)")
  c = optimized.get_config()
  c.task = task
  c.num_epochs = 6
  c.batch_size = 32
  c.eval_batch_size = 64
  c.learning_rate = 2e-3
  c.log_every_steps = 5
  c.checkpoint_every_steps = 20
  c.dataset = ml_collections.ConfigDict(dict(
      name="toy_sequence", variant=task, num_examples=600, data_dir="",
      split_seed=0, max_train=0, device_resident=False,
      budgets=dict(signal=dict(length=24))))
  c.model = ml_collections.ConfigDict(dict(
      modalities=("signal",),
      encoders=dict(signal=dict(type="transformer", width=32, depth=1,
                                num_heads=4, mlp_ratio=2, dropout=0.0)),
      token_dim=32, fusion="concat", num_heads=4, head_widths=(32,),
      head_dropout=0.0, num_outputs=2 if task == "classification" else 1,
      dtype="float32"))
  c.schedule = ml_collections.ConfigDict(dict(
      name="warmup_cosine", warmup_epochs=1, eta_min=0.0, per_epoch=True))
  c.monitor.train_subset = 128
  if task == "classification":
    c.loss = ml_collections.ConfigDict(dict(
        terms=dict(cross_entropy=1.0), gamma=2.0, focal_alpha=-1.0,
        label_smoothing=0.0, diversity_weight=0.0))
    c.early_stopping.metric, c.early_stopping.mode = "roc_auc", "max"
  else:
    c.loss = ml_collections.ConfigDict(dict(
        terms=dict(mse=1.0, mae=0.5, huber=0.3), huber_delta=1.0,
        label_smoothing=0.0, diversity_weight=0.0))
    c.early_stopping.metric, c.early_stopping.mode = "r2", "max"
    c.members = ml_collections.ConfigDict(dict(
        seeds=(0, 1), mixup_alpha=(0.0, 0.0), holdout_fold=(0, -1),
        groups=dict(kfold=(0,), full=(1,))))
  return c
