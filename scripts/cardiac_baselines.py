"""Classical baselines of the cardiac dataset (reference recipe 004): the
fate of a trajectory from its window, per progressive scale.

Usage:
  python scripts/cardiac_baselines.py [--scales 1,2,3] [--split_seed 0]
      [--data_dir DIR] [--size 0] [--gb_seeds 0] [--C 1.0]
      [--threads 1] [--quick] [--out docs/results/cardiac_baselines.json]

Examples. The scale-3 build is loaded once, as training loads it
(`registered.load_cardiac` with scale 3 and --split_seed: the stratified
65/25/10 split by (kind, fate)), from --data_dir (default $MMJAX_DATA_DIR,
else ~/.cache/mmjax/datasets, as `datasets.data_dir`); --size > 0 reads
the reduced build that dataset.size makes (tests). The progressive scales
share that one split, as the progressive-scaling driver trains mmjax:
scale s trains on the scale-3 training rows whose `levels` (the smallest
scale whose build holds the example) is at most s (`train_rows`), and
every scale is validated and tested on the scale-3 val and test splits,
so the scales are compared on the same examples.

Features:
  window      the flattened window x [80, 15] (1,200 values) and the
              position (1,201 columns)
  last_state  the window's last row x[-1] (15) and the position (16)

Models (nothing is tuned):
  lr  StandardScaler + LogisticRegression(C=--C, max_iter=2000): lbfgs,
      multinomial over the 6 fates; its iterations and whether it
      converged are recorded.
  gb  HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1,
      early_stopping=False, random_state=seed), once per --gb_seeds seed,
      reported per seed and as mean and sd over seeds. (The seed only
      drives the early-stopping split, feature subsampling and the binning
      subsample of more than 200,000 examples, none of which happens here,
      so the seeds agree: sd 0; one seed by default.)

Metrics, for train, val and test: accuracy, macro-F1 (sklearn f1_score,
average='macro', over the fates present in the labels or predictions),
and accuracy per kind (protocol, spatial; None where a split has no
example of that kind); beside them the train - val accuracy gap and the
fit time in seconds. The protocol examples are class-balanced and the
spatial ones keep their natural fates, so the per-kind figures differ in
prior as well as difficulty (compare scripts/cardiac_ceiling.py's
ceilings).

Results go to --out (overwritten): the command, date, commit, versions and
hardware, the arguments, and doc["scales"]["scale<k>"] with its sizes,
ids digests and doc[...]["features"][feature set][model]; the file is
written after every scale, so a long run keeps what it has done. A
markdown table (scale | features | model | train acc | val acc | test acc
| test macro-F1 | gap) is printed at the end. --quick (20 boosting
rounds) is a smoke test, not figures.
"""

import argparse
import hashlib
import os
import sys
import time
import warnings

import numpy as np
import threadpoolctl

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mmjax import provenance  # pylint: disable=g-import-not-at-top,wrong-import-position

SPLITS = ("train", "val", "test")
KINDS = ("protocol", "spatial")
FEATURES = ("window", "last_state")
MODELS = ("lr", "gb")
# The scale whose build holds every example: its splits are every scale's.
LOAD_SCALE = 3
LR_MAX_ITER = 2000
GB_MAX_ITER = 200
GB_LEARNING_RATE = 0.1
# --quick: boosting rounds.
QUICK_GB_ITERS = 20


def train_rows(levels, scale):
  """The rows of the scale-3 training split that scale `scale` trains on.

  Args:
    levels: int [N] the training split's `levels` (the smallest scale
      whose build holds each example).
    scale: the progressive scale (1, 2 or 3).

  Returns:
    int64 [M] sorted row indices, those with levels <= scale: nested, a
    smaller scale's rows are a subset of a larger one's.
  """
  return np.flatnonzero(np.asarray(levels) <= int(scale)).astype(np.int64)


