"""Progressive data scaling (reference recipe 004): a dataset's nested
scales trained and compared, the scale chosen by validation.

The scales nest (a smaller scale's examples are the first ones of a larger
one: the source's per-example `levels`), and every scale reads the largest
scale's split: scale s trains on the training rows of level <= s and is
validated and tested on the same val and test examples as every other
scale, so the choice compares like with like. Two ways to train them, the
same models (each scale's `progressive.seeds` seeds share their inits and
the batch order across scales):

  in_turn  one run per scale (`dataset.train_scale` = s), its seeds as
           members: every step a full batch of that scale's rows, so a
           smaller scale takes fewer steps per epoch (the reference
           recipe's procedure).
  vmapped  one run of scales x seeds members (`members.subset`): every
           member sees the largest scale's batches and learns from the
           rows of its own scale only (a loss and BatchNorm mask), so
           every member makes the same number of steps, a smaller scale's
           with a smaller effective batch (its share of the 32 rows), and
           the same number of epochs over its own data.

Writes `progressive.json` and `progressive.md` into the workdir; each run
(resumable, with its results.json) lives in `<workdir>/<run>/`: in_turn
`scale<s>/`, vmapped `scales/`.
"""

import copy
import json
import os

import numpy as np

from mmjax.errors import UserError

from mmjax.training import trainer as trainer_lib
from mmjax.training import workdir as workdir_lib

MODES = ("in_turn", "vmapped")
# Per scale and split, the member metrics summarised (mean and sd over
# seeds).
METRICS = ("accuracy", "f1", "loss")


def _base(config):
  base = copy.deepcopy(config)
  base.unlock()
  del base["progressive"]
  del base["driver"]
  base.members.holdout_fold = (-1,)
  base.members.mixup_alpha = (0.0,)
  return base


def scale_config(config, scale):
  """The in_turn run of one scale: its training rows, `seeds` members."""
  c = _base(config)
  p = config.progressive
  c.dataset.train_scale = int(scale)
  c.members.seeds = (0,)
  c.members.subset = (0,)
  c.members.groups = {f"scale{scale}": (0,)}
  c.members.replicates = int(p.seeds)
  c.lock()
  return c


def vmapped_config(config):
  """The vmapped run: member (s, r) of replicate r trains on scale s."""
  c = _base(config)
  p = config.progressive
  scales = tuple(int(s) for s in p.scales)
  c.dataset.train_scale = 0
  c.members.seeds = (0,) * len(scales)
  c.members.holdout_fold = (-1,) * len(scales)
  c.members.mixup_alpha = (0.0,) * len(scales)
  c.members.subset = scales
  c.members.groups = {f"scale{s}": (i,) for i, s in enumerate(scales)}
  c.members.replicates = int(p.seeds)
  c.lock()
  return c


def _stats(values):
  v = np.asarray(values, np.float64)
  return {"mean": float(v.mean()),
          "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
          "values": v.round(6).tolist()}


def scale_rows(members, scale, predictions=None, key="subset"):
  """Per split and metric, mean and sd over the members of one scale
  (results.json `members` entries whose `key` is `scale`), the train -
  val accuracy gap (eval mode, the rows each member trains on) and, from
  the run's predictions.npz arrays, the test accuracy per value of each
  metric group (e.g. per kind)."""
  idx = [i for i, m in enumerate(members) if int(m.get(key, 0)) == scale]
  idx = idx or list(range(len(members)))
  mine = [members[i] for i in idx]
  row = {s: {k: _stats([m[s][k] for m in mine]) for k in METRICS}
         for s in ("train", "val", "test")}
  row["gap"] = _stats([m["train"]["accuracy"] - m["val"]["accuracy"]
                       for m in mine])
  row["best_epoch"] = [int(m["best_epoch"]) for m in mine]
  row["seeds"] = [int(m["seed"]) for m in mine]
  if predictions is not None:
    row["test_groups"] = group_accuracy(predictions, idx)
  return row


