"""Defects found by reading the code, each pinned by a test that failed
before its fix."""

import gc
import json
import os
import threading
import time
import weakref

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from conftest import assert_same_trees
from configs import toy_sequence
from mmjax.data import pipeline
from mmjax.errors import UserError
from mmjax.models import fusion
from mmjax.models.multimodal import MultiModalModel
from mmjax.tasks import build_task
from mmjax.training import checkpoint
from mmjax.training import evaluation
from mmjax.training import steps
from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib

_LOSS = ml_collections.ConfigDict(dict(terms=dict(cross_entropy=1.0)))


def _vector_model():
  return MultiModalModel(
      encoders=(("v", {"type": "mlp", "widths": (8,), "batch_norm": True}),),
      token_dim=8, fusion="concat", num_heads=1, head_widths=(8,),
      head_dropout=0.0, num_outputs=2)


def _batch(seed, b=16):
  rng = np.random.default_rng(seed)
  return {"v": rng.normal(size=(b, 4)).astype(np.float32),
          "modality_mask": np.ones((b, 1), np.float32),
          "label": rng.integers(0, 2, b).astype(np.int32),
          "sample_mask": np.ones((b,), np.float32),
          "fold": np.arange(b, dtype=np.int32) % 4}


def test_kfold_member_never_sees_its_held_out_rows():
  """Its loss, gradient and BatchNorm statistics (batch and running) do not
  change when the rows of its held-out fold change."""
  model, task = _vector_model(), build_task(ml_collections.ConfigDict(dict(
      task="classification", loss=_LOSS, model=dict(num_outputs=2))))
  tx = optax.adamw(1e-2)
  a = _batch(0)
  b = dict(a)
  held = a["fold"] == 1
  b["v"] = np.where(held[:, None], 100.0 * a["v"] + 5.0, a["v"])
  b["label"] = np.where(held, 1 - a["label"], a["label"])
  state = steps.create_state(model, tx, a, 0)
  step = jax.jit(steps.make_member_step(model, tx, lambda s: 1e-2, task,
                                        _LOSS))
  member = dict(steps.single_member(3), fold=jnp.asarray(1, jnp.int32))
  sa, ma = step(state, a, member)
  sb, mb = step(state, b, member)
  assert_same_trees(sa.batch_stats, sb.batch_stats, atol=1e-6)
  assert_same_trees(sa.params, sb.params, atol=1e-6)
  np.testing.assert_allclose(ma["loss"], mb["loss"], rtol=1e-6)


def test_tta_noise_differs_per_batch_and_member():
  model = _vector_model()
  task = build_task(ml_collections.ConfigDict(dict(
      task="classification", loss=_LOSS, model=dict(num_outputs=2))))
  batch = _batch(1)
  v = model.init(jax.random.key(0), batch, train=False)
  step = jax.jit(steps.make_eval_step(model, task, tta_passes=2,
                                      tta_noise=0.5, tta_seed=0))
  base, _ = step(v["params"], v["batch_stats"], batch, 0, 0)
  other_batch, _ = step(v["params"], v["batch_stats"], batch, 0, 1)
  other_member, _ = step(v["params"], v["batch_stats"], batch, 1, 0)
  again, _ = step(v["params"], v["batch_stats"], batch, 0, 0)
  assert np.array_equal(base, again)
  assert not np.allclose(base, other_batch)
  assert not np.allclose(base, other_member)


def test_a_stage_loss_is_the_loss_of_its_combined_outputs():
  task = build_task(ml_collections.ConfigDict(dict(
      task="classification", loss=_LOSS, model=dict(num_outputs=2))))
  ev = evaluation.Evaluator.__new__(evaluation.Evaluator)
  ev.task = task
  logits = np.asarray([[[4.0, 0.0]], [[0.0, 4.0]]], np.float32)  # [K, N, C]
  m = ev.ensemble_metrics(logits, np.asarray([0]))
  # The mean logit is [2, 2]: CE log 2, while each member's CE differs.
  np.testing.assert_allclose(m["loss"], np.log(2.0), rtol=1e-6)