def load_splits(data_dir, size=0, split_seed=0):
  """The scale-3 train, val and test splits, as training loads them.

  Returns:
    ({split: {ids str [N], labels int32 [N], kinds str [N], positions
    float32 [N], levels int32 [N], trajectories float32 [N, 80, 15]}},
    builder name 'cardiac/scale3/<version>').
  """
  from mmjax.data.cardiac import registered  # pylint: disable=g-import-not-at-top
  ds = registered.load_cardiac(
      {"scale": LOAD_SCALE, "split_seed": int(split_seed), "size": int(size)},
      data_dir)
  out = {}
  for name in SPLITS:
    src = ds.sources[name]
    out[name] = {
        "ids": np.asarray(src.ids), "kinds": np.asarray(src.kinds),
        "labels": np.asarray(src.labels, np.int32),
        "positions": np.asarray(src.positions, np.float32),
        "levels": np.asarray(src.levels, np.int32),
        "trajectories": np.stack(
            [src[i][registered.TRAJECTORY] for i in range(len(src))]
        ).astype(np.float32),
    }
  builder = registered.prepared_builder(LOAD_SCALE, data_dir, size)
  return out, f"cardiac/scale{LOAD_SCALE}/{builder.version}"


def features(split):
  """{'window': float32 [N, 80 * F + 1], 'last_state': [N, F + 1]} of a
  split: the flattened window or its last row, then the position."""
  x, pos = split["trajectories"], split["positions"][:, None]
  return {
      "window": np.concatenate([x.reshape(len(x), -1), pos], axis=1),
      "last_state": np.concatenate([x[:, -1], pos], axis=1),
  }


def ids_digest(ids):
  """SHA-256 of the ids, newline-joined."""
  return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


def split_metrics(y, pred, kinds):
  """{n, accuracy, macro_f1, accuracy_by_kind: {kind: accuracy or None}}."""
  from sklearn import metrics as skm  # pylint: disable=g-import-not-at-top
  y, pred, kinds = np.asarray(y), np.asarray(pred), np.asarray(kinds)
  hit = pred == y
  return {
      "n": int(len(y)),
      "accuracy": float(hit.mean()),
      "macro_f1": float(skm.f1_score(y, pred, average="macro",
                                     zero_division=0)),
      "accuracy_by_kind": {
          k: float(hit[kinds == k].mean()) if (kinds == k).any() else None
          for k in KINDS},
  }


def make_model(model, seed, args):
  """An unfitted sklearn estimator: 'lr' or 'gb'."""
  from sklearn.ensemble import HistGradientBoostingClassifier  # pylint: disable=g-import-not-at-top
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from sklearn.pipeline import make_pipeline  # pylint: disable=g-import-not-at-top
  from sklearn.preprocessing import StandardScaler  # pylint: disable=g-import-not-at-top
  if model == "lr":
    # lbfgs fits the multinomial loss for more than 2 classes.
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=args.C, max_iter=LR_MAX_ITER))
  if model == "gb":
    return HistGradientBoostingClassifier(
        max_iter=args.gb_iters, learning_rate=GB_LEARNING_RATE,
        early_stopping=False, random_state=seed)
  raise ValueError(f"unknown model {model!r}")


def fit_and_score(model, seed, data, args):
  """Fits one model on data['train'] and scores every split.

  Args:
    model: 'lr' or 'gb'.
    seed: random_state of 'gb' (None for 'lr').
    data: {split: (x [N, D], labels [N], kinds [N])}.
    args: the parsed arguments (C, gb_iters).

  Returns:
    {seed (gb), fit_seconds, train, val, test (split_metrics), gap (train
    - val accuracy)}, and for 'lr' n_iter and converged.
  """
  from sklearn.exceptions import ConvergenceWarning  # pylint: disable=g-import-not-at-top
  est = make_model(model, seed, args)
  x, y, _ = data["train"]
  t0 = time.time()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    est.fit(x, y)
  run = {"fit_seconds": round(time.time() - t0, 2)}
  if model == "gb":
    run = {"seed": seed, **run}
  else:
    n_iter = int(np.max(est[-1].n_iter_))
    run.update(n_iter=n_iter, converged=n_iter < LR_MAX_ITER)
  for name in SPLITS:
    xs, ys, ks = data[name]
    run[name] = split_metrics(ys, est.predict(xs), ks)
  run["gap"] = run["train"]["accuracy"] - run["val"]["accuracy"]
  return run


def _stack(runs, fn):
  """The values fn(run) over runs, None where any is None."""
  vals = [fn(r) for r in runs]
  return None if any(v is None for v in vals) else np.asarray(vals, float)


