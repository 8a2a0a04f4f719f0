"""`viral_fasta` (mmjax/data/viral/fasta_folder.py) on broken input: every
malformed FASTA or labels CSV either loads or fails with one line that
names the file (and the record or line), never with another exception."""

import gzip

import ml_collections
import numpy as np
import pytest

from mmjax.data.datasets import load_dataset
from mmjax.data.viral import fasta_folder
from mmjax.errors import UserError

SEED = 0
RECORDS = [(f"g{g}_r{r}", g) for g in range(5) for r in range(3)]


def _fasta(rng, records=RECORDS, width=60):
  out = []
  for rid, _ in records:
    n = int(rng.integers(40, 200))
    seq = "".join(rng.choice(list("ACGTacgtN"), n))
    out.append(f">{rid} some description\n")
    out += [seq[i:i + width] + "\n" for i in range(0, n, width)]
  return "".join(out)


def _csv(records=RECORDS, labels=("viable", "nonviable")):
  rows = ["id,label,group"] + [f"{rid},{labels[i % 2]},genome{g}"
                               for i, (rid, g) in enumerate(records)]
  return "\n".join(rows) + "\n"


def _cfg(tmp_path, fasta, labels, **kw):
  fa = tmp_path / "seqs.fa"
  csv = tmp_path / "labels.csv"
  for path, data in ((fa, fasta), (csv, labels)):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
  cfg = dict(name="viral_fasta", fasta=str(fa), labels=str(csv),
             split_seed=0)
  cfg.update(kw)
  return ml_collections.ConfigDict(cfg), str(fa), str(csv)


def _load(cfg):
  return fasta_folder.load_fasta_csv(cfg, "")


def _one_line_error(cfg, *names):
  with pytest.raises(ValueError) as err:
    _load(cfg)
  message = str(err.value)
  assert "\n" not in message, message
  assert any(n in message for n in names), message
  return message


def test_valid_input_loads(tmp_path):
  rng = np.random.default_rng(SEED)
  text = _fasta(rng)
  cfg, _, _ = _cfg(tmp_path, text, _csv())
  ds = _load(cfg)
  assert sum(len(s) for s in ds.sources.values()) == len(RECORDS)
  assert ds.spec.class_names == ("nonviable", "viable")
  assert ds.spec.modalities["genome"].kind == "sequence"
  groups = [set(s.groups.tolist()) for s in ds.sources.values()]
  assert not (groups[0] & groups[1] or groups[0] & groups[2]
              or groups[1] & groups[2])
  ex = ds.sources["train"][0]
  assert ex["genome"].dtype == np.int32 and ex["genome"].max() <= 4
  # Budget below the longest sequence: crops, nothing dropped.
  cfg.budgets = dict(genome=dict(length=50))
  cfg.crop = "center"
  ds = _load(cfg)
  assert ds.spec.modalities["genome"].shape == (50,)
  assert max(len(e["genome"]) for s in ds.sources.values() for e in s) == 50
  # Integer labels, gzip, no group column (each record its own group).
  gz = tmp_path / "seqs.fa.gz"
  gz.write_bytes(gzip.compress(text.encode()))
  csv = tmp_path / "int.csv"
  csv.write_text("id,label\n" + "".join(f"{rid},{i % 2}\n" for i, (rid, _)
                                        in enumerate(RECORDS)))
  ds = _load(ml_collections.ConfigDict(dict(fasta=str(gz), labels=str(csv),
                                            split_seed=1)))
  assert ds.spec.class_names == ("0", "1")
  assert len({g for s in ds.sources.values() for g in s.groups}) == 15
  # Through the registry: a ValueError becomes a one-line UserError.
  cfg, fa, _ = _cfg(tmp_path, ">a\nACGU\n", _csv())
  with pytest.raises(UserError, match="dataset viral_fasta: .*record 'a'"):
    load_dataset(cfg)


def test_one_fasta_per_class(tmp_path):
  rng = np.random.default_rng(SEED)
  (tmp_path / "a.fa").write_text(_fasta(rng, RECORDS[:6]))
  (tmp_path / "b.fa").write_text(_fasta(rng, RECORDS[6:]))
  cfg = ml_collections.ConfigDict(dict(
      class_fastas=dict(viable=str(tmp_path / "a.fa"),
                        nonviable=str(tmp_path / "b.fa")),
      class_names=("viable", "nonviable"), split_seed=0))
  ds = _load(cfg)
  assert ds.spec.class_names == ("viable", "nonviable")
  labels = {e["id"]: int(e["label"]) for s in ds.sources.values() for e in s}
  assert labels["g0_r0"] == 0 and labels["g4_r2"] == 1
  (tmp_path / "b.fa").write_text(_fasta(rng, RECORDS[5:]))
  message = _one_line_error(cfg, str(tmp_path / "b.fa"))
  assert "record 'g1_r2'" in message and "duplicate id" in message


