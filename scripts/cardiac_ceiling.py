"""The Bayes-optimal accuracy of the cardiac dataset (reference recipe 004),
per scale and split, to report next to every result.

Usage:
  python scripts/cardiac_ceiling.py [--scales 1,2,3] [--split test]
      [--continuations 128] [--subsample 0] [--seed 0] [--split_seed 0]
      [--data_dir DIR] [--size 0] [--batch 4096] [--quick]
      [--out docs/results/cardiac_ceiling.json]

Examples. For each scale the examples are loaded exactly as training loads
them: `registered.load_cardiac` with configs/cardiac.py's `dataset`
section for that scale (builder config scale<k>, the stratified
65/25/10 split by (kind, fate) with --split_seed), built first if absent,
in --data_dir (default $MMJAX_DATA_DIR, else ~/.cache/mmjax/datasets,
as `datasets.data_dir`). --split is one of train, val, test or all (the
three together, in id order). --size > 0 reads the reduced build that
dataset.size makes (tests). --subsample N keeps a seeded random N of the
split, in proportion per kind (at least one of each kind present), so a
tiny subsample still has both kinds.

Ceiling (mmjax/data/cardiac/ceiling.py). The window shows the whole Markov
state, so the posterior of each fate is the committor q from the last
observed row. It is estimated twice, from two independent halves of
--continuations (64 + 64 by default) fresh continuations per example
(`ceiling.committor` with keys fold_in(fold_in(PRNGKey(seed), scale), h)
for halves h = 0, 1), and `ceiling.bayes_accuracy` gives E[max_k q_k]
twice: plug_in (mean max of the pooled halves; biased up) and split_half
(argmax on one half scored on the other, both ways; biased down). Two
priors:
  dataset_prior  the class balance of the dataset: protocol examples were
                 kept by rejection, 1/6 per fate, so their committor is
                 reweighted by w_k = (1/6) / natural share_k (the shares
                 from the build's natural_counts, `ceiling.weights`);
                 spatial examples keep w = 1 (natural labels). This is the
                 ceiling of a model trained and scored on this dataset.
  natural_prior  q as simulated, no reweighting: the mean over the same
                 examples of the protocol's own (unbalanced) posterior's
                 max. Not the accuracy of any rule on this dataset; shown
                 to say how much of the ceiling the rebalancing moves.
Each is given over all evaluated examples and per kind (protocol,
spatial); the spatial figures are the same under both priors. Beside them:
`committor_argmax`, the accuracy on the realised labels of the argmax of
the pooled dataset-prior q, an unbiased estimate of that rule's accuracy
(at most the ceiling, with binomial noise), a check on the estimates.

Scales. The scales are nested (a smaller scale's examples are the first
ones of a larger scale's) and each has the same 12:1 mix of class-balanced
protocol and natural spatial examples, so the expected ceiling under the
dataset's balance is the same at every scale. What differs is the
estimate: each scale's test split is a different sample of examples
(1/10 of 6,500, 9,750 or 13,000), its continuations are drawn afresh, and
its natural shares come from that build's own draws; compare the scales'
figures through their standard errors (_se, over examples).

Results go to --out, accumulated as doc["scales"]["scale<k>"][split], with
the command, date, commit, versions, hardware and seconds of each entry;
one summary line per scale is printed. --quick (12 examples, 8
continuations, batch 128) is a smoke test, not figures.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mmjax import provenance  # pylint: disable=g-import-not-at-top,wrong-import-position

KINDS = ("protocol", "spatial")
SPLITS = ("train", "val", "test", "all")
PRIORS = ("dataset_prior", "natural_prior")
# --quick: examples per scale, continuations per example, jitted batch.
QUICK_SUBSAMPLE = 12
QUICK_CONTINUATIONS = 8
QUICK_BATCH = 128


def dataset_config(scale, data_dir, size):
  """configs/cardiac.py's `dataset` section for `scale`, with data_dir
  and size set: what training loads."""
  from configs import cardiac as cardiac_config  # pylint: disable=g-import-not-at-top
  dcfg = cardiac_config.get_config(f"scale{scale}").dataset
  # The build of this scale with its own split (the recipe trains every
  # scale on the scale-3 split, whose test examples are scale 3's here).
  dcfg.scale, dcfg.train_scale = int(scale), 0
  dcfg.data_dir = data_dir
  dcfg.size = int(size)
  if dcfg.genes_only:
    # The committor needs the signal columns of the last row.
    raise ValueError("configs/cardiac.py sets genes_only; the ceiling needs "
                     "the full window")
  return dcfg


def builder_of(scale, data_dir, size):
  """The prepared builder registered.load_cardiac reads (its
  natural_counts metadata)."""
  from mmjax.data.cardiac import registered  # pylint: disable=g-import-not-at-top
  return registered.prepared_builder(scale, data_dir, size)


def load_examples(scale, split, data_dir, size=0, split_seed=0):
  """The examples of one scale and split, as training loads them.

  Returns:
    dict (sorted by id, make's order) of ids str [N], labels int32 [N],
    kinds str [N], positions float32 [N], last_state float32 [N, 15] (the
    window's last row), signal_state float32 [N, 2] (its Wnt, BMP), and
    natural_counts int64 [7], n_build (examples in the build), builder
    ('cardiac/scale<k>/<version>').
  """
  from mmjax.data.cardiac import registered  # pylint: disable=g-import-not-at-top
  dcfg = dataset_config(scale, data_dir, size)
  dcfg.split_seed = int(split_seed)
  ds = registered.load_cardiac(dcfg, data_dir)
  names = ("train", "val", "test") if split == "all" else (split,)
  parts = {k: [] for k in ("ids", "labels", "kinds", "positions",
                           "last_state")}
  for name in names:
    src = ds.sources[name]
    parts["ids"].append(np.asarray(src.ids))
    parts["labels"].append(np.asarray(src.labels, np.int32))
    parts["kinds"].append(np.asarray(src.kinds))
    parts["positions"].append(np.asarray(src.positions, np.float32))
    parts["last_state"].append(np.stack(
        [src[i]["trajectory"][-1] for i in range(len(src))]).astype(
            np.float32))
  out = {k: np.concatenate(v) for k, v in parts.items()}
  order = np.argsort(out["ids"], kind="stable")
  out = {k: v[order] for k, v in out.items()}
  out["signal_state"] = out["last_state"][:, :2].copy()

  from mmjax.data.cardiac import builder as builder_lib  # pylint: disable=g-import-not-at-top
  builder = builder_of(scale, data_dir, size)
  n_build = sum(len(s) for s in ds.sources.values())
  stored = builder.info.splits[builder_lib.SPLIT].num_examples
  if stored != n_build:
    raise ValueError(f"cardiac/scale{scale}: the builder in {data_dir} holds "
                     f"{stored} examples, the loaded dataset {n_build}")
  out["natural_counts"] = np.asarray(builder.info.metadata["natural_counts"],
                                     np.int64)
  out["n_build"] = n_build
  out["builder"] = f"cardiac/scale{scale}/{builder.version}"
  return out


def subsample(kinds, n, seed):
  """Sorted rows of a seeded random n of the examples, in proportion per
  kind (at least one of each kind present); all rows if n <= 0 or n >=
  len(kinds)."""
  kinds = np.asarray(kinds)
  if n <= 0 or n >= len(kinds):
    return np.arange(len(kinds))
  rng = np.random.default_rng([seed, 0xCE11])
  keep = []
  for k in sorted(set(kinds.tolist())):
    rows = np.flatnonzero(kinds == k)
    m = max(1, int(round(n * len(rows) / len(kinds))))
    keep.append(rng.permutation(rows)[:m])
  return np.sort(np.concatenate(keep))


def _clean(v):
  """NaN / inf to None (JSON has neither)."""
  if isinstance(v, dict):
    return {k: _clean(x) for k, x in v.items()}
  if isinstance(v, float) and not math.isfinite(v):
    return None
  return v


def ceilings(q_a, q_b, kinds, w):
  """{prior: {'all' | kind: bayes_accuracy dict, or None if no
  examples}} for the dataset prior (weights w [N, 6]) and the natural
  one."""
  from mmjax.data.cardiac import ceiling  # pylint: disable=g-import-not-at-top
  out = {}
  for prior, weights in zip(PRIORS, (w, None)):
    row = {}
    for group in ("all",) + KINDS:
      m = np.ones(len(kinds), bool) if group == "all" else kinds == group
      if not m.any():
        row[group] = None
        continue
      row[group] = _clean(ceiling.bayes_accuracy(
          q_a[m], q_b[m], None if weights is None else weights[m]))
    out[prior] = row
  return out


def argmax_accuracy(q_a, q_b, labels, kinds, w):
  """{'all' | kind: {accuracy, se, n}}: the realised-label accuracy of the
  argmax of the pooled dataset-prior committor."""
  from mmjax.data.cardiac import ceiling  # pylint: disable=g-import-not-at-top
  pooled = ceiling.reweight((np.asarray(q_a) + np.asarray(q_b)) / 2, w)
  hit = (pooled.argmax(-1) == labels).astype(np.float64)
  out = {}
  for group in ("all",) + KINDS:
    m = np.ones(len(kinds), bool) if group == "all" else kinds == group
    n = int(m.sum())
    if not n:
      out[group] = None
      continue
    acc = float(hit[m].mean())
    out[group] = _clean({"accuracy": acc,
                         "se": math.sqrt(acc * (1 - acc) / n) if n > 1
                         else float("nan"), "n": n})
  return out


def ids_digest(ids):
  """SHA-256 of the evaluated ids, newline-joined."""
  return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


def run_scale(scale, args, log=print):
  """Loads one scale's split, estimates the committor twice and returns
  its JSON entry (without provenance)."""
  import jax  # pylint: disable=g-import-not-at-top
  from mmjax.data.cardiac import ceiling  # pylint: disable=g-import-not-at-top
  from mmjax.data.cardiac import trajectories  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  ex = load_examples(scale, args.split, args.data_dir, args.size,
                     args.split_seed)
  n_split = len(ex["ids"])
  rows = subsample(ex["kinds"], args.subsample, args.seed)
  ids, labels, kinds = ex["ids"][rows], ex["labels"][rows], ex["kinds"][rows]
  per_half = args.continuations // 2
  base = jax.random.fold_in(jax.random.PRNGKey(args.seed), scale)
  halves, counts = [], []
  for h in range(2):
    q, c = ceiling.committor(
        jax.random.fold_in(base, h), ex["last_state"][rows],
        ex["signal_state"][rows], position=ex["positions"][rows],
        window=trajectories.WINDOW, continuations=per_half,
        batch=args.batch, return_counts=True)
    halves.append(q)
    counts.append(c)
  w = ceiling.weights(kinds, ex["natural_counts"])
  none = int(sum(c[:, -1].sum() for c in counts))
  entry = {
      "scale": scale, "split": args.split, "split_seed": args.split_seed,
      "seed": args.seed, "size": args.size, "quick": args.quick,
      "builder": ex["builder"], "n_build": ex["n_build"],
      "n_split": n_split, "n": int(len(rows)),
      "subsample": args.subsample,
      "ids_sha256": ids_digest(ids),
      "continuations": 2 * per_half, "per_half": per_half,
      "class_counts": {k: np.bincount(labels[kinds == k],
                                      minlength=ceiling.NUM_FATES).tolist()
                       for k in KINDS},
      "natural_counts": ex["natural_counts"].tolist(),
      "natural_shares": ceiling.natural_shares(
          ex["natural_counts"]).tolist(),
      "protocol_weights": ceiling.class_weights(
          np.full(ceiling.NUM_FATES, 1.0 / ceiling.NUM_FATES),
          ceiling.natural_shares(ex["natural_counts"])).tolist(),
      "continuations_to_no_fixed_point": none,
      "ceiling": ceilings(halves[0], halves[1], kinds, w),
      "committor_argmax": argmax_accuracy(halves[0], halves[1], labels,
                                          kinds, w),
  }
  entry["seconds"] = round(time.time() - t0, 1)
  return entry


def _fmt(r):
  if r is None:
    return "n/a"
  se = lambda v: "" if v is None else f" ± {v:.3f}"
  return (f"plug-in {r['plug_in']:.3f}{se(r['plug_in_se'])}, split-half "
          f"{r['split_half']:.3f}{se(r['split_half_se'])}")


def summary(entry):
  """One line: the dataset-prior ceiling of all examples, and its n."""
  c = entry["ceiling"]
  k = entry["class_counts"]
  return (f"scale{entry['scale']}/{entry['split']}: {entry['n']} examples "
          f"({sum(k['protocol'])} protocol, {sum(k['spatial'])} spatial), "
          f"{entry['per_half']}+{entry['per_half']} continuations: ceiling "
          f"{_fmt(c['dataset_prior']['all'])} (natural prior "
          f"{_fmt(c['natural_prior']['all'])}); {entry['seconds']:.0f} s")


def main(argv=None):
  """Estimates the ceilings and writes (merges into) the JSON file.

  Args:
    argv: command-line arguments (default sys.argv[1:]).

  Returns:
    The JSON document written.
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--scales", default="1,2,3",
                      help="comma-separated scales (1, 2, 3)")
  parser.add_argument("--split", default="test", choices=SPLITS)
  parser.add_argument("--continuations", type=int, default=None,
                      help="per example, split into two equal halves "
                      f"(default 128; --quick {QUICK_CONTINUATIONS})")
  parser.add_argument("--subsample", type=int, default=None,
                      help="evaluate a seeded random N of the split, in "
                      f"proportion per kind (default 0: all; --quick "
                      f"{QUICK_SUBSAMPLE})")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the continuations and of --subsample")
  parser.add_argument("--split_seed", type=int, default=0,
                      help="dataset.split_seed (configs/cardiac.py: 0)")
  parser.add_argument("--data_dir", default="",
                      help="TFDS data dir (default $MMJAX_DATA_DIR, else "
                      "~/.cache/mmjax/datasets)")
  parser.add_argument("--size", type=int, default=0,
                      help="dataset.size: a reduced build (tests)")
  parser.add_argument("--batch", type=int, default=None,
                      help="continuations per jitted call (default "
                      f"ceiling.BATCH; --quick {QUICK_BATCH})")
  parser.add_argument("--quick", action="store_true",
                      help="few examples and continuations: a smoke test, "
                      "not figures")
  parser.add_argument("--out", default="docs/results/cardiac_ceiling.json")
  args = parser.parse_args(argv)
  from mmjax.data import datasets  # pylint: disable=g-import-not-at-top
  from mmjax.data.cardiac import ceiling  # pylint: disable=g-import-not-at-top
  from mmjax.data.cardiac import trajectories  # pylint: disable=g-import-not-at-top

  scales = [int(s) for s in args.scales.split(",") if s.strip()]
  for s in scales:
    if s not in trajectories.SCALES:
      parser.error(f"--scales: {s} is not one of "
                   f"{', '.join(map(str, sorted(trajectories.SCALES)))}")
  if args.continuations is None:
    args.continuations = QUICK_CONTINUATIONS if args.quick else 128
  if args.subsample is None:
    args.subsample = QUICK_SUBSAMPLE if args.quick else 0
  if args.batch is None:
    args.batch = QUICK_BATCH if args.quick else ceiling.BATCH
  if args.continuations < 2 or args.continuations % 2:
    parser.error(f"--continuations {args.continuations}: an even number "
                 ">= 2 (two equal halves)")
  if args.batch < 1 or args.size < 0 or args.subsample < 0:
    parser.error("--batch must be >= 1, --size and --subsample >= 0")
  args.data_dir = datasets.data_dir({"data_dir": args.data_dir})

  doc = {}
  if os.path.exists(args.out):
    with open(args.out) as f:
      doc = json.load(f)
  doc.setdefault("scales", {})
  for scale in scales:
    entry = provenance.record(
        "scripts/cardiac_ceiling.py", argv,
        ("numpy", "jax", "jaxlib", "tensorflow_datasets"), with_jax=True)
    entry.update(run_scale(scale, args))
    doc["scales"].setdefault(f"scale{scale}", {})[args.split] = entry
    print(summary(entry), flush=True)
    # Written after every scale, so a long run keeps what it has done.
    provenance.write_json(args.out, doc)
  return doc


if __name__ == "__main__":
  main()
