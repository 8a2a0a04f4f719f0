"""`viral_fasta`: a user's own nucleotide sequences and labels.

Two forms (dataset.*):
  fasta + labels   one FASTA file (optionally .gz) and a CSV with header
                   `id,label[,group]` (other columns are ignored): id the
                   FASTA record id (the header's first word), label an
                   integer 0..C-1 or a class name, group the split unit
                   (e.g. the genome a fragment comes from; default: the
                   record id). Every record needs a row and every row a
                   record.
  class_fastas     dict(class_name=path, ...): one FASTA per class, every
                   record its own group. Classes are numbered in the order
                   of dataset.class_names if given, else sorted by name
                   (ml_collections sorts dict keys anyway).
Sequences: letters A, C, G, T, N in either case (whitespace inside a line
is ignored); anything else, IUPAC codes and U included, is an error: map
them to N first. Tokens as `viral` (registered.TOKENS: A=0 .. N=4), one
modality `genome` of kind 'sequence'.

Length: T = dataset.budgets.genome.length if set, else the longest
sequence. A longer sequence is cut to T bases: its first T
(dataset.crop = 'start', default) or its middle T ('center'); nothing is
dropped, and the log says how many were cut.

Splits: whole groups to train/val/test, 70/15/15 of the records
(splits.group_split, dataset.split_seed); at least 3 groups are needed.
dataset.limit > 0 keeps at most that many examples per split (a seeded
random subset; smoke tests).

Every problem is one-line ValueError naming the file and, where there is
one, the record or line: text before the first header, a header without
an id, a record without sequence, a letter outside ACGTN (with its
position), a duplicate id, a CSV row whose id is no record, a record
without a row, a bad label.
"""

import csv
import gzip
import logging
import os

import numpy as np

from mmjax.data import splits as splits_lib
from mmjax.data.datasets import Dataset
from mmjax.data.viral import registered

_ALLOWED = frozenset("ACGTNacgtn")


def _open_text(path):
  """The file's text (gunzipped if it ends in .gz); ValueError if it cannot
  be read as UTF-8."""
  if not os.path.isfile(path):
    raise ValueError(f"{path}: file not found")
  try:
    if path.endswith(".gz"):
      with gzip.open(path, "rb") as f:
        data = f.read()
    else:
      with open(path, "rb") as f:
        data = f.read()
  except (OSError, EOFError) as e:
    raise ValueError(f"{path}: cannot read ({type(e).__name__}: "
                     f"{str(e).splitlines()[0] if str(e) else ''})") from e
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: not UTF-8 text (byte {e.start})") from e


def _printable(c):
  return repr(c) if c.isprintable() else f"U+{ord(c):04X}"


def read_fasta(path):
  """Records of a FASTA file, checked.

  A line-based reader rather than Biopython's: it has to name the line of
  every problem and refuse what Bio.SeqIO passes through (letters outside
  ACGTN).

  Args:
    path: FASTA file (.gz read as gzip).

  Returns:
    list of (id, sequence upper-case str, header line number), file order.

  Raises:
    ValueError: one line naming the file and the record or line.
  """
  text = _open_text(path)
  records, seen = [], {}
  rid, line0, chunks = None, 0, []

  def close():
    seq = "".join(chunks)
    if not seq:
      raise ValueError(f"{path} record {rid!r} (line {line0}): no sequence")
    records.append((rid, seq.upper(), line0))

  for num, line in enumerate(text.splitlines(), start=1):
    if line.startswith(">"):
      if rid is not None:
        close()
      words = line[1:].split()
      if not words:
        raise ValueError(f"{path} line {num}: header without an id")
      rid, line0, chunks = words[0], num, []
      if rid in seen:
        raise ValueError(f"{path} record {rid!r} (line {num}): duplicate id "
                         f"(first on line {seen[rid]})")
      seen[rid] = num
      continue
    s = "".join(line.split())
    if not s:
      continue
    if rid is None:
      raise ValueError(f"{path} line {num}: sequence text before the first "
                       "'>' header")
    if not _ALLOWED.issuperset(s):
      col = next(i for i, c in enumerate(s) if c not in _ALLOWED)
      pos = sum(len(c) for c in chunks) + col + 1
      raise ValueError(f"{path} record {rid!r} (line {num}): letter "
                       f"{_printable(s[col])} at position {pos} is not one "
                       "of A, C, G, T, N (map IUPAC codes to N first)")
    chunks.append(s)
  if rid is None:
    raise ValueError(f"{path}: no FASTA record (a record starts with a '>' "
                     "line)")
  close()
  return records


