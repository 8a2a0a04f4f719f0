r"""mmjax's recipe `topology` (not a reference recipe): topological vs
trivial from the k-space modality alone, by a model that can represent the
topological invariant.

  python launch.py --config=configs/topology.py --workdir=runs/topology
  python launch.py --config=configs/topology.py:node --workdir=...

Data: materials_tb (configs/optimized.py's dataset section, variant
"default"), only its `kspace` modality (dataset.modalities): n = d/|d| of
H = d0 + d.sigma on a periodic 32 x 32 mesh of the Brillouin zone. The
label is C != 0, and minus the degree of k -> n on that mesh is C: the
sum over the 1,024 plaquettes of the signed solid angles of their two
triangles, / 4 pi (chern.degree_from_kspace_nodes;
scripts/materials_ceiling.py checks it against every stored label).

Model: the `plaquette` encoder (mmjax/models/plaquette.py): per plaquette,
the triple product and the 3 pairwise dot products of each of its two
triangles (8 rotation invariants), a shared GELU MLP phi (64, 64) on
them, minus phi of a flat plaquette, summed over the plaquettes; a token
Dense (64), `concat` fusion (one token) and a BatchNorm / ReLU head (64).
Why it can represent the invariant: a triangle's solid angle is a smooth
function of those invariants (Van Oosterom-Strackee: tan(Omega / 2) =
a.(b x c) / (1 + a.b + b.c + c.a)), phi can approximate it and sum
pooling adds it up over the plaquettes, as the degree does; the head then
only has to tell a sum near 0 from one near a nonzero multiple of 4 pi.
The GCN of configs/optimized.py pools node-wise ReLU features with
mean+max, which has no such sum. phi(flat) is subtracted (a flat
plaquette's solid angle is 0) because a smooth field is mostly near-flat
plaquettes: without it each pooled feature carries an offset of 1,024
phi(flat) that moves with every update, which the head's BatchNorm running
statistics cannot follow, and evaluation falls far behind training
(--config.model.encoders.kspace.flat_zero=False shows it).

Training: cross-entropy, AdamW lr 1e-3 / wd 1e-4, 1 warmup epoch +
cosine over 10 epochs, batch 64, clipping 1.0, early stopping on
validation loss (patience 5) restoring the best weights; 3 seeds as
vmapped members (members.replicates). Sized for 2 CPU cores: the whole
run in about half an hour, float32.

The argument is a comma-separated list of options:
  (none)       the recipe above.
  node         ablation: phi on each mesh point's 3 coordinates (a
               node-wise model; encoder neighbourhood "node"; there is no
               flat plaquette to subtract).
  coordinates  ablation: phi on the 12 raw coordinates of a plaquette's
               corners (a periodic 2 x 2 convolution's receptive field)
               instead of its invariants.
  max | mean   ablation: max or mean pooling instead of sum (mean is sum
               / 1,024 on this fixed mesh; max cannot add).
  smoke        the tests' tiny data and run.
"""

import ml_collections

from configs import optimized

ABLATIONS = ("node", "coordinates", "max", "mean")
OPTIONS = ABLATIONS + ("smoke",)


def _options(arg):
  opts = set(optimized.parse_options(arg, OPTIONS, "configs/topology.py"))
  if {"max", "mean"} <= opts:
    raise ValueError("configs/topology.py: choose one pooling of max, mean")
  return opts


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  opts = _options(arg)
  c = optimized.get_config()
  c.task = "classification"
  # Sized so that the whole run of 3 members fits 2 CPU cores within half
  # an hour (docs/results/topology.md): no `cpu` variant.
  c.num_epochs = 10
  c.batch_size = 64
  c.eval_batch_size = 256
  c.learning_rate = 1e-3
  # Only the k-space graph is read, padded and batched.
  c.dataset.modalities = ("kspace",)

  encoder = dict(type="plaquette", widths=(64, 64), inputs="invariants",
                 neighbourhood="plaquette", pooling="sum", flat_zero=True)
  if "node" in opts:
    encoder.update(neighbourhood="node", inputs="coordinates")
  if "coordinates" in opts:
    encoder.update(inputs="coordinates")
  for pooling in ("max", "mean"):
    if pooling in opts:
      encoder.update(pooling=pooling)
  c.model = ml_collections.ConfigDict(dict(
      modalities=("kspace",),
      encoders=dict(kspace=encoder),
      token_dim=64, fusion="concat", num_heads=1,
      head_widths=(64,), head_norm="batch", head_activation="relu",
      head_dropout=0.0, num_outputs=2, dtype="float32"))

  c.loss = ml_collections.ConfigDict(dict(
      terms=dict(cross_entropy=1.0), label_smoothing=0.0,
      diversity_weight=0.0))
  c.schedule = ml_collections.ConfigDict(dict(
      name="warmup_cosine", warmup_epochs=1, eta_min=1e-6, per_epoch=True))
  # Validation loss, not accuracy: near 100 % accuracy it still tells the
  # epochs apart.
  c.early_stopping = ml_collections.ConfigDict(dict(
      metric="loss", mode="min", patience=5, min_delta=0.0,
      restore_best=True))
  c.members.replicates = 3

  if "smoke" in opts:
    optimized.smoke_run(c)
    c.model.encoders.kspace.widths = (8, 8)
    c.model.token_dim = 8
    c.model.head_widths = (8,)
    c.monitor.train_subset = 64
  return c
