"""labels.csv of a CIF folder: reading, checking, and the split of its rows.

  <dir>/labels.csv   header `id,label[,split]`; label is 0/1 or
                     `trivial`/`topological`; split in {train, val, test}

Errors are one-line `ValueError`s naming labels.csv and the line.
"""

import csv
import os
from typing import Any, NamedTuple

import numpy as np

from mmjax.data import splits as splits_lib
from mmjax.data.materials import schema
from mmjax.data.materials.read_errors import first_line

LABELS_FILE = "labels.csv"
SPLITS = splits_lib.SPLITS
SPLIT_FRACTIONS = splits_lib.FRACTIONS  # same order as SPLITS


class LabelRow(NamedTuple):
  """One row of labels.csv: material id, label in {0, 1}, split or None."""
  id: str
  label: int
  split: str | None


def parse_label(value: Any, where: str) -> int:
  """Returns 0 (trivial) or 1 (topological) for `value`.

  Args:
    value: 0, 1, "0", "1", "trivial" or "topological" (case-insensitive, may
      be surrounded by whitespace). Booleans and floats are rejected because
      they usually mean a wrong column was read.
    where: prefix for the error message (a file name, plus position).

  Raises:
    ValueError: if `value` is none of the above.
  """
  if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
    if int(value) in (0, 1):
      return int(value)
  elif isinstance(value, str):
    v = value.strip().lower()
    if v in ("0", "1"):
      return int(v)
    if v in schema.CLASS_NAMES:
      return schema.CLASS_NAMES.index(v)
  raise ValueError(f"{where}: bad label {value!r}, expected 0, 1, "
                   f"{schema.CLASS_NAMES[0]!r} or {schema.CLASS_NAMES[1]!r}")


def _check_id(mid: str, where: str) -> None:
  """Rejects ids that cannot safely name a file inside the folder."""
  if not mid or mid in (".", "..") or "/" in mid or "\\" in mid:
    raise ValueError(f"{where}: bad id {mid!r} (must be a plain file stem)")


def _read_csv(path: str) -> list[list[str]]:
  """Non-blank lines of a CSV file, as lists of fields."""
  if not os.path.isfile(path):
    raise ValueError(f"{path}: file not found (every dataset folder needs "
                     f"{LABELS_FILE} with header id,label[,split])")
  try:
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    with open(path, newline="", encoding="utf-8-sig") as f:
      lines = list(csv.reader(f))
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise ValueError(f"{path}: cannot read CSV ({type(e).__name__}: "
                     f"{first_line(e)})") from e
  return [l for l in lines if any(c.strip() for c in l)]


def read_labels(folder: str) -> list[LabelRow]:
  """Reads and checks `<folder>/labels.csv`.

  Args:
    folder: the dataset folder.

  Returns:
    The rows in file order.

  Raises:
    ValueError: naming labels.csv if it is missing, empty, lacks the `id` or
      `label` column, or has an empty/duplicate id, bad label or bad split.
  """
  path = os.path.join(folder, LABELS_FILE)
  lines = _read_csv(path)
  if not lines:
    raise ValueError(f"{path}: empty file, expected header id,label[,split]")
  header = [c.strip().lower() for c in lines[0]]
  missing = [c for c in ("id", "label") if c not in header]
  if missing:
    raise ValueError(f"{path}: header {lines[0]} lacks column(s) {missing}")
  col = {c: header.index(c) for c in ("id", "label", "split") if c in header}
  rows, seen = [], {}
  for lineno, line in enumerate(lines[1:], start=2):
    where = f"{path} line {lineno}"
    if len(line) != len(header):
      raise ValueError(f"{where}: {len(line)} fields, header has "
                       f"{len(header)}")
    mid = line[col["id"]].strip()
    _check_id(mid, where)
    if mid in seen:
      raise ValueError(f"{where}: duplicate id {mid!r} (first on line "
                       f"{seen[mid]})")
    seen[mid] = lineno
    label = parse_label(line[col["label"]], where)
    split = None
    if "split" in col:
      split = line[col["split"]].strip().lower()
      if split not in SPLITS:
        raise ValueError(f"{where}: bad split {line[col['split']]!r}, "
                         f"expected one of {SPLITS}")
    rows.append(LabelRow(mid, label, split))
  if not rows:
    raise ValueError(f"{path}: no data rows after the header")
  return rows


def assign_splits(rows: list[LabelRow], seed: int) -> dict[str, list[LabelRow]]:
  """Assigns rows to train/val/test.

  If the rows carry splits (labels.csv has a `split` column) they are used as
  given. Otherwise `splits.stratified_split` by label, over the rows sorted by
  id (so labels.csv's row order does not matter): every split holds the
  classes in proportion (within one material), sizes `splits.split_sizes`.

  Args:
    rows: labels.csv rows.
    seed: shuffling seed; the result depends only on (ids, labels, seed).

  Returns:
    {split: rows sorted by id}, every split in SPLITS present (maybe empty).
  """
  if rows and rows[0].split is not None:
    out = {s: [] for s in SPLITS}
    for r in rows:
      out[r.split].append(r)
    return out
  by_id = sorted(rows, key=lambda r: r.id)
  parts = splits_lib.stratified_split([r.label for r in by_id], seed)
  return {s: [by_id[i] for i in idx] for s, idx in zip(SPLITS, parts)}