def read_label_csv(path, fasta_path, records):
  """{id: (label str, group str)} of a labels CSV, checked against the
  FASTA records (list of (id, ...)).

  Raises:
    ValueError: one line naming the CSV and line, or the FASTA and record.
  """
  text = _open_text(path)
  try:
    lines = [l for l in csv.reader(text.splitlines())
             if any(c.strip() for c in l)]
  except csv.Error as e:
    raise ValueError(f"{path}: cannot read CSV ({e})") from e
  if not lines:
    raise ValueError(f"{path}: empty file, expected header id,label[,group]")
  header = [c.strip().lower() for c in lines[0]]
  missing = [c for c in ("id", "label") if c not in header]
  if missing:
    raise ValueError(f"{path}: header {lines[0][:8]} lacks column(s) "
                     f"{missing}")
  col = {c: header.index(c) for c in ("id", "label", "group") if c in header}
  known = {r[0] for r in records}
  out, seen = {}, {}
  for num, line in enumerate(lines[1:], start=2):
    where = f"{path} line {num}"
    if len(line) != len(header):
      raise ValueError(f"{where}: {len(line)} fields, header has "
                       f"{len(header)}")
    rid = line[col["id"]].strip()
    if rid not in known:
      raise ValueError(f"{where}: id {rid[:80]!r} is not a record of "
                       f"{fasta_path}")
    if rid in seen:
      raise ValueError(f"{where}: duplicate id {rid!r} (first on line "
                       f"{seen[rid]})")
    seen[rid] = num
    label = line[col["label"]].strip()
    if not label:
      raise ValueError(f"{where}: empty label")
    group = line[col["group"]].strip() if "group" in col else ""
    out[rid] = (label, group or rid)
  if not out:
    raise ValueError(f"{path}: no data rows after the header")
  for rid, _, num in records:
    if rid not in out:
      raise ValueError(f"{fasta_path} record {rid!r} (line {num}): no row in "
                       f"{path}")
  return out


def label_ids(labels, where):
  """(int label [N], class names) of label strings: all integers 0..C-1
  (C >= 2) are used as they are; otherwise the sorted distinct names are
  the classes."""
  labels = list(labels)
  if all(l.lstrip("-").isdigit() and l.isascii() for l in labels):
    ids = np.asarray([int(l) for l in labels], np.int64)
    c = int(ids.max()) + 1
    if ids.min() < 0 or c < 2:
      raise ValueError(f"{where}: integer labels must be 0..C-1 with C >= 2 "
                       f"(got {sorted(set(ids.tolist()))[:5]})")
    return ids, tuple(str(i) for i in range(c))
  names = sorted(set(labels))
  if len(names) < 2:
    raise ValueError(f"{where}: one class only ({names[0]!r}); a classifier "
                     "needs two or more")
  return np.asarray([names.index(l) for l in labels], np.int64), tuple(names)


def _crop(seq, length, mode):
  if len(seq) <= length:
    return seq
  if mode == "center":
    start = (len(seq) - length) // 2
    return seq[start:start + length]
  return seq[:length]


class SequenceSource(list):
  """A split's examples (dicts), with per-example arrays `ids`, `labels`,
  `kinds` (class names) and `groups`."""

  def __init__(self, items):
    super().__init__(items)
    self.ids = np.asarray([e["id"] for e in items])
    self.labels = np.asarray([e["label"] for e in items], np.int32)
    self.kinds = np.asarray([e["kind"] for e in items])
    self.groups = np.asarray([e["group"] for e in items])


