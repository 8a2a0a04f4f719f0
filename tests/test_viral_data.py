"""The `viral` dataset: vendored records, genomes and CDS, the exact coding
rule (checked against Biopython's translation), the generators, splits,
the TFDS builder on a small build and loading through the registry."""

import bisect
import collections
import gzip
import hashlib
import io
import itertools
import os

import ml_collections
import numpy as np
import pytest
from Bio.Seq import Seq

from mmjax.data import pipeline
from mmjax.data.datasets import load_dataset
from mmjax.data.viral import examples
from mmjax.data.viral import features
from mmjax.data.viral import genomes
from mmjax.data.viral import mutations as mut
from mmjax.data.viral import registered

LENGTHS = {"lambda": 48502, "T7": 39937, "phiX174": 5386, "HIV-1": 9181,
           "SARS-CoV-2": 29903, "Agate": 179382, "Topaz": 21620,
           "Spy-pp1": 40527, "Spy-pp2": 41958, "Spy-pp3": 32816,
           "Spy-pp4": 12950, "fluA-NP": 1444, "fluA-NA": 1410,
           "fluA-HA": 1698}
CDS = {"phiX174": 11, "SARS-CoV-2": 12, "Agate": 203, "Topaz": 31,
       "Spy-pp1": 49, "Spy-pp2": 63, "Spy-pp3": 51, "Spy-pp4": 21,
       "fluA-NP": 1, "fluA-NA": 1, "fluA-HA": 1}
CELLULAR = {"Ecoli536": 4938920, "Cdiphtheriae": 2463666,
            "Spyogenes": 1852441, "Ctrachomatis": 1042519,
            "Kutzneria744": 20000, "pPCP1": 9609}


@pytest.fixture(scope="module")
def viral():
  return {g.name: g for g in genomes.viral_genomes()}


@pytest.fixture(scope="module")
def viability():
  # The 1.0.0 size (per_group 700): the rules do not depend on it.
  return examples.make("viral_viability", per_group=700)


def test_manifest_hashes_and_licences():
  man = genomes.manifest()
  total = 0
  for f in man["files"]:
    with open(os.path.join(genomes.VENDOR, f["file"]), "rb") as h:
      stored = h.read()
    total += len(stored)
    assert hashlib.sha256(stored).hexdigest() == f["stored_sha256"], f["file"]
    assert len(stored) == f["bytes"]
    # The bytes the package ships: the stored file itself where the package
    # ships it gzipped, else its gunzipped content.
    shipped = stored if f["inner_path"].endswith(".gz") else (
        gzip.decompress(stored))
    assert hashlib.sha256(shipped).hexdigest() == f["sha256"], f["file"]
    for key in ("package", "version", "archive", "archive_sha256",
                "licence", "records"):
      assert f[key], (f["file"], key)
  names = " ".join(f["file"] + f["inner_path"] for f in man["files"])
  assert "EPI_ISL" not in names   # GISAID records are not redistributed
  assert total < 5_000_000
  licences = os.listdir(os.path.join(genomes.VENDOR, "licenses"))
  for name in ("GPL-3.0.txt", "GPL-2.0.txt", "biopython-LICENSE.rst",
               "bacphlip-LICENSE.txt", "phispy-LICENSE", "gb2seq-LICENSE.txt",
               "bowtie-examples-debian-copyright",
               "r-cran-seqinr-debian-copyright"):
    assert name in licences
  assert os.path.isfile(os.path.join(genomes.VENDOR, "README.md"))


def test_genomes_lengths_cds_and_groups(viral):
  assert {n: len(g.seq) for n, g in viral.items()} == LENGTHS
  assert {n: len(g.cds) for n, g in viral.items() if g.cds} == CDS
  assert sum(CDS.values()) == 444
  assert len({g.group for g in viral.values()}) == 12
  for g in viral.values():
    assert set(g.seq) <= set("ACGTN") and g.kind == "viral"
    assert len({c.name for c in g.cds}) == len(g.cds)
  assert viral["Agate"].table == viral["Topaz"].table == 15
  ess = {c.name: c.essential for c in viral["SARS-CoV-2"].cds}
  assert [n for n, e in ess.items() if e] == ["ORF1ab", "ORF1a", "S", "E",
                                               "M", "N"]
  ess = {c.name: c.essential for c in viral["phiX174"].cds}
  assert sorted(n for n, e in ess.items() if not e) == ["A*", "K"]
  spy = [c for n in ("Spy-pp1", "Spy-pp2", "Spy-pp3", "Spy-pp4")
         for c in viral[n].cds]
  off = sorted(c.product for c in spy if not c.essential)
  assert len(off) == 18 and any("SpeC" in p for p in off)
  assert all(genomes.NONESSENTIAL_PRODUCT.search(p) for p in off)
  cell = {g.name: g for g in genomes.cellular_genomes()}
  assert {n: len(g.seq) for n, g in cell.items()} == CELLULAR
  masked = sum(b - a for _, a, b in genomes.PROPHAGES)
  assert cell["Spyogenes"].seq.count("N") == masked
  for _, a, b in genomes.PROPHAGES:
    assert set(cell["Spyogenes"].seq[a:b]) == {"N"}


