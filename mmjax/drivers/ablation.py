"""Measured gains instead of expected gains: reference recipe 001's technique table.

From the `optimized` baseline, one variant per technique of the reference recipe's gain
table, and the full recipe; each over `ablation.seeds` seeds trained as
vmapped members of one run. Writes `ablation.json`, `ablation.md` and
`ablation.png` into the workdir; every variant's own run (resumable, with its
results.json) lives in `<workdir>/<variant>/`.

A variant's score on seed r is the test accuracy of its member r (or, for
k-fold, ensemble and the full recipe, of replicate r's logit-averaged group
of members); its gain is the paired difference to the baseline's member r.
"""

import copy
import json
import os

import ml_collections
import numpy as np
from scipy import stats

from configs import extreme_boost
from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib

# Technique -> the reference recipe's expected gain in accuracy points (reference recipe 001's table).
EXPECTED = {"capacity": 2.0, "cross_modal": 1.0, "cyclic_lr": 0.5,
            "mixup": 0.7, "tta": 0.5, "kfold": 0.8, "ensemble": 1.0,
            "full_recipe": 6.5}


def _members(config, n_rep, per_rep, alphas=None, kfold=False):
  """n_rep replicates of per_rep members, grouped as rep0, rep1, ..."""
  seeds, folds, mix, groups = [], [], [], {}
  for r in range(n_rep):
    idx = []
    for j in range(per_rep):
      idx.append(len(seeds))
      seeds.append(100 * r + j)
      folds.append(j if kfold else -1)
      mix.append(alphas[j] if alphas else 0.0)
    groups[f"rep{r}"] = tuple(idx)
  config.members.seeds = tuple(seeds)
  config.members.holdout_fold = tuple(folds)
  config.members.mixup_alpha = tuple(mix)
  config.members.groups = groups
  config.members.replicates = 1  # The replicates are the rep<r> groups.
  return config


def variant_config(base, name, n_seeds):
  """The training config of one variant (a copy of `base`, changed)."""
  c = copy.deepcopy(base)
  eb = extreme_boost.get_config()
  if name in ("baseline", "tta"):
    c.tta = ml_collections.ConfigDict(dict(passes=5, noise=0.05))
    return _members(c, n_seeds, 1)
  if name == "capacity":
    c.model.encoders = copy.deepcopy(eb.model.encoders)
    c.model.token_dim = eb.model.token_dim
    c.model.head_widths = eb.model.head_widths
  elif name == "cross_modal":
    c.model.fusion = "cross_modal"
  elif name == "cyclic_lr":
    c.schedule = copy.deepcopy(eb.schedule)
  elif name == "mixup":
    return _members(c, n_seeds, 1, alphas=(0.2,))
  elif name == "kfold":
    return _members(c, n_seeds, c.kfold.num_folds, kfold=True)
  elif name == "ensemble":
    return _members(c, n_seeds, 3, alphas=(0.1, 0.2, 0.4))
  elif name == "full_recipe":
    e = copy.deepcopy(eb)
    for k in ("num_epochs", "batch_size", "eval_batch_size", "dataset",
              "log_every_steps", "checkpoint_every_steps", "seed"):
      e[k] = copy.deepcopy(c[k])
    e.members = copy.deepcopy(eb.members)
    per = len(eb.members.seeds)
    _members(e, n_seeds, per, alphas=tuple(eb.members.mixup_alpha))
    e.members.holdout_fold = tuple(eb.members.holdout_fold) * n_seeds
    return e
  else:
    raise ValueError(f"ablation.variants: unknown variant '{name}' "
                     f"(known: {', '.join(EXPECTED)})")
  return _members(c, n_seeds, 1)


def split_replicates(config, max_members):
  """Splits a variant's replicates into runs of at most `max_members` members.

  Whole replicates (the `rep<r>` groups) go to each run and keep their member
  seeds, folds and mixup alphas, so each member trains as it would in one
  run: the batch stream depends on `config.seed` only. A run's memory grows
  with its members, so a cap bounds it. Returns [config] when no split is
  needed.
  """
  m = config.members
  if not max_members or len(m.seeds) <= max_members:
    return [config]
  parts, n = [[]], 0
  for g in sorted(m.groups, key=lambda g: int(g[3:])):
    size = len(m.groups[g])
    if size > max_members:
      raise ValueError(f"ablation.max_members_per_run={max_members} is less "
                       f"than one replicate ({size} members)")
    if n + size > max_members:
      parts, n = parts + [[]], 0
    parts[-1].append(g)
    n += size
  configs = []
  for gs in parts:
    c = copy.deepcopy(config)
    idx = [i for g in gs for i in m.groups[g]]
    c.members.seeds = tuple(m.seeds[i] for i in idx)
    c.members.holdout_fold = tuple(m.holdout_fold[i] for i in idx)
    c.members.mixup_alpha = tuple(m.mixup_alpha[i] for i in idx)
    pos = {i: j for j, i in enumerate(idx)}
    c.members.groups = {g: tuple(pos[i] for i in m.groups[g]) for g in gs}
    configs.append(c)
  return configs


def merge_results(parts):
  """One variant's results from the results.json of its runs, in order:
  members concatenated, the replicates' stages united (their member indices
  shifted to the concatenation; each run's own super_ensemble dropped),
  train times added."""
  stages, offset = {}, 0
  for r in parts:
    for k, v in r["stages"].items():
      if k.startswith("rep"):
        stages[k] = {**v, "members": [offset + i for i in v["members"]]}
    offset += len(r["members"])
  return {"members": [x for r in parts for x in r["members"]],
          "stages": stages,
          "train_time_s": sum(r["train_time_s"] for r in parts),
          "runs": len(parts)}