def _records(dcfg):
  """(ids, sequences, label strings, groups, where) of either form."""
  fasta = dcfg.get("fasta", None)
  class_fastas = dcfg.get("class_fastas", None)
  if bool(fasta) == bool(class_fastas):
    raise ValueError("viral_fasta: set either dataset.fasta (with "
                     "dataset.labels) or dataset.class_fastas")
  if fasta:
    fasta = os.path.expanduser(str(fasta))
    labels_path = dcfg.get("labels", None)
    if not labels_path:
      raise ValueError(f"{fasta}: dataset.labels (CSV id,label[,group]) is "
                       "not set")
    labels_path = os.path.expanduser(str(labels_path))
    recs = read_fasta(fasta)
    rows = read_label_csv(labels_path, fasta, recs)
    return ([r[0] for r in recs], [r[1] for r in recs],
            [rows[r[0]][0] for r in recs], [rows[r[0]][1] for r in recs],
            labels_path)
  paths = dict(class_fastas)
  order = list(dcfg.get("class_names", None) or sorted(paths))
  if sorted(order) != sorted(paths):
    raise ValueError(f"dataset.class_names {order} must name the keys of "
                     f"dataset.class_fastas {sorted(paths)}")
  ids, seqs, labels, owner = [], [], [], {}
  for name in order:
    path = os.path.expanduser(str(paths[name]))
    for rid, seq, num in read_fasta(path):
      if rid in owner:
        raise ValueError(f"{path} record {rid!r} (line {num}): duplicate id "
                         f"(also in {owner[rid]})")
      owner[rid] = path
      ids.append(rid)
      seqs.append(seq)
      labels.append(name)
  if len(order) < 2:
    raise ValueError("dataset.class_fastas: a classifier needs two or more "
                     "classes")
  return ids, seqs, labels, list(ids), "dataset.class_fastas"


def load_fasta_csv(dcfg, data_dir):
  """Reads a user's FASTA + CSV (or one FASTA per class) into a Dataset
  split by group (module docstring)."""
  del data_dir  # Read in place: nothing to build or cache.
  ids, seqs, label_strs, groups, where = _records(dcfg)
  if dcfg.get("class_fastas", None):
    order = list(dcfg.get("class_names", None) or
                 sorted(dict(dcfg.class_fastas)))
    labels = np.asarray([order.index(l) for l in label_strs], np.int64)
    class_names = tuple(order)
  else:
    labels, class_names = label_ids(label_strs, where)
  budgets = dcfg.get("budgets", None) or {}
  budget = (budgets.get(registered.MODALITY, None) or {}).get("length", None)
  length = int(budget) if budget else max(len(s) for s in seqs)
  if length < 1:
    raise ValueError(f"dataset.budgets.{registered.MODALITY}.length: "
                     f"{length} < 1")
  crop = dcfg.get("crop", "start") or "start"
  if crop not in ("start", "center"):
    raise ValueError(f"dataset.crop: {crop!r} is not 'start' or 'center'")
  cut = sum(len(s) > length for s in seqs)
  if cut:
    logging.warning("viral_fasta: %d of %d sequences longer than %d bases "
                    "cut to their %s %d", cut, len(seqs), length,
                    "first" if crop == "start" else "middle", length)
  if len(set(groups)) < 3:
    raise ValueError(f"{where}: {len(set(groups))} group(s); a train/val/"
                     "test split by group needs at least 3")
  examples = [{registered.MODALITY: registered.encode(_crop(s, length, crop)),
               "label": np.int32(l), "id": i, "group": g,
               "kind": class_names[l]}
              for i, s, l, g in zip(ids, seqs, labels, groups)]
  parts = splits_lib.group_split(groups, dcfg.split_seed,
                                 splits_lib.FRACTIONS)
  limit = int(dcfg.get("limit", 0) or 0)
  sources = {}
  for s, idx in zip(splits_lib.SPLITS, parts):
    if limit and len(idx) > limit:
      rng = np.random.default_rng([dcfg.split_seed, 0x11F])
      idx = np.sort(rng.permutation(idx)[:limit])
    sources[s] = SequenceSource([examples[i] for i in idx])
  return Dataset(sources, registered.sequence_spec(length, class_names))