def test_translation_of_known_cds(viral):
  sars = {c.name: c for c in viral["SARS-CoV-2"].cds}
  seq = viral["SARS-CoV-2"].seq

  def protein(g, c):
    return mut.translate(mut.cds_sequence(g.seq, c.parts)[c.phase:],
                         c.table, to_stop=True)

  s = protein(viral["SARS-CoV-2"], sars["S"])
  assert s.startswith("MFVFLVLLPLVSSQ") and len(s) == 1273
  # The -1 ribosomal frameshift join (base 13468 read twice): pp1ab.
  assert len(protein(viral["SARS-CoV-2"], sars["ORF1ab"])) == 7096
  assert len(protein(viral["SARS-CoV-2"], sars["ORF1a"])) == 4405
  nt = mut.cds_sequence(seq, sars["ORF1ab"].parts)
  assert mut.translate(nt, 1) == str(Seq(nt).translate(table=1))
  # phiX174 under table 11: A wraps around the origin; B lies inside A.
  phix = {c.name: c for c in viral["phiX174"].cds}
  a = protein(viral["phiX174"], phix["A"])
  assert a.startswith("MVRSYYPSECHADYF") and len(a) == 513
  assert protein(viral["phiX174"], phix["B"]).startswith("MEQLTKNQAVATSQE")
  for c in viral["phiX174"].cds:
    full = mut.translate(mut.cds_sequence(viral["phiX174"].seq, c.parts), 11)
    assert full.endswith("*") and "*" not in full[:-1], c.name
  # Table 15 reads TAG as glutamine; 11 stops there.
  assert mut.translate("ATGTAGTAA", 15) == "MQ*"
  assert mut.translate("ATGTAGTAA", 11) == "M**"


def test_cds_match_shipped_proteins(viral):
  """Every Agate / Topaz CDS translates to the protein pyrodigal-gv ships
  (its first residue is M for any start codon), every SF370 prophage CDS
  to its GenBank /translation."""
  from Bio import SeqIO  # pylint: disable=g-import-not-at-top
  for name in ("Agate", "Topaz"):
    faa = {r.id: str(r.seq).rstrip("*") for r in SeqIO.parse(
        io.StringIO(genomes._text(f"phage_{name}.faa.gz")), "fasta")}
    g = viral[name]
    assert len(faa) == len(g.cds)
    for c in g.cds:
      p = mut.translate(mut.cds_sequence(g.seq, c.parts)[c.phase:], 15)
      assert p.rstrip("*")[1:] == faa[c.name][1:], c.name
  rec = genomes._sf370()
  shipped = {f.qualifiers["db_xref"][0].split(":", 1)[1]:
             f.qualifiers["translation"][0]
             for f in rec.features
             if f.type == "CDS" and f.qualifiers.get("is_phage")}
  n = 0
  for name in ("Spy-pp1", "Spy-pp2", "Spy-pp3", "Spy-pp4"):
    g = viral[name]
    for c in g.cds:
      p = mut.translate(mut.cds_sequence(g.seq, c.parts), 11, to_stop=True)
      assert p[1:] == shipped[c.name][1:], c.name
      n += 1
  assert n == 184


# A toy genome: CDS 'ess' on + (ATG + 9 codons + stop), CDS 'rev' on -
# (essential), CDS 'opt' (non-essential).
_ESS = "ATG" + "GCTGAAAAACTGTGGCCGCGTGATTTT" + "TAA"   # M A E K L W P R D F *
_TOY = "CC" + _ESS + "GG" + mut.reverse_complement(_ESS) + "TT" + _ESS + "AA"
_TOY_CDS = (
    genomes.Cds("ess", ((2, 35, 1),), True, 11),
    genomes.Cds("rev", ((37, 70, -1),), True, 11),
    genomes.Cds("opt", ((72, 105, 1),), False, 11),
)