def test_cross_modal_fusion_ignores_absent_modalities():
  f = fusion.CrossModalFusion(num_heads=2)
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.normal(size=(3, 4, 8)), jnp.float32)
  present = jnp.asarray([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1]],
                        jnp.float32)
  v = f.init(jax.random.key(0), tokens, present, train=False)
  out = f.apply(v, tokens, present, train=False)
  junk = tokens.at[0, 1:].set(50.0).at[1, 0].set(-7.0).at[1, 2:].set(3.0)
  out_junk = f.apply(v, junk, present, train=False)
  np.testing.assert_allclose(out[:2], out_junk[:2], atol=1e-6)


def test_prefetch_thread_ends_when_the_consumer_stops():
  class Source:
    def __iter__(self):
      i = 0
      while True:
        yield i
        i += 1

  src = Source()
  ref = weakref.ref(src)
  before = threading.active_count()
  it = pipeline.prefetch(iter(src), size=2)
  assert next(it) == 0
  time.sleep(0.2)  # The worker fills the queue and blocks on put.
  it.close()
  del src, it
  gc.collect()
  deadline = time.time() + 5
  while threading.active_count() > before and time.time() < deadline:
    time.sleep(0.05)
  assert threading.active_count() == before
  assert ref() is None


def _toy_run(tmp_path, **overrides):
  config = toy_sequence.get_config("classification")
  config.num_epochs = 3
  for k, v in overrides.items():
    config[k] = v
  workdir = workdir_lib.prepare_workdir(str(tmp_path))
  workdir_lib.write_or_check_config(config, workdir)
  return config, workdir, trainer_lib.Trainer(config, workdir).run()


def test_last_checkpoint_keeps_the_last_state_not_the_best(tmp_path):
  # mode=max on the (falling) val loss makes epoch 1 the best: best != last.
  config = toy_sequence.get_config("classification")
  config.num_epochs = 3
  config.early_stopping.metric, config.early_stopping.mode = "loss", "max"
  config.early_stopping.patience = 10
  workdir = workdir_lib.prepare_workdir(str(tmp_path))
  workdir_lib.write_or_check_config(config, workdir)
  trainer = trainer_lib.Trainer(config, workdir)
  results = trainer.run()
  assert results["best_epoch"] == 1 and results["epochs_run"] == 3
  fresh = trainer_lib.Trainer(config, workdir)  # Templates: run() donated.
  like = (fresh.init_state, fresh._snapshot(fresh.init_state))  # pylint: disable=protected-access
  ckpt = checkpoint.Checkpointer(workdir)
  final = ckpt.latest_step()
  assert final == trainer.total_steps + 1
  last, _, _ = ckpt.restore(trainer.total_steps, *like)
  got, best, _ = ckpt.restore(final, *like)
  ckpt.close()
  assert_same_trees(jax.device_get(last), jax.device_get(got))
  assert not np.array_equal(
      jax.tree.leaves(jax.device_get(got.params))[0],
      jax.tree.leaves(jax.device_get(best["params"]))[0])


def test_restore_failures_say_what_is_wrong(tmp_path):
  config, workdir, _ = _toy_run(tmp_path / "a")
  # Another model width: the checkpoint does not fit.
  wider = toy_sequence.get_config("classification")
  wider.num_epochs = 3
  wider.model.encoders.signal.width = 48
  trainer = trainer_lib.Trainer(wider, workdir)
  os.remove(os.path.join(workdir, "results.json"))
  with pytest.raises(UserError, match="does not fit this config's model "
                     r"\(state/params/signal_encoder/.* has shape"):
    trainer.run()
  # Damaged files: the checkpoint cannot be read.
  trainer = trainer_lib.Trainer(config, workdir)
  ckdir = os.path.join(workdir, "checkpoints")
  latest = max(int(d) for d in os.listdir(ckdir) if d.isdigit())
  for root, _, files in os.walk(os.path.join(ckdir, str(latest), "state")):
    for f in files:
      if not f.startswith("_"):
        with open(os.path.join(root, f), "wb") as fh:
          fh.write(b"garbage")
  with pytest.raises(UserError, match="cannot be read"):
    trainer.run()
