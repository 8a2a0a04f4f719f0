"""How much of materials_tb's labels the k-space modality alone determines:
the label that the degree of its stored pseudo-spin field implies, per split.

Usage:
  python scripts/materials_ceiling.py [--variant default]
      [--splits train,val,test] [--data_dir DIR] [--limit 0]
      [--out docs/results/materials_ceiling.json]

Examples. Every split is loaded exactly as training loads it:
`datasets.load_dataset` with configs/optimized.py's `dataset` section
(dataset.name materials_tb, dataset.variant --variant, default the one that
config trains on), built first if absent, in --data_dir (default
$MMJAX_DATA_DIR, else ~/.cache/mmjax/datasets, as `datasets.data_dir`).
The splits are the builder's stratified 70/15/15 split
(`materials_tb.split_indices`), read in their stored order. --limit N > 0
keeps the first N examples of each split (tests).

Rule. The k-space node features (`tb_features.kspace_node_features`) hold
n = d/|d| of H = d0 + d.sigma on the 32 x 32 mesh `k_mesh(32, 0.5)`.
`chern.degree_from_kspace_nodes` sums the signed solid angles of the two
triangles of every periodic plaquette of that mesh / 4 pi: the degree of
n, which is minus the Chern number of the lower band whenever the mesh
resolves it. Each example gets C = -round(degree) and the label the
dataset's own rule gives that C (`tb_generation.label_of_chern`: 1,
topological, iff C != 0), compared with its stored label.

Per split the JSON holds: n; the accuracy of the rule on the stored labels
(the ceiling: the fraction of labels the stored k-space features alone
reproduce); the confusion counts (stored label x rule); the counts of |C|
and of signed C; the distance of the degree from its nearest integer (max,
99th percentile, median); and the ids of the examples the rule gets wrong
(at most MAX_IDS). The degree is an integer up to floating-point rounding
on any periodic mesh (`chern.degree_of_unit_field`), so that distance checks
the arithmetic, not whether the mesh resolves n; the agreement with the
stored (exact) labels is what says the mesh is fine enough.

Results go to --out as doc["variants"][variant], with the command, date,
commit, versions, hardware and seconds of the run (other variants' entries
are kept); a markdown table is printed.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mmjax import provenance  # pylint: disable=g-import-not-at-top,wrong-import-position

SPLITS = ("train", "val", "test")
BATCH = 1024              # examples read and evaluated at a time
MAX_IDS = 50              # ids of wrongly labelled examples kept per split


def dataset_config(variant, data_dir):
  """configs/optimized.py's `dataset` section with variant and data_dir
  set: what training loads."""
  from configs import optimized  # pylint: disable=g-import-not-at-top
  from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top
  dcfg = optimized.get_config().dataset
  if dcfg.name != "materials_tb":
    raise UserError(f"configs/optimized.py trains on {dcfg.name}, not "
                     "materials_tb")
  if variant:
    dcfg.variant = variant
  dcfg.data_dir = data_dir
  return dcfg


def load_degrees(source, limit=0, batch=BATCH):
  """Degrees of the stored k-space features of one split's examples.

  Args:
    source: random-access source of a split (len(), source[i]).
    limit: > 0: only the first `limit` examples.
    batch: examples read at a time.

  Returns:
    dict of ids str [N], labels int64 [N], degree float64 [N], in the
    source's order.
  """
  from mmjax.data.materials import chern  # pylint: disable=g-import-not-at-top
  n = len(source) if limit <= 0 else min(limit, len(source))
  ids, labels, degree = [], [], []
  for start in range(0, n, batch):
    idx = list(range(start, min(n, start + batch)))
    if hasattr(source, "__getitems__"):
      exs = source.__getitems__(idx)
    else:
      exs = [source[i] for i in idx]
    ids.extend(str(ex["id"]) for ex in exs)
    labels.append(np.array([int(ex["label"]) for ex in exs], np.int64))
    degree.append(chern.degree_from_kspace_nodes(
        np.stack([ex["kspace_nodes"] for ex in exs])))
  return {"ids": np.array(ids, dtype=str),
          "labels": np.concatenate(labels) if labels else
                    np.zeros(0, np.int64),
          "degree": np.concatenate(degree) if degree else np.zeros(0)}


def _counts(values):
  """{str(value): count} in increasing order of value."""
  vals, counts = np.unique(np.asarray(values, np.int64), return_counts=True)
  return {str(int(v)): int(c) for v, c in zip(vals, counts)}


def split_report(ids, labels, degree):
  """The rule's figures on one split (see the module docstring).

  Args:
    ids: str [N]; labels: int [N] stored labels; degree: float [N].

  Returns:
    dict (JSON-ready).
  """
  from mmjax.data.materials import tb_generation  # pylint: disable=g-import-not-at-top
  labels = np.asarray(labels, np.int64)
  degree = np.asarray(degree, np.float64)
  c = -np.round(degree).astype(np.int64)
  pred = tb_generation.label_of_chern(c)
  dist = np.abs(degree - np.round(degree))
  n = len(labels)
  wrong = np.flatnonzero(pred != labels)
  confusion = {f"label{a}_rule{b}": int(((labels == a) & (pred == b)).sum())
               for a in (0, 1) for b in (0, 1)}
  return {
      "n": n,
      "accuracy": float((pred == labels).mean()) if n else None,
      "correct": int(n - len(wrong)),
      "wrong": int(len(wrong)),
      "confusion": confusion,
      "label_counts": _counts(labels),
      "abs_chern": _counts(np.abs(c)),
      "chern": _counts(c),
      "abs_chern_by_label": {str(a): _counts(np.abs(c[labels == a]))
                             for a in (0, 1)},
      "integer_distance": {
          "max": float(dist.max()) if n else None,
          "p99": float(np.percentile(dist, 99)) if n else None,
          "median": float(np.median(dist)) if n else None,
      },
      "wrong_ids": [str(ids[i]) for i in wrong[:MAX_IDS]],
  }


def table(entry):
  """The markdown table of one variant's entry."""
  head = ("| split | n | ceiling (rule = stored label) | wrong | confusion "
          "(l0r0, l0r1, l1r0, l1r1) | abs(C) counts | max dist | p99 dist |")
  lines = [head, "|" + "---|" * 8]
  for split, r in entry["splits"].items():
    cf = r["confusion"]
    conf = ", ".join(str(cf[f"label{a}_rule{b}"]) for a in (0, 1)
                     for b in (0, 1))
    absc = ", ".join(f"{k}: {v}" for k, v in r["abs_chern"].items())
    acc = "n/a" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
    dist = r["integer_distance"]
    fmt = lambda v: "n/a" if v is None else f"{v:.2e}"
    lines.append(f"| {split} | {r['n']} | {acc} | {r['wrong']} | {conf} | "
                 f"{absc} | {fmt(dist['max'])} | {fmt(dist['p99'])} |")
  return "\n".join(lines)


