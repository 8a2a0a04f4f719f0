r"""Reference recipe 002, `affinity`: protein-ligand binding affinity (pK)
regression from voxelised complexes and ligand graphs.

  python launch.py --config=configs/affinity.py --workdir=runs/affinity
  python launch.py --config=configs/affinity.py:cpu --workdir=runs/affinity_cpu
  python launch.py --config=configs/affinity.py:hybrid,cpu ...

The argument is a comma-separated list of options:
  advanced (default) | hybrid | residual   the model:
    advanced  AdvancedTransformerCNN: multi-scale 3D block (1, 3, 5 and
              dilated 3 convolutions), channel and spatial attention, two
              stride-2 stages, 3D sinusoidal positions, 4 transformer
              layers, mean pooling, a 6-layer BatchNorm head.
    hybrid    HybridCNNGNNTransformer: the same CNN-transformer on the grid
              plus a GAT on the ligand graph, the two tokens fused by
              self-attention.
    residual  ResidualTransformerCNN: residual 3D blocks with
              cross-component attention; fewer parameters.
  ligand_only   protein channels zeroed (what the pocket adds).
  moleculeace   MoleculeACE's own train/test split instead of the scaffold
                split (its train part split 90/10 by scaffold for val).
  multi_target  the 7 DOCKSTRING targets' Ki sets, pockets per sample.
  cpu           the scale whose results are reported on 2 CPU cores:
                a 2 A grid (12^3 voxels instead of 24^3 at 1 A), CNN
                branches of 8 channels (32), stage of 32 (256), transformer
                width 64 (256) with 2 layers (4) and 4 heads (8), GAT 2 x 32
                with 4 heads, head widths 128-64-32-16-8 (512-...-32),
                batch 32 (8) with lr 8e-4 (2e-4, scaled with the batch),
                17 epochs (100), warmup 2 (10), restarts T_0 = 5 (15;
                then 10: the run ends with the second cycle), patience 8
                (30); members as an unrolled loop, not vmap.
  smoke         a few ligands and epochs, for tests.

Data (mmjax/data/affinity, docs/data.md): measured thrombin Ki values
(ChEMBL via MoleculeACE, pKi 2.6-11.0) with modelled poses in DOCKSTRING's
thrombin pocket; split by Bemis-Murcko scaffold 80/10/10.
Training as the reference recipe: AdamW (2e-4, weight decay 1e-4) with
parameter groups (CNN x0.5, transformer x1.5, head x1.0), 10 warmup epochs
then cosine annealing with warm restarts (T_0 15, T_mult 2), loss MSE +
0.5 MAE + 0.3 Huber, clipping 1.0, early stopping on validation R^2
(patience 30) restoring the best weights; 3 seeds as vmapped members.
"""

import ml_collections

from configs import optimized

MODELS = ("advanced", "hybrid", "residual")
OPTIONS = MODELS + ("ligand_only", "moleculeace", "multi_target", "cpu",
                    "smoke")


def _options(arg):
  opts = optimized.parse_options(arg, OPTIONS, "configs/affinity.py")
  models = [o for o in opts if o in MODELS]
  if len(models) > 1:
    raise ValueError("configs/affinity.py: choose one model of "
                     f"{', '.join(MODELS)}, got {', '.join(models)}")
  return (models or ["advanced"])[0], set(opts)


