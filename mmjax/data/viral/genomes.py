"""The vendored viral and bacterial genomes (vendor/MANIFEST.json), read
with Biopython, and their coding sequences with an essential flag.

Viral (`viral_genomes()`, 12 groups; `group` is the split unit of
`viral_vs_cellular`):

  name        group       record                      table  CDS
  lambda      lambda      NC_001416.1 (FASTA)         11     -
  T7          T7          NC_001604.1 (FASTA)         11     -
  phiX174     phiX174     NC_001422.1 (GenBank)       11     11
  HIV-1       HIV-1       NC_001802.1 (FASTA)         1      -
  SARS-CoV-2  SARS-CoV-2  NC_045512.2 (GenBank)       1      12
  Agate       Agate       metagenomic scaffold        15     203 (predicted)
  Topaz       Topaz       metagenomic scaffold        15     31 (predicted)
  Spy-pp1..4  Spy-pp1..4  NC_002737 prophage regions  11     49/63/51/21
  fluA-NP/NA/HA  fluA     KF527485.1, HM138502.1,     1      1 each
                          EU851978.1 (GenBank)

Lambda, T7 and HIV-1 have no annotation in any package used, so they
serve `viral_vs_cellular` only. Cellular (`cellular_genomes()`): E. coli
536, C. diphtheriae NCTC11397, S. pyogenes SF370 with its four prophage
regions masked by N (`PROPHAGES`), C. trachomatis, a Kutzneria sp. 744
scaffold and the Y. pestis plasmid pPCP1.

Which CDS are essential (`Cds.essential`; the rule of mutations.py reads
only these):
  * SARS-CoV-2: ORF1ab (both the ORF1ab and the ORF1a polyprotein CDS), S,
    E, M and N essential; the accessory ORF3a, 6, 7a, 7b, 8 and 10
    dispensable, following the research notes behind this dataset (they
    cite deletion studies of the accessory ORFs; not re-checked here).
    The record as gb2seq ships it also has 'CDS' features for the S1 and
    S2 domains and the furin site, which are not genes: only CDS with a
    locus_tag are read (12).
  * phiX174: A, B, C, D, E, F, G, H and J essential; A* (an in-frame,
    internally started form of A) and K non-essential (research notes).
    A stop inside A* also truncates A, so it still counts through A.
  * Influenza A: NP, NA and HA essential (each segment's only CDS). NP is
    partial at both ends (`<1..>1444`, codon_start 2): no start to lose.
  * S. pyogenes SF370 prophages (the CDS the PhiSpy benchmark marks
    /is_phage): no curated essentiality exists, so a rule on the RAST
    product names: non-essential are cargo genes (exotoxin, superantigen,
    extracellular nuclease / mitogenic factor) and lysogeny functions
    (integrase, excisionase, CI-like repressor, antirepressor), which
    phages such as lambda do not need for lytic growth, and homing
    endonucleases; every other CDS, 'hypothetical protein' and
    'Phage protein' included, counts as essential (`NONESSENTIAL_PRODUCT`).
  * Agate and Topaz: Prodigal-gv gene calls without product names; every
    predicted CDS counts as essential.
The last two rules over-call essentiality (well-studied phages can lose
many of their genes in the laboratory): label 1 there means loss of
function of an annotated gene, not a measured lethal mutation.
"""

import dataclasses
import functools
import gzip
import io
import json
import os
import re

VENDOR = os.path.join(os.path.dirname(__file__), "vendor")
# S. pyogenes SF370 (NC_002737) prophage regions, 0-based half-open: from
# the first to the last base of the /is_phage CDS of each cluster.
PROPHAGES = (("Spy-pp1", 529630, 570157), ("Spy-pp2", 778641, 820599),
             ("Spy-pp3", 1189733, 1222549), ("Spy-pp4", 1773457, 1786407))
