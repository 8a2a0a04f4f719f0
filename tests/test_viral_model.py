"""Reference recipe 003's model side: k-mer patch tokens, the LayerNorm/GELU
head against PyTorch, the focal loss with alpha against the reference
formula, the confidence head's loss and metrics, and a bf16 step that
tracks the fp32 one."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import torch

from mmjax.models import kmer
from mmjax.models.mlp import MLP
from mmjax.models.multimodal import build_model
from mmjax.tasks.classification import ClassificationTask
from mmjax.training import losses
from mmjax.training import metrics
from tests.parity_helpers import close
from tests.parity_helpers import highest_precision  # pylint: disable=unused-import
from tests.parity_helpers import t

BASES = "ACGTN"


def numpy_patches(seq, length, ks, patch):
  """Token features of one sequence, by the definition in models/kmer.py."""
  tokens = -(-length // patch)
  feats = []
  for k in ks:
    f = np.zeros((tokens * patch, 4 ** k), np.float32)
    for p in range(len(seq) - k + 1):
      word = seq[p:p + k]
      if "N" not in word:
        f[p, int("".join(str("ACGT".index(b)) for b in word), 4)] = 1
    feats.append(f.reshape(tokens, patch * 4 ** k))
  return np.concatenate(feats, -1)


def test_kmer_patches_match_their_definition():
  rng = np.random.default_rng(0)
  length, ks, patch = 20, (3, 4), 3
  seqs = ["".join(rng.choice(list("ACGT"), n)) for n in (20, 13, 5)]
  seqs[1] = seqs[1][:6] + "N" + seqs[1][7:]
  ids = np.zeros((3, length), np.int32)
  mask = np.zeros((3, length), np.float32)
  for i, s in enumerate(seqs):
    ids[i, :len(s)] = [BASES.index(b) for b in s]
    mask[i, :len(s)] = 1
  feats, tmask = kmer.kmer_patches(jnp.asarray(ids), jnp.asarray(mask), ks,
                                   patch)
  assert feats.shape == (3, 7, kmer.num_features(ks, patch))
  assert kmer.num_features((3, 4), 3) == 960
  for i, s in enumerate(seqs):
    np.testing.assert_array_equal(feats[i], numpy_patches(s, length, ks,
                                                          patch))
  np.testing.assert_array_equal(tmask, [[1] * 7, [1] * 5 + [0] * 2,
                                        [1] * 2 + [0] * 5])


def test_multi_hot_embedding_equals_the_dense_layer_on_the_patches():
  """kmer_patch_indices + MultiHotDense: the features' ones as indices, and
  the same outputs and parameters as nn.Dense on kmer_patches."""
  from mmjax.models.transformer import MultiHotDense  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(2)
  ids = rng.integers(0, 5, (4, 22)).astype(np.int32)
  mask = np.ones((4, 22), np.float32)
  mask[1, 15:] = 0
  ks, patch = (3, 4), 3
  feats, tmask = kmer.kmer_patches(jnp.asarray(ids), jnp.asarray(mask), ks,
                                   patch)
  idx, imask = kmer.kmer_patch_indices(jnp.asarray(ids), jnp.asarray(mask),
                                       ks, patch)
  np.testing.assert_array_equal(tmask, imask)
  multi_hot = np.zeros(feats.shape, np.float32)
  b, t, j = np.nonzero(np.asarray(idx) >= 0)
  multi_hot[b, t, np.asarray(idx)[b, t, j]] = 1
  np.testing.assert_array_equal(multi_hot, feats)
  dense = nn.Dense(16)
  params = dense.init(jax.random.key(0), feats)
  mh = MultiHotDense(feats.shape[-1], 16)
  jax.tree.map(np.testing.assert_array_equal,
               mh.init(jax.random.key(0), idx), params)
  close(mh.apply(params, idx), dense.apply(params, feats), atol=1e-5)


def test_flags_add_one_feature_per_bit_and_position():
  """kmer_patch_indices with flags: bit j at patch position p is feature
  num_features(ks, patch) + p * FLAG_BITS + j, on real positions only."""
  ids = jnp.zeros((1, 7), jnp.int32)
  mask = jnp.asarray([[1, 1, 1, 1, 1, 1, 0]], jnp.float32)
  flags = jnp.asarray([[0, 1, 2, 3, 0, 0, 3]], jnp.int32)
  idx, _ = kmer.kmer_patch_indices(ids, mask, (3,), 3, flags)
  base = kmer.num_features((3,), 3)
  assert kmer.num_features((3,), 3, flags=True) == base + 3 * kmer.FLAG_BITS
  extra = np.asarray(idx)[0, :, 3:]  # [T, FLAG_BITS * patch]
  on = {(t, int(i) - base) for t in range(3) for i in extra[t] if i >= 0}
  # token 0: position 1 bit 0, position 2 bit 1; token 1: position 0
  # (bases 3) bits 0 and 1; token 2: the padded position is dropped.
  assert on == {(0, 1 * 2 + 0), (0, 2 * 2 + 1), (1, 0), (1, 1)}


def test_stops_config_builds_a_model_on_base_and_flag_channels():
  from configs import viral  # pylint: disable=g-import-not-at-top
  cfg = viral.get_config("smoke,stops").model
  cfg.num_outputs = 2
  model = build_model(cfg)
  x = np.zeros((2, 30, 2), np.int32)
  x[:, :, 1] = 1
  batch = {"genome": jnp.asarray(x), "genome_mask": jnp.ones((2, 30)),
           "modality_mask": jnp.ones((2, 1))}
  params = model.init(jax.random.key(0), batch, train=False)["params"]
  embed = params["genome_encoder"]["embed"]["kernel"]
  assert embed.shape[0] == kmer.num_features((3, 4), 3, flags=True)
  out = model.apply({"params": params}, batch, train=False)["logits"]
  assert out.shape == (2, 3)
  plain = {**batch, "genome": jnp.asarray(x[..., 0])}
  with pytest.raises(ValueError, match="stop_flags"):
    model.apply({"params": params}, plain, train=False)


def test_a_stop_codon_shows_in_its_frame_slot():
  """TAA at position 4 (frame 1 of the token grid) sits in token 1's second
  3-mer slot: the reading frame survives tokenisation."""
  seq = "CCCCTAACCCCC"
  ids = jnp.asarray([[BASES.index(b) for b in seq]], jnp.int32)
  feats, _ = kmer.kmer_patches(ids, jnp.ones((1, len(seq))), (3,), 3)
  taa = int("300", 4)
  assert feats[0, 1, 64 + taa] == 1
  assert feats[0, 1, taa] == 0 and feats[0, 1, 128 + taa] == 0


def test_layer_norm_gelu_head_matches_torch():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(5, 12)).astype(np.float32)
  head = MLP(widths=(8, 6, 2), layer_norm=True, activation="gelu",
             final_activation=False)
  params = head.init(jax.random.key(0), x, train=False)["params"]
  layers = []
  for i in range(3):
    lin = torch.nn.Linear(*params[f"dense{i}"]["kernel"].shape)
    with torch.no_grad():
      lin.weight.copy_(t(params[f"dense{i}"]["kernel"]).T)
      lin.bias.copy_(t(params[f"dense{i}"]["bias"]))
    layers.append(lin)
    if i < 2:
      ln = torch.nn.LayerNorm(lin.out_features)
      with torch.no_grad():
        ln.weight.copy_(t(params[f"ln{i}"]["scale"]) + 0.5)
        ln.bias.copy_(t(params[f"ln{i}"]["bias"]) + 0.1)
      params[f"ln{i}"]["scale"] = params[f"ln{i}"]["scale"] + 0.5
      params[f"ln{i}"]["bias"] = params[f"ln{i}"]["bias"] + 0.1
      layers += [ln, torch.nn.GELU()]
  with torch.no_grad():
    want = torch.nn.Sequential(*layers)(t(x))
  close(head.apply({"params": params}, x, train=False), want)


def torch_retinanet_focal(logit, target, alpha, gamma):
  """torchvision.ops.sigmoid_focal_loss's formula, per sample."""
  p = torch.sigmoid(logit)
  ce = torch.nn.functional.binary_cross_entropy_with_logits(
      logit, target, reduction="none")
  p_t = p * target + (1 - p) * (1 - target)
  alpha_t = alpha * target + (1 - alpha) * (1 - target)
  return alpha_t * ce * (1 - p_t) ** gamma