def _scores(results, name, n_seeds):
  """Test accuracy per seed/replicate [n_seeds] (TTA off unless 'tta')."""
  if name in ("kfold", "ensemble", "full_recipe"):
    return np.array([results["stages"][f"rep{r}"]["test"]["accuracy"]
                     for r in range(n_seeds)])
  key = "test" if name == "tta" else "test_no_tta"
  return np.array([m.get(key, m["test"])["accuracy"]
                   for m in results["members"]])


def run(config, workdir):
  """Trains every variant (resuming finished ones) and writes the table."""
  a = config.ablation
  base = copy.deepcopy(config)
  base.unlock()
  del base["ablation"]
  del base["driver"]
  base.lock()
  workdir = workdir_lib.prepare_workdir(workdir)
  names = ["baseline"] + [v for v in a.variants if v != "baseline"]
  runs = {}
  for name in names:
    if name == "tta":
      continue  # Read from the baseline run: same weights, TTA at test.
    vc = variant_config(base, name, a.seeds)
    vdir = os.path.join(workdir, name)
    parts = split_replicates(vc, a.get("max_members_per_run", 0))
    if len(parts) > 1 and os.path.exists(os.path.join(vdir, "results.json")):
      # Finished as one run under a larger (or no) limit: read it back, since
      # the limit only trades memory and speed, not results.
      parts = [vc]
    print(f"== ablation variant {name}: {len(vc.members.seeds)} members"
          + (f" in {len(parts)} runs" if len(parts) > 1 else ""))
    if len(parts) == 1:
      runs[name], _ = trainer_lib.train_and_evaluate(vc, vdir)
    else:
      runs[name] = merge_results([
          trainer_lib.train_and_evaluate(pc, os.path.join(vdir, f"part{i}"))[0]
          for i, pc in enumerate(parts)])
  runs["tta"] = runs["baseline"]
  base_scores = _scores(runs["baseline"], "baseline", a.seeds)
  rows = []
  for name in names[1:]:
    s = _scores(runs[name], name, a.seeds)
    gain = 100 * (s - base_scores)
    p = float(stats.ttest_rel(s, base_scores).pvalue) if np.any(
        gain != 0) else 1.0
    rows.append({"variant": name, "expected_gain": EXPECTED[name],
                 "accuracy_mean": float(100 * s.mean()),
                 "gain_mean": float(gain.mean()),
                 "gain_std": float(gain.std(ddof=1)),
                 "p_value": p, "distinguishable": bool(p < 0.05),
                 "per_seed": (100 * s).round(2).tolist(),
                 "members": len(runs[name]["members"]),
                 "train_time_s": runs[name].get("train_time_s")})
  summary = {"baseline_accuracy_mean": float(100 * base_scores.mean()),
             "baseline_per_seed": (100 * base_scores).round(2).tolist(),
             "baseline_train_time_s": runs["baseline"].get("train_time_s"),
             "seeds": a.seeds, "rows": rows,
             "scale": {"num_epochs": base.num_epochs,
                       "max_train": base.dataset.get("max_train", 0),
                       "dataset": f"{base.dataset.name}/{base.dataset.variant}"}}
  with open(os.path.join(workdir, "ablation.json"), "w") as f:
    json.dump(summary, f, indent=2)
  _write_markdown(summary, os.path.join(workdir, "ablation.md"))
  _plot(summary, os.path.join(workdir, "ablation.png"))
  return summary


def _write_markdown(summary, path):
  sc = summary["scale"]
  lines = [
      "# Ablation: reference recipe 001's expected gains vs measured gains", "",
      f"Baseline `optimized`: test accuracy {summary['baseline_accuracy_mean']:.2f}% "
      f"(mean of {summary['seeds']} seeds). Data {sc['dataset']}, "
      f"{sc['num_epochs']} epochs max, train subset {sc['max_train'] or 'all'}.",
      "Gain = paired difference to the baseline seed by seed, in accuracy "
      "points; distinguishable = paired t-test p < 0.05.", "",
      "Train time: that variant's `train_time_s` (all its members at once: "
      "training steps, per-epoch validation and checkpoints; the train "
      "step's compilation excluded); `tta` reuses the baseline's run.", "",
      "| technique | expected gain (reference) | measured gain (mean ± std) | p | distinguishable from 0 | members | train time (min) |",
      "| --- | ---: | ---: | ---: | --- | ---: | ---: |"]
  for r in summary["rows"]:
    t = r.get("train_time_s")
    lines.append(f"| {r['variant']} | +{r['expected_gain']:.1f} | "
                 f"{r['gain_mean']:+.2f} ± {r['gain_std']:.2f} | "
                 f"{r['p_value']:.3f} | {'yes' if r['distinguishable'] else 'no'} | "
                 f"{r.get('members', '')} | {'' if t is None else f'{t / 60:.1f}'} |")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")


def _plot(summary, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = summary["rows"]
  x = np.arange(len(rows))
  fig, ax = plt.subplots(figsize=(9, 4))
  ax.bar(x - 0.2, [r["expected_gain"] for r in rows], 0.4,
         label="expected (reference recipe 001)")
  ax.bar(x + 0.2, [r["gain_mean"] for r in rows], 0.4,
         yerr=[r["gain_std"] for r in rows], capsize=3, label="measured")
  ax.axhline(0, color="k", lw=0.8)
  ax.set_xticks(x, [r["variant"] for r in rows], rotation=20)
  ax.set_ylabel("test accuracy gain (points)")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
