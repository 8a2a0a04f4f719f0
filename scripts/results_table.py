r"""Prints a run's results.json as markdown tables (for docs/results/).

  python scripts/results_table.py runs/optimized [--metrics accuracy,roc_auc]

One row per stage: with replicates, mean ± sd over them (n in the header);
without, the stage's figures. Then the run's times.
"""

import argparse
import json
import os


def _cell(v, pct):
  if isinstance(v, dict):
    if v["sd"] != v["sd"]:  # NaN: one replicate.
      return _cell(v["mean"], pct)
    return (f"{100 * v['mean']:.2f} ± {100 * v['sd']:.2f}" if pct else
            f"{v['mean']:.4f} ± {v['sd']:.4f}")
  if v is None:
    return "-"
  return f"{100 * v:.2f}" if pct else f"{v:.4f}"


def stage_table(results, metrics, splits):
  """Markdown rows: stage x (split, metric)."""
  table = results.get("summary") or results["stages"]
  pct = {"accuracy", "balanced_accuracy", "precision", "recall", "f1"}
  head = [f"{s} {m}" + (" (%)" if m in pct else "") for s in splits
          for m in metrics]
  lines = ["| stage | " + " | ".join(head) + " |",
           "| --- |" + " ---: |" * len(head)]
  for stage in sorted(table):
    best = " (picked by validation)" if stage == results["best_stage"] else ""
    cells = [_cell(table[stage].get(s, {}).get(m), m in pct)
             for s in splits for m in metrics]
    lines.append(f"| {stage}{best} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("workdir")
  p.add_argument("--metrics", default="accuracy,roc_auc")
  p.add_argument("--splits", default="val,test")
  args = p.parse_args()
  with open(os.path.join(args.workdir, "results.json")) as f:
    r = json.load(f)
  reps = r.get("replicates", 1)
  # Accuracy gaps read as percentage points, R^2 gaps as they are.
  gap = (f"{r['train_val_gap']:.3f} in R^2" if r.get("task") == "regression"
         else f"{100 * r['train_val_gap']:.2f} points")
  print(f"{r['members_trained']} members, {reps} replicate(s); best stage "
        f"{r['best_stage']} ({r['best_stage_rule']}); train/val gap {gap}\n")
  print(stage_table(r, args.metrics.split(","), args.splits.split(",")))
  print(f"\nepochs run {r['epochs_run']} (best epoch {r['best_epoch']}), "
        f"stopped early: {r['stopped_early']}; train {r['train_time_s']} s, "
        f"compile {r['compile_s']} s, final eval {r['final_eval_s']} s, "
        f"{r['samples_per_s']} samples/s")


if __name__ == "__main__":
  main()