def test_focal_loss_with_alpha_matches_the_reference_formula():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(16, 2)).astype(np.float32) * 3
  labels = rng.integers(0, 2, 16)
  onehot = jax.nn.one_hot(labels, 2)
  got = losses.focal_loss(jnp.asarray(logits), onehot, gamma=2.0, alpha=0.25)
  margin = logits[:, 1] - logits[:, 0]  # a 2-class softmax is a sigmoid
  want = torch_retinanet_focal(t(margin), t(labels.astype(np.float32)),
                               0.25, 2.0)
  close(got, want)
  close(got, optax.sigmoid_focal_loss(margin, labels.astype(np.float32),
                                      alpha=0.25, gamma=2.0))


def _task(weight):
  cfg = ml_collections.ConfigDict(dict(
      terms=dict(focal=1.0), gamma=2.0, focal_alpha=0.25,
      confidence_weight=weight))
  return ClassificationTask(cfg, 2)


def test_confidence_loss_adds_bce_on_correctness_and_stops_its_gradient():
  rng = np.random.default_rng(3)
  out = jnp.asarray(rng.normal(size=(8, 3)).astype(np.float32))
  targets = jax.nn.one_hot(rng.integers(0, 2, 8), 2)
  plain, conf = _task(0.0), _task(0.7)
  right = (out[:, :2].argmax(-1) == targets.argmax(-1)).astype(jnp.float32)
  want = plain.loss(out[:, :2], targets) + 0.7 * (
      optax.sigmoid_binary_cross_entropy(out[:, 2], right))
  close(conf.loss(out, targets), want)
  # The confidence term's gradient reaches only the confidence column.
  g = jax.grad(lambda o: (conf.loss(o, targets) - plain.loss(
      o[:, :2], targets)).sum())(out)
  np.testing.assert_array_equal(g[:, :2], 0)
  assert np.abs(g[:, 2]).sum() > 0
  m = conf.metrics(np.asarray(out), np.asarray(targets.argmax(-1)))
  for key in ("accuracy", "roc_auc", "ece", "confidence_ece",
              "accuracy_at_50", "accuracy_at_80", "top_prob_accuracy_at_50"):
    assert key in m, key