def group_accuracy(predictions, idx):
  """{group: {value: stats of the test accuracy of members idx}} from a
  run's predictions.npz (`test_outputs` [K, N, C], `test_labels` [N],
  `test_<group>` [N])."""
  out = predictions["test_outputs"][idx].argmax(-1)
  hit = out == predictions["test_labels"][None]
  groups = {}
  for key in predictions:
    if not key.startswith("test_") or key in ("test_outputs", "test_labels"):
      continue
    values = predictions[key]
    groups[key[len("test_"):]] = {
        str(v): _stats(hit[:, values == v].mean(1))
        for v in np.unique(values)}
  return groups


def _predictions(run_dir):
  path = os.path.join(run_dir, "predictions.npz")
  if not os.path.exists(path):
    return None
  with np.load(path) as z:
    return {k: z[k] for k in z.files}


def choose(rows):
  """The scale with the best mean validation accuracy (never test)."""
  return max(rows, key=lambda s: rows[s]["val"]["accuracy"]["mean"])


def run(config, workdir):
  """Trains the scales (resuming finished runs) and writes the table."""
  p = config.progressive
  if p.mode not in MODES:
    raise UserError(f"progressive.mode: unknown '{p.mode}' (known: "
                     f"{', '.join(MODES)})")
  workdir = workdir_lib.prepare_workdir(workdir)
  scales = [int(s) for s in p.scales]
  rows, times = {}, {}
  if p.mode == "in_turn":
    for s in scales:
      print(f"== progressive scaling: scale {s} ({p.seeds} seeds)")
      run_dir = os.path.join(workdir, f"scale{s}")
      res, _ = trainer_lib.train_and_evaluate(scale_config(config, s),
                                              run_dir)
      rows[s] = scale_rows(res["members"], 0, _predictions(run_dir))
      times[s] = res.get("train_time_s")
  else:
    print(f"== progressive scaling: scales {scales} x {p.seeds} seeds as "
          "vmapped members")
    run_dir = os.path.join(workdir, "scales")
    res, _ = trainer_lib.train_and_evaluate(vmapped_config(config), run_dir)
    preds = _predictions(run_dir)
    rows = {s: scale_rows(res["members"], s, preds) for s in scales}
    times["all"] = res.get("train_time_s")
  best = choose(rows)
  summary = {"mode": p.mode, "scales": scales, "seeds": int(p.seeds),
             "chosen_scale": best, "chosen_by": "val accuracy (mean)",
             "rows": {str(s): r for s, r in rows.items()},
             "train_time_s": times,
             "total_train_time_s": float(sum(t or 0.0
                                             for t in times.values()))}
  with open(os.path.join(workdir, "progressive.json"), "w") as f:
    json.dump(summary, f, indent=2)
  with open(os.path.join(workdir, "progressive.md"), "w") as f:
    f.write(markdown(summary))
  return summary


def _pm(st, scale=100.0):
  return f"{scale * st['mean']:.2f} ± {scale * st['sd']:.2f}"


def markdown(summary):
  """The per-scale table of a summary (progressive.json)."""
  lines = [f"Progressive scaling ({summary['mode']}, "
           f"{summary['seeds']} seeds; mean ± sd, %):", "",
           "| scale | train acc | val acc | test acc | test macro-F1 | "
           "train − val gap | best epochs |",
           "|---|---|---|---|---|---|---|"]
  for s, r in summary["rows"].items():
    mark = " (chosen)" if int(s) == summary["chosen_scale"] else ""
    lines.append(
        f"| {s}{mark} | {_pm(r['train']['accuracy'])} | "
        f"{_pm(r['val']['accuracy'])} | {_pm(r['test']['accuracy'])} | "
        f"{_pm(r['test']['f1'])} | {_pm(r['gap'])} | "
        f"{', '.join(map(str, r['best_epoch']))} |")
  groups = {g: sorted(v) for r in summary["rows"].values()
            for g, v in r.get("test_groups", {}).items()}
  for g, values in groups.items():
    lines += ["", f"Test accuracy by {g} (mean ± sd, %):", "",
              "| scale | " + " | ".join(values) + " |",
              "|---|" + "---|" * len(values)]
    for s, r in summary["rows"].items():
      lines.append(f"| {s} | " + " | ".join(
          _pm(r["test_groups"][g][v]) for v in values) + " |")
  lines += ["", f"Chosen by mean validation accuracy: scale "
            f"{summary['chosen_scale']}. Training time: "
            f"{summary['total_train_time_s']:.0f} s."]
  return "\n".join(lines) + "\n"