def _verdict(*edits):
  return mut.classify(_TOY, _TOY_CDS, list(edits))


def test_rule_on_a_toy_genome():
  assert mut.translate(_ESS, 11) == "MAEKLWPRDF*"
  assert mut.cds_sequence(_TOY, _TOY_CDS[1].parts) == _ESS
  E = mut.Edit
  # Stop at codon 4 (AAA -> TAA): premature.
  v = _verdict(E(2 + 9, 1, "T"))
  assert v.label == 1 and v.reasons == {"ess": ("stop",)}
  # Stop at codon 9 of 10 (>= 90%): intact, a late stop.
  v = _verdict(E(2 + 27, 1, "T"), E(2 + 28, 1, "A"), E(2 + 29, 1, "A"))
  assert v.label == 0 and v.effects == {"ess": "late_stop"}
  # Synonymous (GCT -> GCC) and missense (GCT -> ACT).
  assert _verdict(E(5 + 2, 1, "C")).effects == {"ess": "synonymous"}
  assert _verdict(E(5, 1, "A")).effects == {"ess": "missense"}
  # Indels: 1 bp frameshift, 3 bp in frame; at a part boundary: outside.
  assert _verdict(E(10, 0, "A")).reasons == {"ess": ("stop", "frameshift")}
  v = _verdict(E(10, 3, ""))
  assert v.label == 0 and v.effects == {"ess": "inframe_indel"}
  assert _verdict(E(2, 0, "AC")).effects == {}
  # Start codon: ATG -> ACG lost (table 11 starts: ATG GTG TTG); ATG ->
  # GTG kept.
  assert _verdict(E(3, 1, "C")).reasons == {"ess": ("start",)}
  assert _verdict(E(2, 1, "G")).label == 0
  # Minus strand: the complement of the start codon's A is the genome's
  # last base of the part.
  assert _verdict(E(69, 1, "G")).reasons == {"rev": ("start",)}
  # The same knock-outs in the non-essential CDS leave the genome intact.
  v = _verdict(E(72 + 9, 1, "T"), E(90, 0, "A"), E(73, 1, "C"))
  assert v.label == 0 and v.effects["opt"] == "stop+frameshift+start"
  with pytest.raises(ValueError, match="overlaps"):
    _verdict(E(10, 3, ""), E(11, 1, "A"))


def test_join_across_the_origin():
  # A CDS that starts 6 bases before the end and wraps to the beginning.
  seq = "CCCAAT" + "GGG" + "TTTTT" + "CGTATG"   # 20 bases
  cds = genomes.Cds("w", ((14, 20, 1), (0, 6, 1)), True, 11)
  assert mut.cds_sequence(seq, cds.parts) == "CGTATGCCCAAT"
  edits = [mut.Edit(2, 1, "A")]   # CCC -> CCA in the second part
  assert mut.cds_sequence(seq, cds.parts, edits) == "CGTATGCCAAAT"
  assert mut.cds_to_genome(cds.parts, 7) == (1, 1)


class _Mutated:
  """A genome with edits, rebuilt without mutations.splice: its bases as
  (base, index) pairs with the edits applied to that list (an inserted
  base has the index of its gap, pos - 0.5); a part [start, end) keeps the
  pairs with start - 0.5 < index < end - 0.5, so insertions at its ends
  fall outside."""

  def __init__(self, seq, edits):
    items = [(b, i) for i, b in enumerate(seq)]
    for e in sorted(edits, key=lambda e: (-e.pos, -e.length)):
      new = [(b, e.pos - 0.5 if e.length == 0 else e.pos) for b in e.alt]
      items[e.pos:e.pos + e.length] = new
    self.bases = [b for b, _ in items]
    self.index = [i for _, i in items]

  def cds(self, parts):
    out = []
    for start, end, strand in parts:
      lo = bisect.bisect_right(self.index, start - 0.5)
      hi = bisect.bisect_left(self.index, end - 0.5)
      piece = "".join(self.bases[lo:hi])
      out.append(piece if strand > 0 else
                 str(Seq(piece).reverse_complement()))
    return "".join(out)


