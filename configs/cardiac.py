r"""Reference recipe 004, `cardiac`: the fate of a cardiac differentiation
trajectory (6 classes) from its first 80 time steps.

  python launch.py --config=configs/cardiac.py --workdir=runs/cardiac
  python launch.py --config=configs/cardiac.py:cpu --workdir=runs/cardiac_cpu
  python launch.py --config=configs/cardiac.py:cpu,scale1 --workdir=...

The argument is a comma-separated list of options:
  scale1 | scale2 | scale3 (default)   the builder config: 6,500 / 9,750 /
            13,000 examples (the reference recipe's progressive scales;
            one per run, so the scales are three runs).
  cpu       the scale whose results are reported on 2 CPU cores:
            transformer width 64 (160) with 2 layers (3) and MLP ratio 2
            (4), token and head width 64 (160); fp32 compute (bf16: XLA's
            CPU backend has no fast bf16 matmuls); 8 epochs (60), warm
            restarts every 4 epochs (T_0 20, T_mult 2), patience 5 (15),
            the gap monitor on 512 training examples (2,048); the label
            smoothing and weight decay schedules span the 8 epochs.
  smoke     a few trajectories and 2 epochs, for tests.

Data (mmjax/data/cardiac, the `cardiac` TFDS builder): simulated noisy
trajectories of the Herrmann et al. (2012) Boolean cardiac GRN (HillCube
dynamics, chemical-Langevin noise), 80 steps of dt 0.125 tau (t in (0, 10]
tau), all 15 nodes (13 genes and the 2 signals), labelled by the fixed
point reached; protocol examples class-balanced by rejection, spatial ones
with a medial-lateral position; split 65/25/10 stratified by kind and
fate. Not the reference recipe's "230K+ real cells": a simulation whose
Bayes-optimal accuracy is computable (ceiling.py). With
--config.dataset.genes_only=True the 2 signal columns are dropped (13
features): that ceiling is then only an upper bound.

Model: a pre-LayerNorm transformer on the trajectory (the `transformer`
encoder, sinusoidal positions, mean + max pooling) and an MLP (16) on the
position, concatenated; a BatchNorm / ReLU / dropout head. Sized by the
reference recipe's table row for > 5K sequences (all three scales): width
160, 3 layers, batch 32, 60 epochs; 4 heads.
Training as the reference recipe: cross-entropy with label smoothing from
0.15 down to 0.045 and AdamW weight decay from 0.01 up to 0.10, both
linear over the epochs; cosine annealing with warm restarts (T_0 20,
T_mult 2: restarts at epoch 20, the second cycle ends with the run);
bf16 compute with fp32 parameters (mixed precision); clipping 1.0; early
stopping on validation accuracy after 15 epochs without improvement,
restoring the best weights; train/val gap warnings at 0.08 and 0.15;
3 seeds as vmapped members.

Deviations and choices (the reference recipe does not give them): lr 1e-3
with no warmup; 4 attention heads; clipping at norm 1.0; one dropout rate (0.1) in the transformer and
0.3 in the head instead of dropout increasing layer by layer; the
transformer's own residual blocks and LayerNorm instead of BatchNorm in
the sequence model (BatchNorm stays in the head); the "adaptive batch
size" is the table's batch 32 at every scale (all are > 5K).
"""

import ml_collections

from configs import optimized

SCALES = ("scale1", "scale2", "scale3")
OPTIONS = SCALES + ("cpu", "smoke")


def _options(arg):
  opts = set(optimized.parse_options(arg, OPTIONS, "configs/cardiac.py"))
  scales = sorted(opts & set(SCALES))
  if len(scales) > 1:
    raise ValueError("configs/cardiac.py: choose one scale of "
                     f"{', '.join(SCALES)}, got {', '.join(scales)}")
  return int((scales or ["scale3"])[0][-1]), opts


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  scale, opts = _options(arg)
  cpu = "cpu" in opts or "smoke" in opts
  c = optimized.get_config()
  c.task = "classification"
  c.num_epochs = 8 if cpu else 60
  c.batch_size = 32
  c.eval_batch_size = 256
  c.learning_rate = 1e-3

  c.dataset = ml_collections.ConfigDict(dict(
      name="cardiac",
      scale=scale,        # 1 | 2 | 3: builder config scale<scale>
      data_dir="", split_seed=0, max_train=0,
      # The train split (8,450 x 80 x 15 float32 at scale 3: 41 MB) on
      # the device, batches gathered in the step.
      device_resident=True,
      genes_only=False,   # True: drop the 2 signal columns (13 features)
      size=0,             # > 0: a small build, per_type = size (tests)
      limit=0,            # > 0: at most this many examples per split
      budgets=dict(trajectory=dict(length=80)),
  ))

  width = 64 if cpu else 160
  c.model = ml_collections.ConfigDict(dict(
      modalities=("trajectory", "position"),
      encoders=dict(
          trajectory=dict(type="transformer", width=width,
                          depth=2 if cpu else 3, num_heads=4,
                          mlp_ratio=2 if cpu else 4, dropout=0.1),
          position=dict(type="mlp", widths=(16,), dropout=0.0)),
      token_dim=width, fusion="concat", num_heads=4,
      head_widths=(width,), head_norm="batch", head_activation="relu",
      head_dropout=0.3, num_outputs=6,
      # Mixed precision: bf16 compute, fp32 parameters, loss and softmax.
      dtype="float32" if cpu else "bfloat16"))

  c.loss = ml_collections.ConfigDict(dict(
      terms=dict(cross_entropy=1.0),
      label_smoothing=dict(start=0.15, end=0.045, shape="linear"),
      diversity_weight=0.0))
  c.optimizer = ml_collections.ConfigDict(dict(
      c.optimizer.to_dict(),
      weight_decay=dict(start=0.01, end=0.10, shape="linear")))
  # Warm restarts: at epoch 20, the second cycle (40) ends with the run;
  # :cpu, two cycles of 4.
  c.schedule = ml_collections.ConfigDict(dict(
      name="warmup_cosine_restarts", warmup_epochs=0, t_0=4 if cpu else 20,
      t_mult=1 if cpu else 2, eta_min=1e-6))
  c.early_stopping = ml_collections.ConfigDict(dict(
      metric="accuracy", mode="max", patience=5 if cpu else 15,
      min_delta=0.0, restore_best=True))
  c.members.replicates = 3
  # The reference recipe's overfitting thresholds on the train - val
  # accuracy gap.
  c.monitor.train_subset = 512 if cpu else 2048
  c.monitor.gap_notice = 0.08
  c.monitor.gap_warning = 0.15
  c.log_every_steps = 50
  c.checkpoint_every_steps = 500

  if "smoke" in opts:
    optimized.smoke_run(c)
    del c.dataset["variant"]  # smoke_run's materials_tb key; unused here.
    c.num_epochs = 2
    c.batch_size = 16
    c.eval_batch_size = 32
    c.dataset.size = 12   # 12 protocol trajectories per fate + 6 spatial
    c.model.encoders.trajectory.update(width=16, depth=1, num_heads=2,
                                       mlp_ratio=2)
    c.model.token_dim = 16
    c.model.head_widths = (16,)
    c.monitor.train_subset = 16
  return c
