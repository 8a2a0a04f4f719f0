"""Exact coding-integrity rules on nucleotide strings (numpy and str only).

Coordinates are 0-based and half-open, on the forward strand of the
unmutated genome. A mutation is a list of `Edit`s, each a substitution (one
base for one), an insertion (before a base) or a deletion; edits never
overlap. A coding sequence (CDS) is given by its `parts` ((start, end,
strand), ...) in transcription order, so joins across the origin and
ribosomal-frameshift joins (SARS-CoV-2 ORF1ab repeats one base) come out as
the annotation spells them.

The rule (`cds_effect`, `classify`): a genome with edits is
loss-of-function (label 1) iff some *essential* CDS
  * gains an in-frame stop codon before 90% of its reference protein
    length ('stop'),
  * has a net frameshift: its length changes by a number not divisible by
    3 ('frameshift'), or
  * loses its start codon: the first codon was a start codon of the CDS's
    table (`START_CODONS`) and no longer is ('start'; not checked on CDS
    that are partial at their 5' end).
Everything else is coding-intact (label 0): synonymous and missense
changes, in-frame indels, stops after 90% of the protein, and any change
in non-essential CDS or outside every CDS. The rule reads coding sequence
only: it knows nothing of promoters, splice or packaging signals or RNA
structure, so 'coding-intact' is not the same as viable.

An insertion exactly at a CDS part's boundary lies outside that part.
Everything here is deterministic given the numpy Generator passed in.
"""

import functools
from typing import NamedTuple

import numpy as np

BASES = "ACGT"
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
# Codes of the letters (A, C, G, T = 0..3; anything else 4) for codon
# lookup: a codon with a 4 in it reads as 'X', never as a stop.
_CODE = np.full(256, 4, np.uint8)
for _i, _b in enumerate(BASES):
  _CODE[ord(_b)] = _i
  _CODE[ord(_b.lower())] = _i
# Start codons of the rule per translation table. Table 1 (viruses of
# eukaryotes here): ATG only, as non-AUG initiation is rare and not what the
# annotations use. Tables 11 and 15 (bacteria, their phages, and phages that
# read TAG as Gln): ATG, GTG and TTG, the starts Prodigal calls and the
# SF370 annotation uses (173 ATG, 6 TTG, 5 GTG among its 184 prophage CDS).
START_CODONS = {1: ("ATG",), 11: ("ATG", "GTG", "TTG"),
                15: ("ATG", "GTG", "TTG")}
# A premature stop counts when the truncated protein is shorter than this
# fraction of the reference protein.
PREMATURE = 0.9
REASONS = ("stop", "frameshift", "start")


class Edit(NamedTuple):
  """Replace `length` bases from `pos` by `alt` (unmutated coordinates).

  Substitution: length 1, one base in alt; insertion: length 0, before
  base pos; deletion: alt ''.
  """
  pos: int
  length: int
  alt: str


def reverse_complement(seq):
  return seq.translate(_COMPLEMENT)[::-1]


def start_codons(table):
  return START_CODONS.get(int(table), ("ATG",))


