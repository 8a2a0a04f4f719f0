r"""Reference recipe 000, `optimized`: the multi-modal topological-materials classifier.

  python launch.py --config=configs/optimized.py --workdir=runs/optimized
  python launch.py --config=configs/optimized.py:smoke --workdir=runs/smoke

Crystal-structure GCN, k-space GCN, scalar and decomposition MLPs, 8-head
self-attention across the four modality tokens of each sample, a
BatchNorm/ReLU/Dropout(0.3) head; focal loss (gamma 2) + 0.1 x feature
diversity; AdamW 2e-4 / wd 1e-4, 5 warmup epochs + cosine, clipping 1.0;
early stopping (patience 10, min_delta 0.001) restoring the best weights.
"""

import ml_collections


def parse_options(arg: str | None, known, config: str) -> list:
  """The comma-separated options of `--config=<config>:<arg>`, in order,
  each checked against `known` (ValueError naming the first unknown)."""
  opts = [o.strip() for o in (arg or "").split(",") if o.strip()]
  for o in opts:
    if o not in known:
      raise ValueError(f"{config}: unknown option '{o}' "
                       f"(known: {', '.join(known)})")
  return opts


def smoke_run(c: ml_collections.ConfigDict) -> None:
  """The tiny data and run length of every recipe's `:smoke` variant."""
  c.num_epochs = 3
  c.batch_size = 32
  c.eval_batch_size = 64
  c.dataset.variant = "smoke"
  c.schedule.warmup_epochs = 1
  c.log_every_steps = 4
  c.checkpoint_every_steps = 5
  c.members.replicates = 1


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_epochs = 50
  c.batch_size = 64
  c.learning_rate = 2e-4
  c.eval_batch_size = 256
  c.task = "classification"

  c.dataset = ml_collections.ConfigDict(dict(
      name="materials_tb",   # or cif_folder (then set dataset.path)
      variant="default",     # materials_tb builder config: default | smoke
      data_dir="",           # '' -> $MMJAX_DATA_DIR or ~/.cache/mmjax/datasets
      path="",               # cif_folder: folder with *.cif and labels.csv
      cutoff=4.0,            # cif_folder: neighbour cutoff, Angstrom
      split_seed=0,
      max_train=0,           # > 0: train on a fixed random subset this big
      # The padded train split kept on every device, batches gathered in the
      # step (403 MiB for the default data); False: batches sent from host.
      device_resident=True,
      budgets=dict(crystal=dict(nodes=32, edges=384),
                   kspace=dict(nodes=64, edges=256)),
  ))

  c.model = ml_collections.ConfigDict(dict(
      modalities=("crystal", "kspace", "scalar", "decomp"),
      encoders=dict(
          # Dense per-graph adjacency or jraph segment sums: the same
          # function; see benchmarks/README.md for their speeds.
          crystal=dict(type="gcn", widths=(64, 128, 128), dropout=0.0,
                       aggregation="dense"),
          kspace=dict(type="gcn", widths=(128, 256, 256), dropout=0.0,
                      aggregation="dense"),
          scalar=dict(type="mlp", widths=(64, 128), dropout=0.0),
          decomp=dict(type="mlp", widths=(128, 256), dropout=0.0),
      ),
      token_dim=288,          # 4 tokens x 288 = the reference recipe's 1152 features
      fusion="self_attention",
      num_heads=8,
      head_widths=(256, 128),
      head_dropout=0.3,
      num_outputs=2,
      dtype="float32",
  ))

  # The task's loss: a weighted sum of named terms (mmjax/tasks).
  c.loss = ml_collections.ConfigDict(dict(
      terms=dict(focal=1.0), gamma=2.0, focal_alpha=-1.0, label_smoothing=0.0,
      diversity_weight=0.1, diversity_mode="normalized"))
  c.optimizer = ml_collections.ConfigDict(dict(
      weight_decay=1e-4, b1=0.9, b2=0.999, eps=1e-8, grad_clip=1.0,
      skip_nonfinite=True, max_nonfinite=10))
  c.schedule = ml_collections.ConfigDict(dict(
      name="warmup_cosine", warmup_epochs=5, eta_min=1e-6, per_epoch=True))
  # Early stopping watches a validation metric; results.json's stage is
  # picked by the task's main metric (accuracy) on validation.
  c.early_stopping = ml_collections.ConfigDict(dict(
      metric="loss", mode="min", patience=10, min_delta=0.001,
      restore_best=True))
  # One member: a single model. Ensembles, k-fold folds and seed sweeps are
  # members trained together by one vmapped step (see configs/extreme_boost).
  c.members = ml_collections.ConfigDict(dict(
      seeds=(0,),            # added to `seed`
      mixup_alpha=(0.0,),    # 0 = no mixup
      holdout_fold=(-1,),    # k-fold fold the member never trains on
      subset=(),             # per member: train on rows of level <= s
                             # (0 or empty: all; progressive scaling)
      groups=dict(model=(0,)),
      # Copies of the members above with other seeds (+1000 r), trained in
      # the same run; results report every stage's mean and sd over them.
      replicates=3,
  ))
  c.kfold = ml_collections.ConfigDict(dict(num_folds=5))
  c.tta = ml_collections.ConfigDict(dict(passes=0, noise=0.05))
  c.member_parallel = 1  # devices along the mesh's member axis

  # Overfitting monitor: each epoch a fixed training subset is scored in
  # eval mode, like validation, and the train - val accuracy gap reported.
  c.monitor = ml_collections.ConfigDict(dict(
      train_subset=2048,
      gap_notice=0.05,    # the reference recipe's "good sign" bound
      gap_warning=0.10))  # its warning sign
  c.log_every_steps = 50
  c.checkpoint_every_steps = 500
  # Steps dispatched ahead of the device at most; a SIGTERM is acted on
  # between steps, so a stop waits for at most this many steps to finish.
  c.max_steps_in_flight = 4

  if arg == "smoke":
    smoke_run(c)
    for enc in c.model.encoders.values():
      enc.widths = tuple(min(w, 32) for w in enc.widths)
    c.model.token_dim = 32
    c.model.num_heads = 4
    c.model.head_widths = (32, 16)
  elif arg:
    raise ValueError(f"configs/optimized.py: unknown variant '{arg}' "
                     "(known: smoke)")
  return c