def _biopython_reasons(g, c, mutated):
  """What the rule says of one CDS, computed with Biopython's translate on
  the independently mutated CDS."""
  ref = "".join(g.seq[s:e] if st > 0 else str(Seq(g.seq[s:e])
                                                .reverse_complement())
                for s, e, st in c.parts)
  new = mutated.cds(c.parts)

  def plen(s):
    s = s[c.phase:]
    p = str(Seq(s[:len(s) // 3 * 3]).translate(table=c.table))
    return p.index("*") if "*" in p else len(p)

  out = set()
  n0, n1 = plen(ref), plen(new)
  if n1 < n0 and n1 < 0.9 * n0:
    out.add("stop")
  if (len(new) - len(ref)) % 3:
    out.add("frameshift")
  starts = mut.start_codons(c.table)
  p = c.phase
  if (not c.partial_start and ref[p:p + 3] in starts
      and new[p:p + 3] not in starts):
    out.add("start")
  return out, n0, n1


def test_examples_have_their_label_by_biopython(viral, viability):
  """Every mutated example (a subset per group and kind): the sequence is
  the mutated genome's window, and the label and kind follow from
  re-translating every essential CDS with Biopython."""
  seen = collections.Counter()
  for e in viability:
    if e["kind"] == "shuffle" or seen[(e["group"], e["kind"])] >= 25:
      continue
    seen[(e["group"], e["kind"])] += 1
    name, w0, strand, edits = examples.mutation_of(e)
    g = viral[name]
    assert 1 <= len(edits) <= 3
    mutated = _Mutated(g.seq, edits)
    window = mutated.cds(((w0, w0 + 340, 1),))[:300]
    if strand < 0:
      window = str(Seq(window).reverse_complement())
    assert window == e["sequence"], e["id"]
    lo = min(x.pos for x in edits) - 1
    hi = max(x.pos + x.length for x in edits) + 1
    reasons = []
    for c in g.cds:
      if not any(s <= hi and e_ >= lo for s, e_, _ in c.parts):
        continue   # No edit near: the CDS is unchanged.
      r, n0, n1 = _biopython_reasons(g, c, mutated)
      if c.essential:
        reasons.append(r)
        if e["kind"] == "intact":
          # Coding-intact: no essential protein cut short or shifted.
          assert n1 >= 0.9 * n0 and not r, (e["id"], c.name)
    hit = [r for r in reasons if r]
    assert e["label"] == int(bool(hit)), e["id"]
    want = {"lof_stop": "stop", "lof_frameshift": "frameshift",
            "lof_start": "start"}.get(e["kind"])
    if want:
      assert all(want in r for r in hit), e["id"]
  assert len(seen) == 6 * 4 and min(seen.values()) == 25


def test_dinucleotide_shuffle_is_exact_and_uniform():
  rng = np.random.default_rng(0)
  for n in (3, 10, 300, 3000):
    s = "".join(rng.choice(list("ACGTN"), n, p=[.3, .2, .2, .29, .01]))
    t = mut.dinucleotide_shuffle(s, rng)
    assert mut.dinucleotide_counts(t) == mut.dinucleotide_counts(s)
    assert t[0] == s[0] and t[-1] == s[-1] and len(t) == n
  # Uniform over all sequences with these dinucleotide counts.
  s = "ACAGTACAT"
  want = mut.dinucleotide_counts(s)
  pool = ["".join(p) for p in itertools.product("ACGT", repeat=len(s) - 2)]
  every = {s[0] + m + s[-1] for m in pool}
  every = {x for x in every if mut.dinucleotide_counts(x) == want}
  draws = collections.Counter(mut.dinucleotide_shuffle(s, rng)
                              for _ in range(4000))
  assert set(draws) == every and len(every) > 4
  expect = 4000 / len(every)
  assert all(abs(c - expect) < 5 * np.sqrt(expect) for c in draws.values())


def test_shuffle_examples_keep_their_source_composition(viral, viability):
  for e in [e for e in viability if e["kind"] == "shuffle"][::20]:
    src = e["detail"].split(" of ")[1]
    name, span = src.rsplit(":", 1)
    a, b = (int(x) for x in span[:-3].split("-"))
    s = viral[name].seq[a:b]
    if span.endswith("(-)"):
      s = mut.reverse_complement(s)
    assert mut.dinucleotide_counts(e["sequence"]) == (
        mut.dinucleotide_counts(s))
    assert e["label"] == 1 and len(e["sequence"]) == 300


def test_make_is_balanced_and_matched(viability):
  assert len(viability) == 4200
  assert len({e["id"] for e in viability}) == 4200
  counts = collections.Counter((e["group"], e["kind"]) for e in viability)
  for g in ("phiX174", "SARS-CoV-2", "Agate", "Topaz", "Spy-prophages",
            "fluA"):
    assert {k: counts[(g, k)] for k in examples.KINDS} == dict(
        intact=350, lof_stop=78, lof_frameshift=78, lof_start=78,
        shuffle=116)
  for e in viability:
    assert len(e["sequence"]) == e["length"] == 300
    assert set(e["sequence"]) <= set("ACGT")
    assert e["label"] == int(e["kind"] != "intact")
  # Mutation counts and the share of indels among first edits match
  # between intact and loss-of-function windows.
  n_edits = collections.defaultdict(collections.Counter)
  indel = collections.defaultdict(list)
  for e in viability:
    if e["kind"] == "shuffle":
      continue
    _, _, _, edits = examples.mutation_of(e)
    cls = "intact" if e["kind"] == "intact" else "lof"
    n_edits[cls][len(edits)] += 1
    first = [x for x in edits if x.length != 1 or len(x.alt) != 1]
    indel[cls].append(bool(first))
  for cls in ("intact", "lof"):
    total = sum(n_edits[cls].values())
    assert all(0.28 < n_edits[cls][k] / total < 0.39 for k in (1, 2, 3))
    assert 0.28 < np.mean(indel[cls]) < 0.39, cls
  print("\nviral_viability: examples per group and kind")
  for (g, k), n in sorted(counts.items()):
    print(f"  {g:14s} {k:15s} {n}")


def test_make_is_deterministic():
  a = examples.make("viral_viability", seed=3, per_group=12)
  b = examples.make("viral_viability", seed=3, per_group=12)
  assert a == b
  c = examples.make("viral_viability", seed=4, per_group=12)
  assert [e["sequence"] for e in a] != [e["sequence"] for e in c]
  with pytest.raises(ValueError, match="unknown option 'nope'"):
    examples.make("viral_viability", nope=1)
  with pytest.raises(ValueError, match="not a viral variant"):
    examples.make("viral")


def test_default_split_keeps_groups_apart(viability):
  parts = examples.split_by_group(viability, 0)
  groups = [sorted({viability[i]["group"] for i in p}) for p in parts]
  assert sum(map(len, parts)) == len(viability)
  assert not set(groups[0]) & set(groups[1])
  assert not set(groups[0]) & set(groups[2])
  assert not set(groups[1]) & set(groups[2])
  # split_seed 0: documented in docs/viral.md.
  assert groups == [["Spy-prophages", "Topaz", "fluA", "phiX174"],
                    ["SARS-CoV-2"], ["Agate"]]
  print("\nviral_viability split_seed 0:")
  for name, p, g in zip(("train", "val", "test"), parts, groups):
    kinds = collections.Counter(viability[i]["kind"] for i in p)
    print(f"  {name:5s} {len(p):5d} {g} {dict(sorted(kinds.items()))}")
  tr, va, te = examples.leave_group_out([e["group"] for e in viability], 1)
  assert {viability[i]["group"] for i in te} == {"SARS-CoV-2"}
  assert {viability[i]["group"] for i in va} == {"Spy-prophages"}
  assert len(tr) + len(va) + len(te) == len(viability)


def test_fragments_and_group_folds():
  frags = examples.make("viral_vs_cellular", lengths=(500, 3000),
                        per_genome=40)
  by_name = {g.name: g for g in genomes.viral_genomes()
             + genomes.cellular_genomes()}
  for e in frags:
    name, span = e["detail"].rsplit(":", 1)
    a, b = (int(x) for x in span[:-3].split("-"))
    s = by_name[name].seq[a:b]
    if span.endswith("(-)"):
      s = mut.reverse_complement(s)
    assert s == e["sequence"] and b - a == e["length"]
    assert "N" not in s
    assert e["label"] == int(e["kind"] == "viral")
  counts = collections.Counter((e["group"], e["length"]) for e in frags)
  assert max(counts.values()) == 40 and counts[("fluA", 3000)] == 0
  folds = examples.group_folds(frags, 4)
  for f in range(4):
    labels = {frags[i]["label"] for i in np.flatnonzero(folds == f)}
    assert labels == {0, 1}
  fold_of = {}
  for e, f in zip(frags, folds):
    assert fold_of.setdefault(e["group"], f) == f
  assert len(fold_of) == 18
  other = examples.group_folds(frags, 3)
  for e, f in zip(frags, other):
    assert fold_of.setdefault(e["group"] + "/3", f) == f


def _dcfg(tmp_path, **kw):
  cfg = dict(name="viral", variant="viral_viability", split_seed=0,
             data_dir=str(tmp_path))
  cfg.update(kw)
  return ml_collections.ConfigDict(cfg)


def test_tfds_build_load_and_pad(tmp_path):
  ds = load_dataset(_dcfg(tmp_path, size=18))
  spec = ds.spec
  assert spec.task == "classification" and spec.num_outputs == 2
  assert spec.modalities["genome"].shape == (300,)
  assert spec.modalities["genome"].dtype == "int32"
  assert spec.class_names == ("coding-intact", "lof-or-shuffle")
  assert sum(len(s) for s in ds.sources.values()) == 6 * 18
  groups = [set(s.groups.tolist()) for s in ds.sources.values()]
  assert not (groups[0] & groups[1] or groups[0] & groups[2]
              or groups[1] & groups[2])
  src = ds.sources["test"]
  ex = src[0]
  assert ex["genome"].dtype == np.int32 and ex["genome"].shape == (300,)
  assert ex["id"] == src.ids[0] and ex["kind"] == src.kinds[0]
  made = {e["id"]: e for e in examples.make("viral_viability",
                                            per_group=18)}
  want = made[ex["id"]]
  assert "".join(registered.TOKENS[t] for t in ex["genome"]) == (
      want["sequence"])
  assert ex["label"] == want["label"] and ex["group"] == want["group"]
  padded = pipeline.pad_example(ex, spec, {"genome": {"length": 320}})
  assert padded["genome"].shape == (320,)
  assert padded["genome_mask"].sum() == 300 and padded["label"] == ex["label"]
  split = pipeline.PaddedSplit(ds.sources["train"], spec, {})
  assert split.arrays["genome"].shape == (len(ds.sources["train"]), 300)
  assert set(split.groups) == {"kind", "group"}
  # stop_flags: base ids and features.stop_flags under the genome's table.
  flagged = load_dataset(_dcfg(tmp_path, size=18, stop_flags=True))
  assert flagged.spec.modalities["genome"].shape == (300, 2)
  fx = flagged.sources["test"][0]
  np.testing.assert_array_equal(fx["genome"][:, 0], ex["genome"])
  np.testing.assert_array_equal(
      fx["genome"][:, 1], features.stop_flags(want["sequence"],
                                              want["table"]))
  # Per-kind reporting: only shuffles as label 1, the same genomes.
  sh = load_dataset(_dcfg(tmp_path, size=18, kinds=("shuffle",)))
  assert set(sh.sources["train"].kinds.tolist()) == {"intact", "shuffle"}
  assert set(sh.sources["test"].groups.tolist()) == groups[2]
  with pytest.raises(ValueError, match="not a label-1 kind"):
    load_dataset(_dcfg(tmp_path, size=18, kinds=("intact",)))
  loo = load_dataset(_dcfg(tmp_path, size=18, test_group="Topaz", limit=10,
                           fold=2))   # fold is viral_vs_cellular's key
  assert set(loo.sources["test"].groups.tolist()) == {"Topaz"}
  assert set(loo.sources["val"].groups.tolist()) == {"fluA"}
  assert len(loo.sources["train"]) == 10


def test_tfds_viral_vs_cellular(tmp_path):
  ds = load_dataset(_dcfg(tmp_path, variant="viral_vs_cellular", size=6,
                          length=1000, fold=1))
  assert ds.spec.modalities["genome"].shape == (1000,)
  assert ds.spec.class_names == ("cellular", "viral")
  test = ds.sources["test"]
  assert set(test.groups.tolist()) == set(examples.FOLDS[1]) - {"fluA"}
  assert set(ds.sources["val"].groups.tolist()) <= set(examples.FOLDS[2])
  assert set(test.labels.tolist()) == {0, 1}
  ex = test[0]
  assert ex["viral_group"] == ("cellular" if ex["label"] == 0
                               else ex["group"])
  with pytest.raises(ValueError, match="not a fragment length"):
    load_dataset(_dcfg(tmp_path, variant="viral_vs_cellular", size=6,
                       length=700))