def run(args, log=print):
  """Loads every split and returns the variant's JSON entry (without
  provenance)."""
  from mmjax.data import datasets  # pylint: disable=g-import-not-at-top
  from mmjax.data.materials import materials_tb  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  dcfg = dataset_config(args.variant, args.data_dir)
  ds = datasets.load_dataset(dcfg)
  load_seconds = time.time() - t0
  entry = {
      "dataset": dcfg.name, "variant": dcfg.variant,
      "config": "configs/optimized.py",
      "builder": (f"materials_tb/{dcfg.variant}/"
                  f"{materials_tb.MaterialsTb.VERSION}"),
      "split_sizes": {s: len(src) for s, src in ds.sources.items()},
      "limit": args.limit,
      "mesh": "k_mesh(32, offset=0.5), from the stored kspace_nodes",
      "rule": "C = -round(degree); label 1 (topological) iff C != 0 "
              "(tb_generation.label_of_chern)",
      "splits": {},
  }
  for split in args.splits:
    got = load_degrees(ds.sources[split], args.limit)
    entry["splits"][split] = split_report(got["ids"], got["labels"],
                                          got["degree"])
    log(f"{split}: {entry['splits'][split]['n']} examples, ceiling "
        f"{entry['splits'][split]['accuracy']}", flush=True)
  entry["load_seconds"] = round(load_seconds, 1)
  entry["seconds"] = round(time.time() - t0, 1)
  return entry


def main(argv=None):
  """Computes the rule's figures and writes (merges into) the JSON file.

  Args:
    argv: command-line arguments (default sys.argv[1:]).

  Returns:
    The JSON document written.
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--variant", default="",
                      help="materials_tb builder config (default: "
                      "configs/optimized.py's dataset.variant)")
  parser.add_argument("--data_dir", default="",
                      help="TFDS data dir (default $MMJAX_DATA_DIR, else "
                      "~/.cache/mmjax/datasets)")
  parser.add_argument("--splits", default=",".join(SPLITS),
                      help="comma-separated splits")
  parser.add_argument("--limit", type=int, default=0,
                      help="> 0: the first N examples of each split (tests)")
  parser.add_argument("--out", default="docs/results/materials_ceiling.json")
  args = parser.parse_args(argv)
  from mmjax.data import datasets  # pylint: disable=g-import-not-at-top
  from mmjax.data.materials import materials_tb  # pylint: disable=g-import-not-at-top
  from mmjax.errors import UserError  # pylint: disable=g-import-not-at-top

  args.splits = [s.strip() for s in args.splits.split(",") if s.strip()]
  for s in args.splits:
    if s not in SPLITS:
      parser.error(f"--splits: {s} is not one of {', '.join(SPLITS)}")
  if not args.splits:
    parser.error("--splits: none given")
  variants = [c.name for c in materials_tb.MaterialsTb.BUILDER_CONFIGS]
  if args.variant and args.variant not in variants:
    parser.error(f"--variant: {args.variant} is not one of "
                 f"{', '.join(variants)}")
  if args.limit < 0:
    parser.error("--limit must be >= 0")
  args.data_dir = datasets.data_dir({"data_dir": args.data_dir})

  entry = provenance.record("scripts/materials_ceiling.py", argv,
                            ("numpy", "tensorflow_datasets"))
  try:
    entry.update(run(args))
  except UserError as e:
    sys.exit(f"materials_ceiling: {e}")
  doc = {}
  if os.path.exists(args.out):
    with open(args.out) as f:
      doc = json.load(f)
  doc.setdefault("variants", {})[entry["variant"]] = entry
  print(table(entry), flush=True)
  provenance.write_json(args.out, doc)
  return doc


if __name__ == "__main__":
  main()