CASES = {
    # name: (fasta, csv, text the one-line error must hold)
    "text_before_header": ("ACGT\n>a\nACGT\n", None, "line 1: sequence "
                           "text before the first '>'"),
    "header_without_id": (">\nACGT\n", None, "line 1: header without an id"),
    "empty_record": (">g0_r0\n>g0_r1\nACGT\n", None,
                     "record 'g0_r0' (line 1): no sequence"),
    "iupac": (">g0_r0\nACGTRACGT\n", None,
              "record 'g0_r0' (line 2): letter 'R' at position 5"),
    "rna": (">g0_r0\nACGU\n", None, "letter 'U' at position 4"),
    "gap": (">g0_r0\nAC\nG-T\n", None, "(line 3): letter '-' at position 4"),
    "stop": (">g0_r0\nACGT*\n", None, "letter '*'"),
    "digits": (">g0_r0\n1 ACGT\n", None, "letter '1' at position 1"),
    "nul": (">g0_r0\nAC\x00GT\n", None, "letter U+0000 at position 3"),
    "duplicate_fasta": (">g0_r0\nACGT\n>g0_r0\nACGT\n", None,
                        "record 'g0_r0' (line 3): duplicate id (first on "
                        "line 1)"),
    "empty_fasta": ("", None, "no FASTA record"),
    "latin1": (b">g0_r0\nAC\xe9GT\n", None, "not UTF-8 text"),
    "unknown_id": (None, "id,label\nnope,1\n", "line 2: id 'nope' is not a "
                   "record of"),
    "missing_row": (None, "id,label\ng0_r0,1\n", "no row in"),
    "duplicate_csv": (None, "id,label\ng0_r0,1\ng0_r0,0\n",
                      "line 3: duplicate id 'g0_r0'"),
    "ragged": (None, "id,label\ng0_r0,1,x\n", "line 2: 3 fields"),
    "no_label_column": (None, "id,class\ng0_r0,1\n", "lacks column(s) "
                        "['label']"),
    "empty_csv": (None, "", "empty file"),
    "header_only": (None, "id,label\n", "no data rows"),
    "empty_label": (None, "id,label\ng0_r0,\n", "line 2: empty label"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_is_one_line(tmp_path, name):
  fasta, csv, want = CASES[name]
  rng = np.random.default_rng(SEED)
  if fasta is None:
    fasta = _fasta(rng)
  if csv is None:
    csv = _csv()
  cfg, fa, lab = _cfg(tmp_path, fasta, csv)
  message = _one_line_error(cfg, fa, lab)
  assert want in message, message


def test_one_class_or_too_few_groups(tmp_path):
  rng = np.random.default_rng(SEED)
  cfg, _, lab = _cfg(tmp_path, _fasta(rng), _csv(labels=("x", "x")))
  assert "one class only" in _one_line_error(cfg, lab)
  two = [(rid, g % 2) for rid, g in RECORDS]
  cfg, _, lab = _cfg(tmp_path, _fasta(rng, two), _csv(two))
  assert "needs at least 3" in _one_line_error(cfg, lab)


def _mutate(rng, data):
  """One random corruption of bytes: flips, a cut, a splice or junk."""
  data = bytearray(data)
  how = int(rng.integers(4))
  if how == 0:
    for _ in range(int(rng.integers(1, 6))):
      i = int(rng.integers(len(data)))
      data[i] = int(rng.integers(256))
  elif how == 1:
    data = data[:int(rng.integers(len(data)))]
  elif how == 2:
    i, j = sorted(rng.integers(0, len(data), 2))
    data = data[:i] + data[j:] + data[i:j]
  else:
    i = int(rng.integers(len(data)))
    data[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 30)),
                                   dtype=np.uint8))
  return bytes(data)


def test_fuzz_fasta_and_csv(tmp_path):
  rng = np.random.default_rng(SEED)
  fasta = _fasta(rng).encode()
  csv = _csv().encode()
  outcomes = {"ok": 0, "value_error": 0}
  for k in range(300):
    f, c = fasta, csv
    if k % 3 != 1:
      f = _mutate(rng, f)
    if k % 3 != 0:
      c = _mutate(rng, c)
    d = tmp_path / str(k)
    d.mkdir()
    cfg, fa, lab = _cfg(d, f, c)
    try:
      _load(cfg)
      outcomes["ok"] += 1
    except ValueError as e:
      message = str(e)
      assert "\n" not in message and (fa in message or lab in message), (
          k, message)
      outcomes["value_error"] += 1
  print(f"\nviral_fasta fuzz: {outcomes}")
  assert outcomes["ok"] > 0 and outcomes["value_error"] > 100, outcomes