SF370_FILE = "Spyogenes_SF370_NC_002737.gb.gz"
# phiX174 CDS of NC_001422.1 by their first base (1-based, as in the
# GenBank record): gene name and whether it is essential.
PHIX174_GENES = {3981: ("A", True), 4497: ("A*", False), 5075: ("B", True),
                 51: ("K", False), 133: ("C", True), 390: ("D", True),
                 568: ("E", True), 848: ("J", True), 1001: ("F", True),
                 2395: ("G", True), 2931: ("H", True)}
SARS2_ESSENTIAL = ("ORF1ab", "S", "E", "M", "N")
SARS2_DISPENSABLE = ("ORF3a", "ORF6", "ORF7a", "ORF7b", "ORF8", "ORF10")
NONESSENTIAL_PRODUCT = re.compile(
    r"exotoxin|superantigen|extracellular nuclease|mitogenic factor|"
    r"integrase|excisionase|CI-like repressor|antirepressor|"
    r"homing endonuclease", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Cds:
  """One coding sequence.

  Attributes:
    name: unique within its genome (gene name, or locus / Prodigal id).
    parts: ((start, end, strand), ...) 0-based half-open on the genome's
      forward strand, in transcription order (a join across the origin or
      a ribosomal-frameshift join is several parts).
    essential: whether the rule of mutations.py reads this CDS (module
      docstring: how it was decided).
    table: NCBI translation table.
    phase: bases before the first whole codon (GenBank codon_start - 1).
    partial_start, partial_end: the CDS runs off the record at its 5' / 3'
      end (no start / stop codon to check).
    product: the annotated product ('' if none).
  """
  name: str
  parts: tuple
  essential: bool
  table: int
  phase: int = 0
  partial_start: bool = False
  partial_end: bool = False
  product: str = ""

  @property
  def length(self):
    return sum(e - s for s, e, _ in self.parts)

  @property
  def start_site(self):
    """Genome position of the CDS's first base."""
    s, e, strand = self.parts[0]
    return s if strand >= 0 else e - 1


@dataclasses.dataclass(frozen=True)
class Genome:
  """One sequence record.

  Attributes:
    name: short name (module docstring table).
    group: the split unit (genomes of one group never straddle splits).
    accession: INSDC/RefSeq accession (or scaffold id, or
      'NC_002737:start-end' 1-based for a prophage region).
    seq: upper-case str over ACGTN.
    table: NCBI translation table of the organism.
    cds: tuple of Cds (empty where there is no annotation).
    kind: 'viral' or 'cellular'.
    organism: as the record or the research notes name it.
    circular: whether the molecule is circular (windows never wrap).
  """
  name: str
  group: str
  accession: str
  seq: str
  table: int
  cds: tuple
  kind: str
  organism: str
  circular: bool = False


def manifest():
  with open(os.path.join(VENDOR, "MANIFEST.json")) as f:
    return json.load(f)


def _text(file):
  with gzip.open(os.path.join(VENDOR, file), "rt") as f:
    return f.read()


def _records(file, fmt):
  from Bio import SeqIO  # pylint: disable=g-import-not-at-top
  return list(SeqIO.parse(io.StringIO(_text(file)), fmt))


_NOT_ACGTN = re.compile("[^ACGTN]")


def _clean(seq):
  # IUPAC ambiguity codes become N: the token vocabulary is ACGTN.
  return _NOT_ACGTN.sub("N", str(seq).upper())


def _parts(location):
  return tuple((int(p.start), int(p.end), int(p.strand or 1))
               for p in location.parts)


def _partial(location):
  """(partial_start, partial_end) of a Biopython location, in
  transcription order."""
  from Bio.SeqFeature import AfterPosition  # pylint: disable=g-import-not-at-top
  from Bio.SeqFeature import BeforePosition  # pylint: disable=g-import-not-at-top
  first, last = location.parts[0], location.parts[-1]
  if (first.strand or 1) >= 0:
    return (isinstance(first.start, BeforePosition),
            isinstance(last.end, AfterPosition))
  return (isinstance(first.end, AfterPosition),
          isinstance(last.start, BeforePosition))


def _genbank_cds(record, table, name_of, essential_of, keep=lambda f: True):
  out = []
  for f in record.features:
    if f.type != "CDS" or not keep(f):
      continue
    q = f.qualifiers
    name = name_of(f)
    ps, pe = _partial(f.location)
    out.append(Cds(
        name=name, parts=_parts(f.location), essential=essential_of(f, name),
        table=int(q.get("transl_table", [table])[0]),
        phase=int(q.get("codon_start", ["1"])[0]) - 1, partial_start=ps,
        partial_end=pe, product=q.get("product", [""])[0]))
  return tuple(out)


def _phix174():
  rec = _records("phiX174_NC_001422.gbk.gz", "genbank")[0]
  genes = lambda f: PHIX174_GENES[int(f.location.parts[0].start) + 1]
  cds = _genbank_cds(rec, 11, lambda f: genes(f)[0],
                     lambda f, n: genes(f)[1])
  return Genome("phiX174", "phiX174", rec.id, _clean(rec.seq), 11, cds,
                "viral", "Escherichia phage phiX174", circular=True)


def _sars2():
  rec = _records("SARS-CoV-2_NC_045512.2.gb.gz", "genbank")[0]

  def name(f):
    gene = f.qualifiers["gene"][0]
    # ORF1ab is annotated twice: the -1 frameshift join (pp1ab) and ORF1a
    # (pp1a) alone.
    if f.qualifiers.get("product", [""])[0] == "ORF1a polyprotein":
      return "ORF1a"
    return gene

  cds = _genbank_cds(rec, 1, name,
                     lambda f, n: f.qualifiers["gene"][0] in SARS2_ESSENTIAL,
                     keep=lambda f: "locus_tag" in f.qualifiers)
  return Genome("SARS-CoV-2", "SARS-CoV-2", rec.id, _clean(rec.seq), 1, cds,
                "viral", "Severe acute respiratory syndrome coronavirus 2")


def _flu():
  out = []
  for acc, seg in (("KF527485", "NP"), ("HM138502", "NA"),
                   ("EU851978", "HA")):
    rec = _records(f"fluA_{acc}.gbk.gz", "genbank")[0]
    cds = _genbank_cds(rec, 1, lambda f: f.qualifiers["gene"][0],
                       lambda f, n: True)
    out.append(Genome(f"fluA-{seg}", "fluA", rec.id, _clean(rec.seq), 1, cds,
                      "viral", rec.annotations["organism"]))
  return out


def parse_prodigal_header(header, table):
  """Cds of one Prodigal(-gv) protein header
  '>id # start # end # strand # ID=..;partial=LR;...' (1-based inclusive
  coordinates; partial digits are for the left and right ends of the
  forward strand)."""
  fields = [s.strip() for s in header.lstrip(">").split("#")]
  name, start, end, strand = fields[0], int(fields[1]), int(fields[2]), int(
      fields[3])
  attrs = dict(kv.split("=", 1) for kv in fields[4].split(";") if "=" in kv)
  left, right = (c == "1" for c in attrs.get("partial", "00"))
  ps, pe = (left, right) if strand > 0 else (right, left)
  return Cds(name=name, parts=((start - 1, end, strand),), essential=True,
             table=int(attrs.get("genetic_code", table)), partial_start=ps,
             partial_end=pe)


def _prodigal_phage(name):
  rec = _records(f"phage_{name}.fna.gz", "fasta")[0]
  headers = [l for l in _text(f"phage_{name}.faa.gz").splitlines()
             if l.startswith(">")]
  cds = tuple(parse_prodigal_header(h, 15) for h in headers)
  return Genome(name, name, rec.id, _clean(rec.seq), 15, cds, "viral",
                f"phage {name} (metagenomic scaffold, genetic code 15)")


@functools.lru_cache(maxsize=1)
def _sf370():
  return _records(SF370_FILE, "genbank")[0]


def _prophages():
  rec = _sf370()
  seq = _clean(rec.seq)
  out = []
  for name, a, b in PROPHAGES:
    cds = []
    for f in rec.features:
      if (f.type != "CDS" or not f.qualifiers.get("is_phage")
          or not a <= int(f.location.start) < b):
        continue
      product = f.qualifiers.get("product", [""])[0]
      parts = tuple((s - a, e - a, st) for s, e, st in _parts(f.location))
      # The RAST feature id (db_xref 'RAST2:fig|160490.61.peg.530'),
      # without the database prefix: ':' separates names from effects in
      # examples' details.
      xref = f.qualifiers.get("db_xref", [f"{name}_{len(cds)}"])[0]
      cds.append(Cds(
          name=xref.split(":", 1)[-1],
          parts=parts,
          essential=not NONESSENTIAL_PRODUCT.search(product),
          table=int(f.qualifiers.get("transl_table", ["11"])[0]),
          product=product))
    out.append(Genome(name, name, f"{rec.id}:{a + 1}-{b}", seq[a:b], 11,
                      tuple(cds), "viral",
                      "Streptococcus pyogenes SF370 prophage"))
  return out


def _fasta_genome(file, name, table, organism, kind, circular=False):
  rec = _records(file, "fasta")[0]
  acc = rec.id.split("|")[3] if rec.id.startswith("gi|") else rec.id
  return Genome(name, name, acc, _clean(rec.seq), table, (), kind, organism,
                circular)


@functools.lru_cache(maxsize=1)
def _viral():
  v = "viral"
  return tuple(
      [_fasta_genome("lambda_NC_001416.1.fasta.gz", "lambda", 11,
                     "Escherichia phage lambda", v),
       _fasta_genome("T7_NC_001604.1.fasta.gz", "T7", 11,
                     "Escherichia phage T7", v),
       _phix174(),
       _fasta_genome("HIV-1_NC_001802.1.fna.gz", "HIV-1", 1,
                     "Human immunodeficiency virus 1", v),
       _sars2(), _prodigal_phage("Agate"), _prodigal_phage("Topaz")]
      + _prophages() + _flu())


def viral_genomes():
  """The 16 viral records (12 groups), module docstring order."""
  return list(_viral())


@functools.lru_cache(maxsize=1)
def _cellular():
  c = "cellular"
  rec = _sf370()
  spy = list(_clean(rec.seq))
  for _, a, b in PROPHAGES:
    spy[a:b] = "N" * (b - a)
  ppcp1 = _records("pPCP1_NC_005816.gb.gz", "genbank")[0]
  return (
      _fasta_genome("Ecoli536_NC_008253.fna.gz", "Ecoli536", 11,
                    "Escherichia coli 536", c, True),
      _fasta_genome("Cdiphtheriae_NZ_LN831026.1.fna.gz", "Cdiphtheriae", 11,
                    "Corynebacterium diphtheriae NCTC11397", c, True),
      Genome("Spyogenes", "Spyogenes", rec.id, "".join(spy), 11, (), c,
             "Streptococcus pyogenes M1 GAS SF370 (prophages masked)"),
      _fasta_genome("Ctrachomatis_CHLTCG.fasta.gz", "Ctrachomatis", 11,
                    "Chlamydia trachomatis", c, True),
      _fasta_genome("Kutzneria744_KK037166.1.fna.gz", "Kutzneria744", 11,
                    "Kutzneria sp. 744 (scaffold)", c),
      Genome("pPCP1", "pPCP1", ppcp1.id, _clean(ppcp1.seq), 11, (), c,
             "Yersinia pestis plasmid pPCP1", True),
  )


def cellular_genomes():
  """The 6 bacterial replicons (S. pyogenes with prophages masked by N)."""
  return list(_cellular())
