"""Honest shallow baselines for the viral recipes (reference recipe 003).

Usage:
  python scripts/viral_baselines.py [--variant both] [--seeds 0,1,2]
      [--data_seed 0] [--split_seed 0] [--folds 4] [--quick] [--threads 1]
      [--out docs/results/viral_baselines.json]

Features (`mmjax.data.viral.features`): strand-symmetrised 3- and 4-mer
frequencies (32 + 136 = 168 columns), GC content, and the longest ORF over
the six frames under each example's translation table as a fraction of its
length. Models: logistic regression (L2, C = 1, balanced class weights, on
standardised features) and sklearn's HistGradientBoostingClassifier (defaults,
balanced class weights). Nothing is tuned.

viral_viability (label 1 = non-viable): on the data module's group split,
fit on train + val and score test, separately for three sets of negatives
against the intact examples: `lof` (lof_stop, lof_frameshift, lof_start
pooled), `shuffle`, and `all`. Methods: `kmer_lr`, `kmer_gb`, `gc_lr`, and
`orf_rule`, the one-feature rule on the longest-ORF fraction (its direction
and threshold, the one of best train accuracy, fit on train). Metrics:
ROC-AUC, accuracy, F1, precision, recall; thresholds 0.5 on the probability
for the models, the train-fitted one for the rule. As there are few genome
groups, the same fits are repeated leave-one-group-out, reporting the
AUROC of the pooled out-of-group scores and that of each group.

viral_vs_cellular (label 1 = viral): per fragment length, group k-fold with
the data module's folds; pooled out-of-fold AUROC, per fold, and per genome
(its fragments against the other class's fragments of the same fold), for
`kmer_lr`, `kmer_gb` and `gc_lr`.

Boosting is fitted once per seed (--seeds) and reported as mean and sd over
seeds; the other methods are deterministic and fitted once. (Below 10,000
training examples HistGradientBoosting neither holds out an early-stopping
set nor subsamples, so its seeds agree there: sd 0.) Data are generated with
--data_seed. Results go to --out, one entry per variant, so runs of the two
variants accumulate in one file.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import threadpoolctl

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mmjax import provenance  # pylint: disable=g-import-not-at-top
from mmjax.data.viral import features as viral_features  # pylint: disable=g-import-not-at-top

VARIANTS = ("viral_viability", "viral_vs_cellular")
METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall")
# Method -> (feature set, model).
METHODS = {
    "kmer_lr": ("kmer", "lr"),
    "kmer_gb": ("kmer", "gb"),
    "gc_lr": ("gc", "lr"),
    "orf_rule": ("orf", "rule"),
}
VIABILITY_METHODS = ("kmer_lr", "kmer_gb", "gc_lr", "orf_rule")
CELLULAR_METHODS = ("kmer_lr", "kmer_gb", "gc_lr")
LENGTHS = (300, 500, 1000, 3000)
# --quick: examples kept per (group, kind[, length]) and boosting rounds.
QUICK_PER_CELL = 20
QUICK_GB_ITERS = 20


def data_module():
  """The viral data package (imported late: the features need no data)."""
  from mmjax.data.viral import examples  # pylint: disable=g-import-not-at-top
  return examples


def featurise(exs):
  """{'kmer': float32 [N, 168], 'gc': [N, 1], 'orf': [N, 1]} of examples."""
  seqs = [e["sequence"] for e in exs]
  tables = [int(e.get("table", 11)) for e in exs]
  return {
      "kmer": viral_features.kmer_frequencies(seqs, ks=(3, 4)),
      "gc": viral_features.gc_content(seqs)[:, None],
      "orf": viral_features.longest_orf_fraction(seqs, tables)[:, None],
  }


def roc_auc(y, score):
  """ROC-AUC, or None where `y` holds one class only (undefined)."""
  from sklearn import metrics as skm  # pylint: disable=g-import-not-at-top
  y = np.asarray(y)
  if len(np.unique(y)) < 2:
    return None
  return float(skm.roc_auc_score(y, score))


def binary_metrics(y, score, pred):
  """Label-1 metrics of scores (for the AUC) and hard predictions."""
  from sklearn import metrics as skm  # pylint: disable=g-import-not-at-top
  y, pred = np.asarray(y), np.asarray(pred).astype(int)
  return {
      "roc_auc": roc_auc(y, score),
      "accuracy": float((pred == y).mean()),
      "f1": float(skm.f1_score(y, pred, zero_division=0)),
      "precision": float(skm.precision_score(y, pred, zero_division=0)),
      "recall": float(skm.recall_score(y, pred, zero_division=0)),
  }


def fit_rule(x, y):
  """A one-feature threshold rule fit on train.

  Args:
    x: float [N] or [N, 1], the feature.
    y: int [N] labels in {0, 1}.

  Returns:
    (sign, threshold): the rule predicts 1 where sign * x > threshold. The
    sign orients the feature so that its train AUROC is >= 0.5 (for the
    longest-ORF fraction on lof data: -1, shorter ORF = non-viable); the
    threshold is the midpoint between consecutive train scores of highest
    train accuracy (the lowest such one on ties).
  """
  x, y = np.asarray(x, np.float64).ravel(), np.asarray(y)
  auc = roc_auc(y, x)
  sign = -1.0 if auc is not None and auc < 0.5 else 1.0
  s = sign * x
  values = np.unique(s)
  cands = np.concatenate([[values[0] - 1.0], (values[1:] + values[:-1]) / 2,
                          [values[-1] + 1.0]])
  pos, neg = np.sort(s[y == 1]), np.sort(s[y == 0])
  correct = (len(pos) - np.searchsorted(pos, cands, side="right")
             + np.searchsorted(neg, cands, side="right"))
  return sign, float(cands[int(np.argmax(correct))])


class Fitted:
  """A fitted method: `score(x)` (higher = label 1) and `predict(x)`."""

  def __init__(self, model, x, y, seed, gb_iters):
    self.model, self.rule = model, None
    if model == "rule":
      self.rule = fit_rule(x, y)
      return
    from sklearn.ensemble import HistGradientBoostingClassifier  # pylint: disable=g-import-not-at-top
    from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
    from sklearn.pipeline import make_pipeline  # pylint: disable=g-import-not-at-top
    from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
    if model == "lr":
      self.est = make_pipeline(
          StandardScaler(),
          LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000))
    elif model == "gb":
      self.est = HistGradientBoostingClassifier(
          max_iter=gb_iters, class_weight="balanced", random_state=seed)
    else:
      raise ValueError(f"unknown model {model!r}")
    self.est.fit(x, y)

  def score(self, x):
    if self.rule:
      return self.rule[0] * np.asarray(x, np.float64).ravel()
    return self.est.predict_proba(x)[:, 1]

  def predict(self, x):
    if self.rule:
      return (self.score(x) > self.rule[1]).astype(int)
    return (self.score(x) > 0.5).astype(int)


def _seeds_for(method, seeds):
  """Boosting runs per seed; the deterministic methods once (seed None)."""
  return list(seeds) if METHODS[method][1] == "gb" else [None]


def summarise(runs, keys):
  """{key: {mean, sd, n}} over per-seed dicts; None values are left out."""
  out = {}
  for k in keys:
    vals = [r[k] for r in runs if r.get(k) is not None]
    out[k] = {"mean": float(np.mean(vals)) if vals else None,
              "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
              "n": len(vals)}
  return out


def _fmt(summary, key="roc_auc"):
  s = summary[key]
  if s["mean"] is None:
    return "n/a"
  return f"{s['mean']:.3f}" + (f" ± {s['sd']:.3f}" if s["n"] > 1 else "")


def _by_group_auc(y, score, groups):
  """{group: AUROC of its own examples} (None where it has one class)."""
  return {g: roc_auc(y[groups == g], score[groups == g])
          for g in sorted(set(groups.tolist()))}


# --------------------------------------------------------------------------
# viral_viability


def negative_sets(kinds):
  """{name: negative kinds} for the kinds present: lof_* pooled, shuffle,
  and all of them."""
  present = sorted(set(kinds) - {"intact"})
  sets = {"lof": [k for k in present if k.startswith("lof")],
          "shuffle": [k for k in present if k == "shuffle"],
          "all": present}
  return {name: ks for name, ks in sets.items() if ks}


def viability_baselines(exs, split, seeds, gb_iters=100, log=print):
  """Test-split and leave-one-group-out baselines for viral_viability.

  Args:
    exs: examples (dicts with sequence, label, kind, group, table).
    split: (train, val, test) int index arrays into `exs`, split by group.
    seeds: seeds of the boosting fits.
    gb_iters: boosting rounds.
    log: print-like progress sink.

  Returns:
    {negative set: {'kinds', 'sizes', 'test': {method: ...},
    'logo': {method: ...}}}; each method entry holds 'per_seed' (a list)
    and 'summary' ({metric: {mean, sd, n}}).
  """
  feats = featurise(exs)
  y = np.array([e["label"] for e in exs], np.int64)
  kinds = np.array([e["kind"] for e in exs])
  groups = np.array([str(e["group"]) for e in exs])
  fit_idx = np.concatenate([split[0], split[1]]).astype(np.int64)
  test_idx = np.asarray(split[2], np.int64)
  results = {}
  for name, neg_kinds in negative_sets(kinds.tolist()).items():
    keep = np.isin(kinds, ["intact"] + neg_kinds)
    tr, te = fit_idx[keep[fit_idx]], test_idx[keep[test_idx]]
    sub = np.flatnonzero(keep)
    row = {"kinds": neg_kinds,
           "sizes": {part: {"n": int(len(i)), "label_1": int(y[i].sum()),
                            "groups": sorted(set(groups[i].tolist()))}
                     for part, i in (("fit", tr), ("test", te))},
           "test": {}, "logo": {}}
    for method in VIABILITY_METHODS:
      feat, model = METHODS[method]
      x = feats[feat]
      runs = []
      for seed in _seeds_for(method, seeds):
        fitted = Fitted(model, x[tr], y[tr], seed, gb_iters)
        score = fitted.score(x[te])
        run = {"seed": seed, **binary_metrics(y[te], score,
                                              fitted.predict(x[te]))}
        # The AUROC of intact against each negative kind on its own.
        run["roc_auc_by_kind"] = {
            k: roc_auc(y[te][np.isin(kinds[te], ["intact", k])],
                       score[np.isin(kinds[te], ["intact", k])])
            for k in neg_kinds}
        if fitted.rule:
          run["sign"], run["threshold"] = fitted.rule
        runs.append(run)
      row["test"][method] = {"per_seed": runs,
                             "summary": summarise(runs, METRICS)}
      row["logo"][method] = logo(x[sub], y[sub], groups[sub], kinds[sub],
                                 model, _seeds_for(method, seeds), gb_iters)
      log(f"viability/{name}: {method:8s} test AUROC "
          f"{_fmt(row['test'][method]['summary'])}, acc "
          f"{_fmt(row['test'][method]['summary'], 'accuracy')}, F1 "
          f"{_fmt(row['test'][method]['summary'], 'f1')}; leave-one-group-out"
          f" pooled AUROC {_fmt(row['logo'][method]['summary'])}")
    results[name] = row
  return results


def logo(x, y, groups, kinds, model, seeds, gb_iters):
  """Leave-one-group-out: each group scored by a fit on all the others.

  Returns:
    {'per_seed': [{seed, roc_auc (pooled over the out-of-group scores),
    roc_auc_by_group, roc_auc_by_kind}], 'summary'}. Pooling compares scores
    of different fits, as the research notes did; the per-group AUROCs do
    not.
  """
  names = sorted(set(groups.tolist()))
  runs = []
  for seed in seeds:
    score = np.full(len(y), np.nan)
    for g in names:
      held = groups == g
      if len(np.unique(y[~held])) < 2:
        continue  # The others hold one class: nothing to fit.
      score[held] = Fitted(model, x[~held], y[~held], seed,
                           gb_iters).score(x[held])
    done = ~np.isnan(score)
    runs.append({
        "seed": seed,
        "roc_auc": roc_auc(y[done], score[done]),
        "roc_auc_by_group": _by_group_auc(y[done], score[done], groups[done]),
        "roc_auc_by_kind": {
            k: roc_auc(y[done & np.isin(kinds, ["intact", k])],
                       score[done & np.isin(kinds, ["intact", k])])
            for k in sorted(set(kinds.tolist()) - {"intact"})},
    })
  return {"per_seed": runs, "summary": summarise(runs, ("roc_auc",))}


# --------------------------------------------------------------------------
# viral_vs_cellular


def cellular_baselines(exs, folds, seeds, gb_iters=100, lengths=LENGTHS,
                       log=print):
  """Group k-fold baselines for viral_vs_cellular, per fragment length.

  Args:
    exs: examples (dicts with sequence, label, group, length).
    folds: int [N] fold id of each example (a group never spans folds).
    seeds: seeds of the boosting fits.
    gb_iters: boosting rounds.
    lengths: fragment lengths to report (those present).
    log: print-like progress sink.

  Returns:
    {str(length): {'sizes', 'folds': {fold: groups}, method: {'per_seed':
    [{seed, pooled metrics at 0.5, roc_auc_per_fold, roc_auc_per_genome}],
    'summary'}}}.
  """
  y_all = np.array([e["label"] for e in exs], np.int64)
  groups_all = np.array([str(e["group"]) for e in exs])
  folds_all = np.asarray(folds)
  length_all = np.array([int(e.get("length", len(e["sequence"])))
                         for e in exs])
  results = {}
  for length in lengths:
    sub = np.flatnonzero(length_all == length)
    if not len(sub):
      continue
    feats = featurise([exs[i] for i in sub])
    y, groups, fold = y_all[sub], groups_all[sub], folds_all[sub]
    fold_ids = sorted(set(fold.tolist()))
    row = {"sizes": {"n": int(len(sub)), "viral": int(y.sum()),
                     "cellular": int((y == 0).sum())},
           "folds": {str(f): sorted(set(groups[fold == f].tolist()))
                     for f in fold_ids}}
    for method in CELLULAR_METHODS:
      feat, model = METHODS[method]
      x = feats[feat]
      runs = []
      for seed in _seeds_for(method, seeds):
        score = np.full(len(y), np.nan)
        for f in fold_ids:
          held = fold == f
          if len(np.unique(y[~held])) < 2:
            continue
          score[held] = Fitted(model, x[~held], y[~held], seed,
                               gb_iters).score(x[held])
        done = ~np.isnan(score)
        run = {"seed": seed, **binary_metrics(y[done], score[done],
                                              score[done] > 0.5)}
        run["roc_auc_per_fold"] = {
            str(f): roc_auc(y[done & (fold == f)], score[done & (fold == f)])
            for f in fold_ids}
        # A genome against the other class's fragments of its own fold.
        per_genome = {}
        for g in sorted(set(groups.tolist())):
          mine = groups == g
          f, label = fold[mine][0], y[mine][0]
          other = (fold == f) & (y != label)
          both = done & (mine | other)
          per_genome[g] = roc_auc(y[both], score[both])
        run["roc_auc_per_genome"] = per_genome
        runs.append(run)
      row[method] = {"per_seed": runs, "summary": summarise(runs, METRICS)}
      per_fold = ", ".join(
          "n/a" if v is None else f"{v:.2f}"
          for v in runs[0]["roc_auc_per_fold"].values())
      log(f"cellular/{length}: {method:8s} pooled out-of-fold AUROC "
          f"{_fmt(row[method]['summary'])} (per fold, seed "
          f"{runs[0]['seed']}: {per_fold})")
    results[str(length)] = row
  return results


# --------------------------------------------------------------------------


def quick_subset(exs, per_cell, seed, keys=("group", "kind", "length")):
  """At most `per_cell` examples per (group, kind, length), at random."""
  rng = np.random.default_rng(seed)
  cells = {}
  for i, e in enumerate(exs):
    cells.setdefault(tuple(e.get(k) for k in keys), []).append(i)
  keep = []
  for _, idx in sorted(cells.items(), key=lambda kv: str(kv[0])):
    keep += sorted(rng.permutation(idx)[:per_cell].tolist())
  return [exs[i] for i in sorted(keep)]


def examples_digest(exs):
  """SHA-256 over the examples' ids, labels, kinds, groups and sequences:
  it changes when the generator does, which dates the figures."""
  h = hashlib.sha256()
  for e in exs:
    h.update(f"{e['id']}\t{e['label']}\t{e['kind']}\t{e['group']}\t"
             f"{e['sequence']}\n".encode())
  return h.hexdigest()


def run_variant(variant, args, module, log=print):
  """Loads, splits and evaluates one variant; returns its JSON entry."""
  t0 = time.time()
  exs = module.make(variant, seed=args.data_seed)
  if args.quick:
    exs = quick_subset(exs, QUICK_PER_CELL, args.data_seed)
  seeds = [int(s) for s in args.seeds.split(",")]
  gb_iters = QUICK_GB_ITERS if args.quick else 100
  entry = {"n_examples": len(exs), "examples_sha256": examples_digest(exs),
           "groups": sorted(set(str(e["group"]) for e in exs))}
  if variant == "viral_viability":
    split = module.split_by_group(exs, args.split_seed)
    entry["split_seed"] = args.split_seed
    entry["fit_on"] = "train + val"
    entry["results"] = viability_baselines(exs, split, seeds, gb_iters, log)
  else:
    folds = module.group_folds(exs, args.folds)
    entry["k_folds"] = args.folds
    entry["results"] = cellular_baselines(exs, folds, seeds, gb_iters,
                                          log=log)
  entry["seconds"] = round(time.time() - t0, 1)
  return entry


def main(argv=None, module=None):
  """Runs the baselines and writes (merges into) the JSON file.

  Args:
    argv: command-line arguments (default sys.argv[1:]).
    module: the data module (make, split_by_group, group_folds); default
      `mmjax.data.viral.examples`. Tests pass a stand-in.

  Returns:
    The JSON document written.
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--variant", default="both",
                      choices=VARIANTS + ("both",))
  parser.add_argument("--seeds", default="0,1,2",
                      help="seeds of the boosting fits")
  parser.add_argument("--data_seed", type=int, default=0,
                      help="seed of examples.make (and of --quick's subset)")
  parser.add_argument("--split_seed", type=int, default=0,
                      help="seed of the viral_viability group split")
  parser.add_argument("--folds", type=int, default=4,
                      help="group folds for viral_vs_cellular")
  parser.add_argument("--quick", action="store_true",
                      help=f"at most {QUICK_PER_CELL} examples per (group, "
                      f"kind, length) and {QUICK_GB_ITERS} boosting rounds: "
                      "a smoke test, not figures")
  # OpenMP threads spin while they wait: on 2 cores shared with other jobs,
  # 2 threads made the small boosting fits 30x slower than 1 thread did.
  parser.add_argument("--threads", type=int, default=1,
                      help="BLAS/OpenMP threads of the fits")
  parser.add_argument("--out", default="docs/results/viral_baselines.json")
  args = parser.parse_args(argv)
  module = module or data_module()
  variants = VARIANTS if args.variant == "both" else (args.variant,)
  doc = {}
  if os.path.exists(args.out):
    with open(args.out) as f:
      doc = json.load(f)
  doc.setdefault("variants", {})
  n_kmer = len(viral_features.kmer_names((3, 4)))
  for variant in variants:
    entry = provenance.record("scripts/viral_baselines.py", argv,
                              ("numpy", "sklearn"))
    entry.update({
        "data_seed": args.data_seed, "seeds": args.seeds, "quick": args.quick,
        "threads": args.threads,
        "features": {
            "kmer": f"strand-symmetrised 3+4-mer frequencies ({n_kmer})",
            "gc": "GC content", "orf": "longest six-frame ORF / length"},
        "models": {
            "lr": "StandardScaler + LogisticRegression(L2, C=1, balanced)",
            "gb": "HistGradientBoostingClassifier(balanced, "
                  f"max_iter={QUICK_GB_ITERS if args.quick else 100})",
            "rule": "sign * feature > threshold, both fit on train"},
    })
    with threadpoolctl.threadpool_limits(args.threads):
      entry.update(run_variant(variant, args, module))
    doc["variants"][variant] = entry
    print(f"{variant}: {entry['n_examples']} examples, "
          f"{entry['seconds']:.0f} s")
  provenance.write_json(args.out, doc)
  return doc


if __name__ == "__main__":
  main()