def summarise(runs):
  """(mean, sd) of the per-seed runs' metrics, in their nesting: splits'
  accuracy, macro_f1 and accuracy_by_kind, gap and fit_seconds (sd with
  ddof 1; 0 for one run; None where a value is None)."""
  def paths():
    for name in SPLITS:
      yield (name, "accuracy")
      yield (name, "macro_f1")
      for k in KINDS:
        yield (name, "accuracy_by_kind", k)
    yield ("gap",)
    yield ("fit_seconds",)

  def get(r, path):
    for p in path:
      r = r[p]
    return r

  mean, sd = {}, {}
  for path in paths():
    vals = _stack(runs, lambda r, path=path: get(r, path))
    m = None if vals is None else float(vals.mean())
    s = None if vals is None else (float(vals.std(ddof=1)) if len(vals) > 1
                                   else 0.0)
    for out, v in ((mean, m), (sd, s)):
      node = out
      for p in path[:-1]:
        node = node.setdefault(p, {})
      node[path[-1]] = v
  return mean, sd


def _log(text):
  print(text, flush=True)


def run_scale(scale, splits, feats, args, log=_log):
  """Fits and scores every feature set and model at one scale; returns its
  JSON entry."""
  t0 = time.time()
  rows = train_rows(splits["train"]["levels"], scale)
  parts = {"train": rows, "val": slice(None), "test": slice(None)}
  entry = {
      "scale": scale,
      "n": {name: int(len(splits[name]["ids"][parts[name]]))
            for name in SPLITS},
      "ids_sha256": {name: ids_digest(splits[name]["ids"][parts[name]])
                     for name in SPLITS},
      "class_counts": {
          name: {k: np.bincount(
              splits[name]["labels"][parts[name]][
                  splits[name]["kinds"][parts[name]] == k],
              minlength=args.num_classes).tolist() for k in KINDS}
          for name in SPLITS},
      "features": {},
  }
  for feat in FEATURES:
    data = {name: (feats[name][feat][parts[name]],
                   splits[name]["labels"][parts[name]],
                   splits[name]["kinds"][parts[name]]) for name in SPLITS}
    row = {"num_features": int(data["train"][0].shape[1])}
    row["lr"] = fit_and_score("lr", None, data, args)
    runs = [fit_and_score("gb", seed, data, args) for seed in args.seeds]
    mean, sd = summarise(runs)
    row["gb"] = {"mean": mean, "sd": sd, "per_seed": runs}
    entry["features"][feat] = row
    for model in MODELS:
      r = row[model] if model == "lr" else mean
      log(f"scale{scale} {feat} {model}: train {r['train']['accuracy']:.3f}"
          f", val {r['val']['accuracy']:.3f}, test "
          f"{r['test']['accuracy']:.3f} (fit {r['fit_seconds']:.1f} s)")
  entry["seconds"] = round(time.time() - t0, 1)
  return entry


def _get(node, path):
  for p in path:
    node = node[p]
  return node


def table(doc):
  """The markdown table of a results document: one row per scale, feature
  set and model (gb: mean ± sd over seeds)."""
  cols = (("train", "accuracy"), ("val", "accuracy"), ("test", "accuracy"),
          ("test", "macro_f1"), ("gap",))
  lines = ["| scale | features | model | train acc | val acc | test acc | "
           "test macro-F1 | gap |", "|---|---|---|---|---|---|---|---|"]
  for entry in doc["scales"].values():
    for feat, row in entry["features"].items():
      for model in MODELS:
        cells = []
        for path in cols:
          if model == "lr":
            mean, sd = _get(row["lr"], path), None
          else:
            mean = _get(row["gb"]["mean"], path)
            sd = _get(row["gb"]["sd"], path)
          cells.append("n/a" if mean is None else f"{mean:.3f}" + (
              "" if sd is None else f" ± {sd:.3f}"))
        lines.append(f"| {entry['scale']} | {feat} | {model} | "
                     + " | ".join(cells) + " |")
  return "\n".join(lines)


def _int_list(parser, flag, text, allowed=None):
  """The sorted distinct integers of a comma-separated flag value; exits
  with a one-line error (status 2) if one is not an integer, not allowed,
  or there are none."""
  def fail(why):
    parser.exit(2, f"{parser.prog}: error: {flag} {text!r}: {why}\n")
  try:
    vals = sorted({int(s) for s in text.split(",") if s.strip()})
  except ValueError:
    fail("not a comma-separated list of integers")
  if not vals:
    fail("empty")
  if allowed is not None:
    bad = [v for v in vals if v not in allowed]
    if bad:
      fail(f"{bad[0]} is not one of "
           f"{', '.join(map(str, sorted(allowed)))}")
  return vals