def _grid_encoder(model, cpu):
  if model == "residual":
    # One residual CNN per component (the 7 protein and the 9 ligand
    # channels), their tokens attending to each other.
    return dict(type="residual_cnn3d", components=(7, 9),
                widths=(16, 32) if cpu else (32, 64, 128),
                strides=(2, 2) if cpu else (1, 2, 2),
                width=64 if cpu else 128, depth=2, num_heads=4, mlp_ratio=4,
                dropout=0.1)
  return dict(type="cnn3d_transformer",
              branch_channels=8 if cpu else 32,
              stage_channels=32 if cpu else 256,
              width=64 if cpu else 256, depth=2 if cpu else 4,
              num_heads=4 if cpu else 8, mlp_ratio=4, dropout=0.1,
              channel_attention=True, spatial_attention=True)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  model, opts = _options(arg)
  cpu = "cpu" in opts or "smoke" in opts
  c = optimized.get_config()
  c.task = "regression"
  c.num_epochs = 17 if cpu else 100
  c.batch_size = 32 if cpu else 8
  c.eval_batch_size = 64
  # Scaled with the batch at the :cpu scale (4 x 2e-4 for 4 x the batch).
  c.learning_rate = 8e-4 if cpu else 2e-4

  c.dataset = ml_collections.ConfigDict(dict(
      name="binding",
      variant="multi_target" if "multi_target" in opts else "thrombin",
      data_dir="", path="", index="", test_index="",
      split="moleculeace" if "moleculeace" in opts else "scaffold",
      split_seed=0, max_train=0, device_resident=False,
      # Voxel grid centred on the pocket: a 24 A cube at `resolution` A.
      grid=dict(box=24.0, resolution=2.0 if cpu else 1.0),
      zero_protein="ligand_only" in opts,
      # The largest thrombin ligand (a peptide) has 224 heavy atoms and
      # 456 directed bonds: no ligand is dropped.
      budgets=dict(ligand=dict(nodes=224, edges=456)),
      limit=0,  # > 0: only the first `limit` ligands of each target

  ))

  grid = _grid_encoder(model, cpu)
  encoders = dict(complex=grid)
  modalities = ("complex", "ligand")
  if model == "hybrid":
    encoders["ligand"] = dict(type="gat", widths=(32, 32) if cpu else
                              (64, 64, 64), heads=4, concat=True,
                              edge_features=True, dropout=0.0)
  else:
    # The grid models read no graph: the ligand modality is given to an
    # encoder only by the hybrid.
    modalities = ("complex",)
  head = (128, 64, 32, 16, 8) if cpu else (512, 256, 128, 64, 32)
  c.dataset.modalities = modalities
  c.model = ml_collections.ConfigDict(dict(
      modalities=modalities, encoders=encoders,
      token_dim=64 if cpu else 256,
      fusion="self_attention" if model == "hybrid" else "concat",
      num_heads=4 if cpu else 8, head_widths=head, head_dropout=0.2,
      # Outputs start at the training pKi mean, in pK units (the loss too).
      standardize_outputs=True,
      num_outputs=1, dtype="float32"))

  c.loss = ml_collections.ConfigDict(dict(
      terms=dict(mse=1.0, mae=0.5, huber=0.3), huber_delta=1.0,
      label_smoothing=0.0, diversity_weight=0.0))
  # Parameter groups by regex over parameter paths (mmjax/training/optim.py).
  lr_mults = [(r".*_encoder/cnn/.*", 0.5), (r".*_encoder/transformer/.*", 1.5),
              (r"head/.*", 1.0)]
  c.optimizer = ml_collections.ConfigDict(dict(
      c.optimizer.to_dict(), weight_decay=1e-4, lr_mults=tuple(lr_mults)))
  c.schedule = ml_collections.ConfigDict(dict(
      name="warmup_cosine_restarts", warmup_epochs=2 if cpu else 10,
      t_0=5 if cpu else 15, t_mult=2, eta_min=1e-6))
  c.early_stopping = ml_collections.ConfigDict(dict(
      metric="r2", mode="max", patience=8 if cpu else 30, min_delta=0.0,
      restore_best=True))
  c.monitor.train_subset = 512
  c.monitor.gap_notice = 0.05
  c.monitor.gap_warning = 0.10
  c.log_every_steps = 20
  if cpu:
    # Members as an unrolled loop: XLA's CPU backend runs 3D convolutions
    # with a vmapped member axis on their weights slowly.
    c.member_loop = "unroll"

  if "smoke" in opts:
    variant = c.dataset.variant
    optimized.smoke_run(c)
    c.dataset.variant = variant
    c.dataset.limit = 48  # ligands per target
    c.batch_size = 8
    c.eval_batch_size = 16
    c.monitor.train_subset = 16
  return c
