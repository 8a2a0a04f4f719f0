"""Evaluation: every member's outputs on a split, and the final results
(members, stages, the stage validation picks).

Outputs are brought to the host batch by batch; metrics are the task's
(mmjax.tasks), computed on the host over the whole split.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mmjax.data import pipeline
from mmjax.training import sharding


class Evaluator:
  """Runs the jitted (ensemble) eval steps of a run over padded splits."""

  def __init__(self, task, mesh, eval_step, tta_step, batch_size,
               member_seeds):
    self.task = task
    self.mesh = mesh
    self.eval_step = eval_step
    self.tta_step = tta_step
    self.batch_size = batch_size
    self.seeds = jax.device_put(jnp.asarray(member_seeds, jnp.int32),
                                sharding.member_sharding(mesh))

  def predict(self, split, params, batch_stats, tta=False, desc=None):
    """Outputs [K, N, C] and per-sample task losses [K, N] of every member,
    in eval mode (with TTA's noisy passes averaged if `tta`). `desc`: show
    a progress bar with this label."""
    step = self.tta_step if tta and self.tta_step else self.eval_step
    outs, losses = [], []
    batches = pipeline.eval_batch_indices(split.size, self.batch_size)
    if desc is not None:
      batches = tqdm(batches, desc=desc, dynamic_ncols=True,
                     disable=jax.process_index() != 0)
    for b, idx in enumerate(batches):
      batch = sharding.put_batch(split.take(idx[sharding.process_slice(
          len(idx))]), self.mesh)
      out, per = step(params, batch_stats, batch, self.seeds,
                      jnp.asarray(b, jnp.int32))
      outs.append(sharding.to_host(out))
      losses.append(sharding.to_host(per))
    return (np.concatenate(outs, axis=1)[:, :split.size],
            np.concatenate(losses, axis=1)[:, :split.size])

  def metrics(self, outputs, labels, losses, rows=None):
    """The task's metrics of one member's outputs [N, C] (on `rows`)."""
    if rows is not None:
      outputs, labels, losses = outputs[rows], labels[rows], losses[rows]
    return self.task.metrics(outputs, labels, losses.mean())

  def ensemble_metrics(self, outputs, labels, rows=None):
    """Metrics of the members' combined outputs [K, N, C] (on `rows`); the
    loss is the task loss of the combined outputs (not the members' mean
    loss)."""
    if rows is not None:
      outputs, labels = outputs[:, rows], labels[rows]
    combined = self.task.combine(outputs)
    loss = np.asarray(self.task.loss(jnp.asarray(combined),
                                     self.task.targets(jnp.asarray(labels))))
    return self.task.metrics(combined, labels, loss.mean())

  def member_metrics(self, split, params, batch_stats, members=None):
    """Per-member metrics of `split` in eval mode. With `members` (the
    member table: `fold` [K], k-fold ids, -1 = none; `subset` [K], 0 =
    all) and a split holding `fold` / `subset`, member i is scored on the
    rows it trains on: outside its held-out fold, at or below its level."""
    out, per = self.predict(split, params, batch_stats)
    k = out.shape[0]
    return [self.metrics(out[i], split.labels, per[i],
                         training_rows(split, members, i))
            for i in range(k)]


def training_rows(split, members, i):
  """bool [N] rows of `split` that member i trains on, or None (all)."""
  if members is None:
    return None
  rows = np.ones((split.size,), bool)
  f = int(members["fold"][i])
  if f >= 0 and "fold" in split.arrays:
    rows &= split.arrays["fold"] != f
  s = int(members.get("subset", np.zeros(i + 1))[i])
  if s > 0 and "subset" in split.arrays:
    rows &= split.arrays["subset"] <= s
  return None if rows.all() else rows


def gap(train, val, mode):
  """How much better the training split scores than validation: train - val
  for a metric to maximise, val - train for one to minimise."""
  return train - val if mode == "max" else val - train


def save_predictions(path, outputs, splits):
  """predictions.npz: for val and test, every member's final outputs
  `<split>_outputs` [K, N, C] (the task's raw outputs: logits, or
  predictions for regression), `<split>_labels` [N] and the dataset's
  metric-group values `<split>_<key>` [N], so that runs can be pooled
  (e.g. the folds of a cross-validation) without re-running them."""
  arrays = {}
  for s in ("val", "test"):
    arrays[f"{s}_outputs"] = np.asarray(outputs[s][0], np.float32)
    arrays[f"{s}_labels"] = np.asarray(splits[s].labels)
    for key, values in splits[s].groups.items():
      arrays[f"{s}_{key}"] = np.asarray(values).astype(str)
  tmp = path + ".tmp.npz"
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, path)


def final_results(ev, splits, members, groups, selection, tta_passes,
                  metric_groups=(), predictions_path=None):
  """Evaluates the final weights and assembles results.json's content.

  splits: {'val', 'test', 'train'} PaddedSplits; members: the member table
  and bookkeeping {seed, fold, alpha, best_step, best_epoch} lists [K];
  groups: {stage: member indices}; selection: (metric, mode) that picks the
  stage on validation; metric_groups: the dataset spec's (results['groups'],
  group_results); predictions_path: where to write every member's val and
  test outputs (save_predictions), or None. `ev` carries the weights as ev.params/ev.batch_stats.
  Validation and test are evaluated with TTA when the run has it, and
  plainly; the training split plainly (its k-fold held-out rows give each
  k-fold member's held-out estimate).
  """
  t0 = time.time()
  tta = ev.tta_step is not None
  how = f"{tta_passes} TTA passes" if tta else "plain"
  out, plain = {}, {}
  for s in ("val", "test"):
    out[s] = ev.predict(splits[s], ev.params, ev.batch_stats, tta,
                        desc=f"final eval: {s} ({how})")
    plain[s] = (ev.predict(splits[s], ev.params, ev.batch_stats, False,
                           desc=f"final eval: {s} (plain)") if tta else out[s])
  out["train"] = plain["train"] = ev.predict(
      splits["train"], ev.params, ev.batch_stats, False,
      desc="final eval: train (plain)")
  eval_s = time.time() - t0  # Host arrays: every pass has finished.
  if predictions_path:
    save_predictions(predictions_path, out, splits)
  labels = {s: splits[s].labels for s in splits}
  k = len(members["seed"])
  member_results = []
  for i in range(k):
    r = {s: ev.metrics(out[s][0][i], labels[s], out[s][1][i]) for s in out}
    if tta:
      for s in ("val", "test"):
        r[f"{s}_no_tta"] = ev.metrics(plain[s][0][i], labels[s],
                                      plain[s][1][i])
    r.update(seed=int(members["seed"][i]),
             holdout_fold=int(members["fold"][i]),
             mixup_alpha=float(members["alpha"][i]),
             subset=int(members.get("subset", np.zeros(k))[i]),
             best_step=int(members["best_step"][i]),
             best_epoch=int(members["best_epoch"][i]) + 1)
    if r["subset"] > 0:  # A data-subset member: the rows it trained on.
      r["train"] = ev.metrics(out["train"][0][i], labels["train"],
                              out["train"][1][i],
                              training_rows(splits["train"], members, i))
    if r["holdout_fold"] >= 0:  # The k-fold estimate: its own fold only.
      sel = splits["train"].arrays["fold"] == r["holdout_fold"]
      r["holdout"] = ev.metrics(out["train"][0][i], labels["train"],
                                out["train"][1][i], sel)
    member_results.append(r)
  stages = {}
  for g, idx in groups.items():
    idx = list(idx)
    stages[g] = {s: ev.ensemble_metrics(out[s][0][idx], labels[s])
                 for s in out}
    if tta:
      for s in ("val", "test"):
        stages[g][f"{s}_no_tta"] = ev.ensemble_metrics(plain[s][0][idx],
                                                       labels[s])
    stages[g]["members"] = idx
  metric, mode = selection
  summary = replicate_summary(stages)
  pick = max if mode == "max" else min
  if summary:  # Replicates: stages compared by their mean over replicates.
    table = {g: {s: {k: v["mean"] for k, v in m.items()}
                 for s, m in summary[g].items()} for g in summary}
  else:
    table = stages
  best_stage = pick(table, key=lambda g: _or(table[g]["val"][metric], mode))
  chosen = table[best_stage]
  val_plain = chosen["val_no_tta" if tta else "val"]
  main, main_mode = ev.task.main_metric, ev.task.main_mode
  results = {
      "test": chosen["test"], "val": chosen["val"], "train": chosen["train"],
      "best_stage": best_stage,
      "best_stage_rule": f"{'highest' if mode == 'max' else 'lowest'} "
                         f"val {metric}" + (" (mean over replicates)"
                                            if summary else ""),
      # Both sides plain (eval mode, no TTA): like is compared with like.
      "train_val_gap": gap(chosen["train"][main], val_plain[main], main_mode),
      "final_eval_s": round(eval_s, 2),
      "tta_passes": tta_passes if tta else 0,
  }
  if summary:
    results["replicates"] = len({g.partition("@")[2] for g in stages})
    results["summary"] = summary
  results["stages"] = stages
  results["members"] = member_results
  if metric_groups:
    results["groups"] = group_results(ev, out, splits, groups,
                                      metric_groups)
  return results


def group_rows(values, reference):
  """{value: bool rows [N]} of every value in `values` [N] but the
  reference, each with the reference's rows added when there is one."""
  ref = (values == reference) if reference is not None else False
  return {v: (values == v) | ref
          for v in sorted(set(values.tolist())) if v != reference}


def group_results(ev, out, splits, groups, metric_groups):
  """{key: {value: {'stages': {stage: {split: metrics}}, 'summary': ...}}}
  of the val and test splits' rows of each value of each metric-group key
  (datasets.DatasetSpec.metric_groups), every stage's combined outputs."""
  res = {}
  for key, reference in metric_groups:
    res[key] = {}
    rows = {s: group_rows(splits[s].groups[key], reference)
            for s in ("val", "test")}
    values = sorted(set(rows["val"]) | set(rows["test"]))
    for v in values:
      stages = {}
      for g, idx in groups.items():
        idx = list(idx)
        stages[g] = {s: ev.ensemble_metrics(out[s][0][idx], splits[s].labels,
                                            rows[s][v])
                     for s in ("val", "test")
                     if v in rows[s] and rows[s][v].any()}
        stages[g]["n"] = {s: int(rows[s][v].sum()) for s in rows
                          if v in rows[s]}
      res[key][v] = {"stages": stages, "summary": replicate_summary(stages)}
  return res


def replicate_summary(stages):
  """{stage: {split: {metric: {mean, sd, n}}}} over the replicates
  '<stage>@<r>' of every stage (sd with ddof 1); {} without replicates."""
  by_stage = {}
  for g, res in stages.items():
    name, at, _ = g.partition("@")
    if at:
      by_stage.setdefault(name, []).append(res)
  out = {}
  for name, reps in by_stage.items():
    out[name] = {}
    for split, m in reps[0].items():
      if not isinstance(m, dict):
        continue
      out[name][split] = {}
      for key in m:
        v = np.asarray([r[split][key] for r in reps], np.float64)
        out[name][split][key] = {
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
            "n": len(v)}
  return out


def _or(value, mode):
  """NaN never wins a selection."""
  if value is None or not np.isfinite(value):
    return -np.inf if mode == "max" else np.inf
  return value