def main(argv=None):
  """Fits the baselines, writes the JSON file and prints the table.

  Args:
    argv: command-line arguments (default sys.argv[1:]).

  Returns:
    The JSON document written.
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--scales", default="1,2,3",
                      help="comma-separated progressive scales (1, 2, 3)")
  parser.add_argument("--split_seed", type=int, default=0,
                      help="dataset.split_seed (configs/cardiac.py: 0)")
  parser.add_argument("--data_dir", default="",
                      help="TFDS data dir (default $MMJAX_DATA_DIR, else "
                      "~/.cache/mmjax/datasets)")
  parser.add_argument("--size", type=int, default=0,
                      help="dataset.size: a reduced build (tests); 0 = the "
                      "full build")
  parser.add_argument("--gb_seeds", default="0",
                      help="comma-separated random_state of the boosting "
                      "fits")
  parser.add_argument("--C", type=float, default=1.0,
                      help="inverse L2 strength of the logistic regression")
  # OpenMP threads spin while they wait: on few cores shared with other
  # jobs one thread is the safe default (as scripts/viral_baselines.py).
  parser.add_argument("--threads", type=int, default=1,
                      help="BLAS/OpenMP threads of the fits")
  parser.add_argument("--quick", action="store_true",
                      help=f"{QUICK_GB_ITERS} boosting rounds: a smoke test, "
                      "not figures")
  parser.add_argument("--out", default="docs/results/cardiac_baselines.json")
  args = parser.parse_args(argv)
  from mmjax.data import datasets  # pylint: disable=g-import-not-at-top
  from mmjax.data.cardiac import network  # pylint: disable=g-import-not-at-top
  from mmjax.data.cardiac import trajectories  # pylint: disable=g-import-not-at-top

  scales = _int_list(parser, "--scales", args.scales, trajectories.SCALES)
  args.seeds = _int_list(parser, "--gb_seeds", args.gb_seeds)
  if args.size < 0 or args.threads < 1 or not args.C > 0:
    parser.exit(2, f"{parser.prog}: error: --size must be >= 0, --threads "
                ">= 1 and --C > 0\n")
  args.gb_iters = QUICK_GB_ITERS if args.quick else GB_MAX_ITER
  args.num_classes = len(network.FATES)
  data_dir = datasets.data_dir({"data_dir": args.data_dir})

  t0 = time.time()
  doc = provenance.record("scripts/cardiac_baselines.py", argv,
                          ("numpy", "sklearn", "tensorflow_datasets"))
  doc["arguments"] = {
      "scales": scales, "split_seed": args.split_seed, "size": args.size,
      "gb_seeds": args.seeds, "C": args.C, "threads": args.threads,
      "quick": args.quick}
  doc["features"] = {
      "window": "flattened window [80, 15] and the position",
      "last_state": "the window's last row [15] and the position"}
  doc["models"] = {
      "lr": f"StandardScaler + LogisticRegression(C={args.C}, "
            f"max_iter={LR_MAX_ITER}), multinomial (lbfgs)",
      "gb": f"HistGradientBoostingClassifier(max_iter={args.gb_iters}, "
            f"learning_rate={GB_LEARNING_RATE}, early_stopping=False, "
            "random_state=seed)"}
  doc["training_rows"] = (f"scale s trains on the scale-{LOAD_SCALE} train split's "
                 "rows with levels <= s; every scale is validated and "
                 f"tested on the scale-{LOAD_SCALE} val and test splits")
  splits, doc["builder"] = load_splits(data_dir, args.size, args.split_seed)
  feats = {name: features(splits[name]) for name in SPLITS}
  doc["scales"] = {}
  with threadpoolctl.threadpool_limits(args.threads):
    for scale in scales:
      doc["scales"][f"scale{scale}"] = run_scale(scale, splits, feats, args)
      doc["seconds"] = round(time.time() - t0, 1)
      # Written after every scale, so a long run keeps what it has done.
      provenance.write_json(args.out, doc)
  print(table(doc))
  print(f"{doc['seconds']:.0f} s")
  return doc


if __name__ == "__main__":
  main()
