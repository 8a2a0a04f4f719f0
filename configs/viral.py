r"""Reference recipe 003, `viral`: coding-intact vs non-viable viral genome
windows with a k-mer transformer and a confidence head.

  python launch.py --config=configs/viral.py --workdir=runs/viral
  python launch.py --config=configs/viral.py:cpu --workdir=runs/viral_cpu
  python launch.py --config=configs/viral.py:cpu,cellular --workdir=...

The argument is a comma-separated list of options:
  cellular  the `viral_vs_cellular` builder config (viral vs bacterial
            fragments, split by genome) instead of `viral_viability`.
  lof       only the loss-of-function negatives (with the intact windows).
  shuffle   only the dinucleotide-shuffle negatives (with the intact ones).
  stops     tokens also flag, per position, whether a stop codon of the
            genome's translation table starts there on either strand
            (dataset.stop_flags): the genetic code each genome uses,
            which the longest-ORF baseline reads too; not in the
            reference recipe.
  cpu       the scale whose results are reported on 2 CPU cores:
            transformer width 96 (512) with 2 layers (8) and 4 heads (16),
            MLP ratio 2 (4), token projection 96 (512), head 96-48
            (512-256-128), confidence head 48 (256-128); fp32 compute
            (bf16: XLA's CPU backend has no fast bf16 matmuls); lr 1e-3
            (1e-4) for the smaller model; 10 epochs (200) of the 16,800
            training windows, warmup 1 (10), patience 5 (20). With
            `cellular`: 300-bp fragments (500), 10 epochs.
  smoke     a few windows and epochs, for tests.

Model (models/kmer.py, the `kmer_transformer` encoder): each token is a
patch of 3 consecutive bases, its features the one-hots of the 3-mer and
the 4-mer starting at each of its 3 positions (960 features, the reference
recipe's ~1,024), projected to the width, with sinusoidal positions; 8
pre-LayerNorm layers (GELU, Xavier-uniform init), mean + max pooling; the
fused embedding feeds a GELU + LayerNorm classifier and a confidence head
that predicts whether the classifier is right (gradients stopped at the
embedding). The reference recipe's 3-layer feature-fusion MLP and 4-layer
classifier are one 4-layer head here (one modality: nothing to fuse).
Training as the reference recipe: focal loss (alpha 0.25, gamma 2), AdamW
(1e-4, weight decay 1e-5), 10 warmup epochs then cosine, bf16 compute with
fp32 parameters, loss and attention softmax, clipping 1.0, batch 64, up to
200 epochs, early stopping and the best weights by validation ROC-AUC
(patience 20); 3 seeds as vmapped members.
"""

import ml_collections

from configs import optimized

OPTIONS = ("cellular", "lof", "shuffle", "stops", "cpu", "smoke")
LOF_KINDS = ("lof_stop", "lof_frameshift", "lof_start")


def _options(arg):
  opts = set(optimized.parse_options(arg, OPTIONS, "configs/viral.py"))
  if {"lof", "shuffle"} <= opts:
    raise ValueError("configs/viral.py: choose lof or shuffle, not both")
  if "cellular" in opts and opts & {"lof", "shuffle"}:
    raise ValueError("configs/viral.py: lof and shuffle choose negatives of "
                     "viral_viability, not of cellular")
  return opts


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  opts = _options(arg)
  cpu = "cpu" in opts or "smoke" in opts
  c = optimized.get_config()
  c.task = "classification"
  c.num_epochs = 10 if cpu else 200
  c.batch_size = 64
  c.eval_batch_size = 256
  c.learning_rate = 1e-3 if cpu else 1e-4

  kinds = ()
  if "lof" in opts:
    kinds = LOF_KINDS
  elif "shuffle" in opts:
    kinds = ("shuffle",)
  c.dataset = ml_collections.ConfigDict(dict(
      name="viral",
      variant="viral_vs_cellular" if "cellular" in opts else
      "viral_viability",
      data_dir="", split_seed=0, max_train=0, device_resident=False,
      kinds=kinds,   # () = every kind of negative
      fold=0,        # viral_vs_cellular: the genome fold held out as test
      test_group="", # viral_viability: a group held out as test ("": split_seed)
      # viral_vs_cellular: fragment length, bp.
      length=300 if cpu else 500,
      size=0,        # > 0: another build size: per_group / per_genome
      stop_flags="stops" in opts,  # per-position stop-codon flags
      # Bases per example: the window, or the fragment length.
      budgets=dict(genome=dict(length=300)),
  ))

  if "cellular" in opts:
    c.dataset.budgets.genome.length = c.dataset.length

  width = 96 if cpu else 512
  c.model = ml_collections.ConfigDict(dict(
      modalities=("genome",),
      encoders=dict(genome=dict(
          type="kmer_transformer", ks=(3, 4), patch=3, width=width,
          depth=2 if cpu else 8, num_heads=4 if cpu else 16,
          mlp_ratio=2 if cpu else 4, dropout=0.1,
          stop_flags="stops" in opts)),
      token_dim=width, fusion="concat", num_heads=4,
      head_widths=(96, 48) if cpu else (512, 256, 128),
      head_norm="layer", head_activation="gelu", head_dropout=0.1,
      confidence_widths=(48,) if cpu else (256, 128),
      num_outputs=2,
      # Mixed precision: bf16 compute, fp32 parameters, loss and softmax.
      dtype="float32" if cpu else "bfloat16"))

  c.loss = ml_collections.ConfigDict(dict(
      terms=dict(focal=1.0), gamma=2.0, focal_alpha=0.25,
      confidence_weight=1.0, label_smoothing=0.0, diversity_weight=0.0))
  c.optimizer = ml_collections.ConfigDict(dict(
      c.optimizer.to_dict(), weight_decay=1e-5))
  c.schedule = ml_collections.ConfigDict(dict(
      name="warmup_cosine", warmup_epochs=1 if cpu else 10, eta_min=0.0,
      per_epoch=True))
  c.early_stopping = ml_collections.ConfigDict(dict(
      metric="roc_auc", mode="max", patience=5 if cpu else 20,
      min_delta=0.0, restore_best=True))
  # The stage (and results.json's figures) picked by validation ROC-AUC.
  c.early_stopping.stage_metric = "roc_auc"
  c.early_stopping.stage_mode = "max"
  c.monitor.train_subset = 1024
  c.log_every_steps = 20
  c.checkpoint_every_steps = 200

  if "smoke" in opts:
    variant = c.dataset.variant
    optimized.smoke_run(c)
    c.dataset.variant = variant
    c.dataset.limit = 200  # examples per split at most
    c.dataset.size = 60    # a small build: 60 windows per group
    c.model.encoders.genome.update(width=32, depth=1, num_heads=2)
    c.model.token_dim = 32
    c.model.head_widths = (32,)
    c.model.confidence_widths = (16,)
    c.eval_batch_size = 64
    c.monitor.train_subset = 64
  return c