def test_selective_accuracy_and_ece():
  correct = np.asarray([1, 1, 0, 1, 0, 0, 1, 0, 1, 1], bool)
  score = np.arange(10)[::-1].astype(float)  # the first ranked highest
  assert metrics.accuracy_at_coverage(correct, score, 0.5) == 3 / 5
  assert metrics.accuracy_at_coverage(correct, score, 1.0) == 0.6
  # Calibrated within each bin: ECE 0; always 0.9 sure and right 60%: 0.3.
  prob = np.asarray([0.25] * 4 + [0.75] * 4)
  assert metrics.expected_calibration_error(
      prob, np.asarray([1, 0, 0, 0, 1, 1, 1, 0])) == pytest.approx(0.0)
  assert metrics.expected_calibration_error(
      np.full(10, 0.9), correct) == pytest.approx(0.3)


def _model_config(dtype):
  return ml_collections.ConfigDict(dict(
      modalities=("genome",),
      encoders=dict(genome=dict(type="kmer_transformer", ks=(3, 4), patch=3,
                                width=32, depth=2, num_heads=4, mlp_ratio=2,
                                dropout=0.0)),
      token_dim=32, fusion="concat", num_heads=4, head_widths=(32,),
      head_norm="layer", head_activation="gelu", head_dropout=0.0,
      confidence_widths=(16,), num_outputs=2, dtype=dtype))


def test_bf16_steps_track_the_fp32_ones():
  """bf16 compute with fp32 parameters, loss and softmax: from equal
  weights, 50 Adam steps give the loss curve of fp32 to within a few %."""
  rng = np.random.default_rng(4)
  n, length = 64, 60
  ids = rng.integers(0, 4, (n, length)).astype(np.int32)
  labels = (ids == 3).mean(1) > 0.25  # depends on the sequence
  batch = {"genome": jnp.asarray(ids),
           "genome_mask": jnp.ones((n, length), jnp.float32),
           "modality_mask": jnp.ones((n, 1), jnp.float32)}
  targets = jax.nn.one_hot(labels.astype(np.int32), 2)
  task = _task(0.0)
  curves = {}
  params0 = None
  for dtype in ("float32", "bfloat16"):
    model = build_model(_model_config(dtype))
    if params0 is None:
      params0 = model.init(jax.random.key(0), batch, train=False)["params"]
    tx = optax.adam(3e-3)
    params, opt = params0, tx.init(params0)
    assert all(p.dtype == jnp.float32
               for p in jax.tree_util.tree_leaves(params))

    @jax.jit
    def step(params, opt, model=model):
      def loss_fn(p):
        out = model.apply({"params": p}, batch, train=False)["logits"]
        assert out.dtype == jnp.float32
        return task.loss(out[:, :2], targets).mean()
      loss, g = jax.value_and_grad(loss_fn)(params)
      upd, opt = tx.update(g, opt, params)
      return optax.apply_updates(params, upd), opt, loss

    curve = []
    for _ in range(50):
      params, opt, loss = step(params, opt)
      curve.append(float(loss))
    curves[dtype] = np.asarray(curve)
  f32, bf16 = curves["float32"], curves["bfloat16"]
  assert f32[-1] < 0.5 * f32[0]  # it learns
  np.testing.assert_allclose(bf16, f32, rtol=0.1, atol=0.01)


def test_kmer_ids_reject_n_and_padding():
  ids = jnp.asarray([[0, 1, 4, 2, 3, 0]], jnp.int32)
  mask = jnp.asarray([[1, 1, 1, 1, 1, 0]], jnp.float32)
  got, valid = kmer.kmer_ids(ids, mask, 2)
  np.testing.assert_array_equal(valid, [[1, 0, 0, 1, 0, 0]])
  assert int(got[0, 0]) == 1 and int(got[0, 3]) == 2 * 4 + 3