@functools.lru_cache(maxsize=None)
def codon_table(table):
  """(amino acids uint8 [65], stop bool [65]) indexed by 16 a + 4 b + c
  (A, C, G, T = 0..3); index 64 is any codon with a non-ACGT letter
  ('X', not a stop). From Biopython's NCBI table `table`."""
  from Bio.Data import CodonTable  # pylint: disable=g-import-not-at-top
  t = CodonTable.unambiguous_dna_by_id[int(table)]
  aa = np.full(65, ord("X"), np.uint8)
  stop = np.zeros(65, bool)
  for i in range(64):
    codon = BASES[i // 16] + BASES[i // 4 % 4] + BASES[i % 4]
    if codon in t.stop_codons:
      aa[i], stop[i] = ord("*"), True
    else:
      aa[i] = ord(t.forward_table[codon])
  aa.setflags(write=False)
  stop.setflags(write=False)
  return aa, stop


def stop_codon_set(table):
  _, stop = codon_table(table)
  return {BASES[i // 16] + BASES[i // 4 % 4] + BASES[i % 4]
          for i in np.flatnonzero(stop)}


def codon_indices(seq):
  """int [len(seq) // 3] codon index (64 where a letter is not ACGT) of
  the whole codons of seq, from its first base."""
  n = len(seq) // 3 * 3
  c = _CODE[np.frombuffer(seq[:n].encode("ascii"), np.uint8)].reshape(-1, 3)
  idx = c[:, 0].astype(np.int64) * 16 + c[:, 1] * 4 + c[:, 2]
  return np.where((c == 4).any(1), 64, idx)


def translate(seq, table, to_stop=False):
  """Protein of the whole codons of seq ('*' for stops; up to the first
  stop, excluded, with to_stop)."""
  aa, stop = codon_table(table)
  idx = codon_indices(seq)
  if to_stop:
    idx = idx[:first_stop_of(idx, stop)]
  return aa[idx].tobytes().decode("ascii")


def first_stop_of(idx, stop):
  hit = np.flatnonzero(stop[idx])
  return int(hit[0]) if len(hit) else len(idx)


def first_stop(seq, table):
  """Index of the first stop codon of seq in frame 0 (the number of whole
  codons if none): the protein length."""
  return first_stop_of(codon_indices(seq), codon_table(table)[1])


def check_edits(edits, n):
  """The edits sorted by position; ValueError if one is malformed, leaves
  [0, n) or overlaps another."""
  out = sorted(edits, key=lambda e: (e.pos, e.length))
  end, prev_ins = -1, False
  for e in out:
    if e.length < 0 or not 0 <= e.pos <= n - e.length:
      raise ValueError(f"edit {e} lies outside [0, {n})")
    if e.alt and e.length > 1 or len(e.alt) > 1 and e.length:
      raise ValueError(f"edit {e} is neither a substitution, an insertion "
                       "nor a deletion")
    if e.length == 0 and not e.alt:
      raise ValueError(f"edit {e} changes nothing")
    if e.pos < end or e.pos == end and e.length == 0 and prev_ins:
      raise ValueError(f"edit {e} overlaps the edit before it")
    prev_ins = e.length == 0  # Two insertions in one gap are ambiguous.
    end = e.pos + e.length
  return out


def splice(seq, start, end, edits):
  """seq[start:end] with the edits applied (edits sorted, as check_edits
  returns them); an insertion at start or end lies outside the span."""
  out, cur = [], start
  for e in edits:
    if e.length == 0:
      if start < e.pos < end:
        out += [seq[cur:e.pos], e.alt]
        cur = e.pos
      continue
    a, b = max(e.pos, start), min(e.pos + e.length, end)
    if a >= b:
      continue
    out.append(seq[cur:a])
    if e.pos >= start:
      out.append(e.alt)
    cur = b
  out.append(seq[cur:end])
  return "".join(out)


def apply_edits(seq, edits):
  """The whole mutated sequence (insertions at either end included)."""
  edits = check_edits(edits, len(seq))
  head = "".join(e.alt for e in edits if e.length == 0 and e.pos == 0)
  tail = "".join(e.alt for e in edits if e.length == 0 and e.pos == len(seq))
  return head + splice(seq, 0, len(seq), edits) + tail


def cds_sequence(seq, parts, edits=()):
  """The CDS's nucleotides in transcription order (parts on the minus
  strand reverse-complemented), with the edits (sorted) applied."""
  pieces = []
  for start, end, strand in parts:
    s = splice(seq, start, end, edits) if edits else seq[start:end]
    pieces.append(s if strand >= 0 else reverse_complement(s))
  return "".join(pieces)


def touches(parts, edits):
  """Whether some edit changes some base or interior gap of the parts."""
  for start, end, _ in parts:
    for e in edits:
      if e.length == 0 and start < e.pos < end:
        return True
      if e.length and e.pos < end and e.pos + e.length > start:
        return True
  return False


def cds_effect(seq, cds, edits, reference=None):
  """What the (sorted) edits do to one CDS.

  Args:
    seq: the unmutated genome, str.
    cds: anything with parts, table, phase, partial_start (genomes.Cds).
    edits: sorted Edits (check_edits).
    reference: cds_sequence(seq, cds.parts), if the caller has it.

  Returns:
    (reasons, effect): reasons a tuple of REASONS that apply (empty: the
    CDS stays intact by the rule); effect one word, the first reason
    joined by '+' with the others, else 'unchanged', 'synonymous',
    'missense', 'inframe_indel', 'late_stop' (a stop after 90%) or
    'stop_lost'.
  """
  ref = reference if reference is not None else cds_sequence(seq, cds.parts)
  mut = cds_sequence(seq, cds.parts, edits)
  if mut == ref:
    return (), "unchanged"
  reasons = []
  p = cds.phase
  n0 = first_stop(ref[p:], cds.table)
  n1 = first_stop(mut[p:], cds.table)
  if n1 < n0 and n1 < PREMATURE * n0:
    reasons.append("stop")
  delta = len(mut) - len(ref)
  if delta % 3:
    reasons.append("frameshift")
  starts = start_codons(cds.table)
  if (not cds.partial_start and ref[p:p + 3] in starts
      and mut[p:p + 3] not in starts):
    reasons.append("start")
  if reasons:
    return tuple(reasons), "+".join(reasons)
  if delta:
    return (), "inframe_indel"
  if n1 < n0:
    return (), "late_stop"
  if n1 > n0:
    return (), "stop_lost"
  same = translate(ref[p:], cds.table, True) == translate(mut[p:], cds.table,
                                                           True)
  return (), "synonymous" if same else "missense"


class Verdict(NamedTuple):
  """label 1 iff an essential CDS lost its function; reasons {cds name:
  reasons} of essential CDS that did; effects {cds name: effect} of every
  CDS the edits touch."""
  label: int
  reasons: dict
  effects: dict


def classify(seq, cds_list, edits, references=None):
  """The rule on a whole genome: Verdict of the edits.

  Args:
    seq: the unmutated genome.
    cds_list: its CDS (genomes.Cds: name, parts, essential, table, phase,
      partial_start).
    edits: Edits, in any order.
    references: {cds name: cds_sequence of it}, to skip recomputing.
  """
  edits = check_edits(edits, len(seq))
  reasons, effects = {}, {}
  for cds in cds_list:
    if not touches(cds.parts, edits):
      continue
    ref = references.get(cds.name) if references else None
    r, effect = cds_effect(seq, cds, edits, ref)
    effects[cds.name] = effect
    if r and cds.essential:
      reasons[cds.name] = r
  return Verdict(int(bool(reasons)), reasons, effects)


# ----------------------------------------------------------------------------
# Proposals: one edit of each kind. Each returns an Edit in genome
# coordinates, or None when the drawn site cannot take that kind (the caller
# draws again); whether the result has the intended label is `classify`'s
# call, never assumed.


def cds_to_genome(parts, i):
  """(genome position, strand) of base i of the CDS (transcription
  order)."""
  for start, end, strand in parts:
    n = end - start
    if i < n:
      return (start + i, 1) if strand >= 0 else (end - 1 - i, -1)
    i -= n
  raise IndexError(f"base {i} is past the end of the CDS")


def _part_end(parts, i):
  """CDS index one past the end of the part holding CDS base i."""
  acc = 0
  for start, end, _ in parts:
    acc += end - start
    if i < acc:
      return acc
  return acc


def _alt(base, strand):
  return base if strand > 0 else base.translate(_COMPLEMENT)


def substitution(seq, pos, rng):
  """A random base other than seq[pos] at pos."""
  ref = seq[pos]
  choices = [b for b in BASES if b != ref]
  return Edit(int(pos), 1, choices[int(rng.integers(len(choices)))])


def random_bases(rng, n):
  return "".join(BASES[i] for i in rng.integers(0, 4, n))


def indel(seq, pos, length, insertion, rng):
  """Insertion of `length` random bases before pos, or deletion of
  seq[pos:pos + length]; None if the deletion would leave seq."""
  if insertion:
    return Edit(int(pos), 0, random_bases(rng, length))
  if pos + length > len(seq):
    return None
  return Edit(int(pos), int(length), "")


def stop_substitution(seq, cds, reference, rng):
  """A substitution that puts a stop codon (of the CDS's table) at a
  random codon after the start and before 90% of the protein; None if the
  drawn codon cannot become a stop in one step."""
  p = cds.phase
  n0 = first_stop(reference[p:], cds.table)
  hi = int(np.ceil(PREMATURE * n0))  # codons k < 0.9 n0 are premature
  if hi <= 1:
    return None
  k = int(rng.integers(1, hi))
  codon = reference[p + 3 * k:p + 3 * k + 3]
  stops = stop_codon_set(cds.table)
  options = [(j, b) for j in range(3) for b in BASES
             if b != codon[j] and codon[:j] + b + codon[j + 1:] in stops]
  if not options:
    return None
  j, b = options[int(rng.integers(len(options)))]
  pos, strand = cds_to_genome(cds.parts, p + 3 * k + j)
  return Edit(pos, 1, _alt(b, strand))


def start_substitution(seq, cds, reference, rng):
  """A substitution in the start codon that makes it no start codon of
  the table; None for CDS without a start (partial) or a first codon that
  is not a start of the table."""
  p = cds.phase
  codon = reference[p:p + 3]
  starts = start_codons(cds.table)
  if cds.partial_start or codon not in starts:
    return None
  options = [(j, b) for j in range(3) for b in BASES
             if b != codon[j] and codon[:j] + b + codon[j + 1:] not in starts]
  j, b = options[int(rng.integers(len(options)))]
  pos, strand = cds_to_genome(cds.parts, p + j)
  return Edit(pos, 1, _alt(b, strand))


def frameshift_indel(seq, cds, reference, rng, lengths=(1, 2, 4, 5)):
  """An insertion or deletion of a length drawn from `lengths` inside the
  CDS, after its start codon and before 90% of its protein; None if a
  deletion would leave the part it starts in."""
  p = cds.phase
  n0 = first_stop(reference[p:], cds.table)
  hi = p + 3 * int(np.ceil(PREMATURE * n0))
  if hi <= p + 4:
    return None
  i = int(rng.integers(p + 4, hi))   # CDS bases after the start codon
  length = int(lengths[int(rng.integers(len(lengths)))])
  insertion = bool(rng.integers(2))
  pos, strand = cds_to_genome(cds.parts, i)
  if insertion:
    # Before CDS base i: on the minus strand that is the gap after pos.
    ins = random_bases(rng, length)
    return Edit(pos if strand > 0 else pos + 1, 0,
                ins if strand > 0 else reverse_complement(ins))
  if i + length > _part_end(cds.parts, i):
    return None
  return Edit(pos if strand > 0 else pos - length + 1, length, "")


# ----------------------------------------------------------------------------
# Synthetic sequences.


def dinucleotide_shuffle(seq, rng):
  """A uniformly random sequence with exactly the dinucleotide counts (and
  first and last letter) of seq: Altschul & Erickson (1985), as a random
  Eulerian path (Kandel et al. 1996).

  The transitions of seq are the edges of a multigraph on its letters. A
  random spanning arborescence into the last letter is drawn with Wilson's
  loop-erased random walk (each vertex's 'last exit' edge); every other
  edge list is shuffled, the last-exit edge put at its end, and the walk
  from the first letter that uses each vertex's edges in that order is an
  Eulerian path (BEST theorem), each one equally likely.

  Args:
    seq: str, any letters.
    rng: numpy Generator.

  Returns:
    str of len(seq).
  """
  if len(seq) < 3:
    return seq
  edges = {}
  for a, b in zip(seq[:-1], seq[1:]):
    edges.setdefault(a, []).append(b)
  last = seq[-1]
  # Wilson's algorithm: random walk from each vertex until the tree, then
  # keep the loop-erased path (overwriting exits erases loops).
  exit_index = {}
  in_tree = {last}
  for v0 in sorted(edges):
    v = v0
    while v not in in_tree:
      exit_index[v] = int(rng.integers(len(edges[v])))
      v = edges[v][exit_index[v]]
    v = v0
    while v not in in_tree:
      in_tree.add(v)
      v = edges[v][exit_index[v]]
  order = {}
  for v in sorted(edges):
    out = list(edges[v])
    tail = [out.pop(exit_index[v])] if v in exit_index else []
    perm = rng.permutation(len(out))
    order[v] = [out[i] for i in perm] + tail
  pos = {v: 0 for v in order}
  walk = [seq[0]]
  v = seq[0]
  for _ in range(len(seq) - 1):
    nxt = order[v][pos[v]]
    pos[v] += 1
    walk.append(nxt)
    v = nxt
  return "".join(walk)


def dinucleotide_counts(seq):
  """{dinucleotide: count} of seq (overlapping)."""
  out = {}
  for a, b in zip(seq[:-1], seq[1:]):
    out[a + b] = out.get(a + b, 0) + 1
  return out
