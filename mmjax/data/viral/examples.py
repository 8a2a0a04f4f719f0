"""The examples of the `viral` dataset, generated deterministically from the
vendored genomes (genomes.py) by the exact rules of mutations.py.

`make(variant, seed=0, **options)` -> list of dicts, each with
  id        str, unique
  sequence  str over ACGTN, as read 5' -> 3' on the chosen strand
  label     int
  kind      str
  group     str, the genome group: the split unit
  genome    str, the record (genomes.Genome.name)
  table     int, translation table of the source genome
  length    int, len(sequence)
  detail    str, what was done: for a mutated window '<first edit>;
            <genome>:<start>-<end>(<strand>); edits <pos>:<length>><alt>,...;
            <cds>:<effect>,...' (unmutated 0-based coordinates, edits as
            mutations.Edit, effects as mutations.cds_effect; the sequence
            is the first `window` bases of the mutated genome from
            <start>, reverse-complemented on strand -); for a shuffle or a
            fragment its source window

`viral_viability` (options: window=300, per_group=4200, mutations=(1, 3)):
windows of the 6 annotated groups (phiX174, SARS-CoV-2, Agate, Topaz, the
four S. pyogenes SF370 prophages as one group 'Spy-prophages', fluA), the
same number per group, on a random strand each:
  label 0, kind 'intact' (1/2): coding-intact by the rule: the window holds
    1-3 edits that leave every essential CDS intact. The first edit is one
    of, with equal chance: a substitution near a CDS start (-9..+11 bp),
    a substitution anywhere, an indel of 1-6 bp anywhere, or (in groups
    with non-essential CDS) a stop, frameshift or start loss in a
    non-essential CDS; the others are substitutions. As in the
    loss-of-function kinds, 2/3 of first edits are substitutions and 1/3
    indels, and 1/3 sit at or near a start codon. So intact windows
    carry synonymous and missense changes, in-frame indels, changes
    between genes and knocked-out non-essential genes.
  label 1, kinds 'lof_stop', 'lof_frameshift', 'lof_start' (1/9 each):
    one edit knocks out an essential CDS (a premature stop codon of the
    genome's table, an indel of 1, 2, 4 or 5 bp, a start codon lost), plus
    0-2 substitutions that change nothing more; the same 1-3 edits per
    window as the intact class.
  label 1, kind 'shuffle' (the rest, ~1/6): a window of the group's
    genomes, dinucleotide-shuffled exactly (Euler path): real dinucleotide
    composition, no genes.
Every mutated window keeps exactly `window` bases (cut from the mutated
genome), so neither the length nor 'is mutated' tells the classes apart;
which genes are essential (genomes.py) does. Windows do not wrap around
the origin of circular genomes.

`viral_vs_cellular` (options: lengths=(300, 500, 1000, 3000),
per_genome=600): fragments of the 12 viral groups (label 1, kind 'viral')
and the 6 bacterial replicons (label 0, kind 'cellular'), the DeepVirFinder
protocol: starts every L/4 bases along each record, fragments holding an N
dropped (this removes the masked S. pyogenes prophages), at most
`per_genome` per group and length drawn at random (so bacteria are
subsampled), a random strand each. Splits: `group_folds` (the research
notes' 4 folds, each pairing viral and bacterial genomes).
"""

import zlib

import numpy as np

from mmjax.data import splits
from mmjax.data.viral import genomes as genomes_lib
from mmjax.data.viral import mutations as mut

VARIANTS = ("viral_viability", "viral_vs_cellular")
KINDS = ("intact", "lof_stop", "lof_frameshift", "lof_start", "shuffle")
LOF_KINDS = ("lof_stop", "lof_frameshift", "lof_start")
CELLULAR_KINDS = ("viral", "cellular")
LENGTHS = (300, 500, 1000, 3000)
VIABILITY_OPTIONS = {"window": 300, "per_group": 4200, "mutations": (1, 3)}
FRAGMENT_OPTIONS = {"lengths": LENGTHS, "per_genome": 600}
# The four SF370 prophages share one host and related modules: one group
# for viral_viability (they are separate genomes in viral_vs_cellular's
# folds, as the research notes pair them).
PROPHAGE_GROUP = "Spy-prophages"
FRAMESHIFT_LENGTHS = (1, 2, 4, 5)
INDEL_LENGTHS = (1, 2, 3, 4, 5, 6)
NEAR_START = (-9, 12)   # offsets of 'near start' substitutions
# Bases kept free at a window's end: edits sit in [w0 + 1, w0 + W - SLACK)
# and the window is cut from W + SLACK unmutated bases, enough for any
# deletion made here.
SLACK = 12
MAX_TRIES = 2000
# Draws after which a 'nonessential_*' mode gives way to the mode with the
# same kind of edit.
FALLBACK_AFTER = 200
FALLBACK = {"nonessential_stop": "substitution",
            "nonessential_frameshift": "indel",
            "nonessential_start": "near_start"}
# Group k-fold of viral_vs_cellular (research notes, section 4): each fold
# pairs bacterial with viral genomes.
FOLDS = (
    ("Ecoli536", "lambda", "HIV-1", "Spy-pp4"),
    ("Cdiphtheriae", "Kutzneria744", "T7", "SARS-CoV-2", "Spy-pp1"),
    ("Spyogenes", "Agate", "phiX174", "fluA"),
    ("Ctrachomatis", "pPCP1", "Topaz", "Spy-pp2", "Spy-pp3"),
)


def _key(name):
  return zlib.crc32(name.encode())


def kind_counts(n):
  """{kind: count} of a viral_viability group of n examples: half intact,
  1/9 each loss-of-function kind, the rest shuffles."""
  intact, lof = int(round(n / 2)), int(round(n / 9))
  return {"intact": intact, "lof_stop": lof, "lof_frameshift": lof,
          "lof_start": lof, "shuffle": n - intact - 3 * lof}


def viability_group(genome):
  return PROPHAGE_GROUP if genome.group.startswith("Spy-pp") else genome.group


class _Group:
  """One viral_viability group: its genomes and what the generators draw
  from (reference CDS sequences, essential and non-essential CDS)."""

  def __init__(self, name, members):
    self.name = name
    self.genomes = members
    self.refs = [{c.name: mut.cds_sequence(g.seq, c.parts) for c in g.cds}
                 for g in members]
    lengths = np.array([len(g.seq) for g in members], np.float64)
    self.genome_p = lengths / lengths.sum()
    # (genome index, cds) of essential / non-essential CDS; stops and
    # frameshifts are drawn per codon (CDS weighted by protein length),
    # start losses per CDS.
    self.essential = [(i, c) for i, g in enumerate(members) for c in g.cds
                      if c.essential]
    self.nonessential = [(i, c) for i, g in enumerate(members)
                         for c in g.cds if not c.essential]
    self.all_cds = [(i, c) for i, g in enumerate(members) for c in g.cds]
    w = np.array([len(self.refs[i][c.name]) for i, c in self.essential],
                 np.float64)
    self.essential_p = w / w.sum()
    self.with_start = [
        (i, c) for i, c in self.essential if not c.partial_start
        and self.refs[i][c.name][c.phase:c.phase + 3] in
        mut.start_codons(c.table)]

  def genome_index(self, rng):
    return int(rng.choice(len(self.genomes), p=self.genome_p))


def _lof_edit(kind, seq, cds, ref, rng):
  if kind == "lof_stop":
    return mut.stop_substitution(seq, cds, ref, rng)
  if kind == "lof_frameshift":
    return mut.frameshift_indel(seq, cds, ref, rng, FRAMESHIFT_LENGTHS)
  return mut.start_substitution(seq, cds, ref, rng)


def _mode(kind, group, rng):
  """What the first edit of an example of `kind` is, drawn once per
  example (so rejections do not shift the mix): the kind itself for
  loss-of-function kinds; for intact ones 'near_start', 'substitution',
  'indel' or 'nonessential_<stop|frameshift|start>' with equal chance (the
  last only where the group has non-essential CDS). So 2/3 of the first
  edits of either class are substitutions, 1/3 indels, and 1/3 sit at a
  start codon or near one."""
  if kind in LOF_KINDS:
    return kind
  modes = ["near_start", "substitution", "indel"]
  if group.nonessential:
    modes.append("nonessential")
  mode = modes[int(rng.integers(len(modes)))]
  if mode == "nonessential":
    mode += "_" + LOF_KINDS[int(rng.integers(3))][4:]
  return mode


def _primary(mode, group, rng):
  """(genome index, first edit) of `mode` (_mode), or None to draw
  again."""
  if mode.startswith("nonessential_"):
    gi, cds = group.nonessential[int(rng.integers(len(group.nonessential)))]
    lof = "lof_" + mode.split("_", 1)[1]
  elif mode == "lof_start":
    gi, cds = group.with_start[int(rng.integers(len(group.with_start)))]
    lof = mode
  elif mode in LOF_KINDS:
    gi, cds = group.essential[int(rng.choice(len(group.essential),
                                             p=group.essential_p))]
    lof = mode
  else:
    lof = None
  if lof:
    seq = group.genomes[gi].seq
    return gi, _lof_edit(lof, seq, cds, group.refs[gi][cds.name], rng)
  if mode == "near_start":
    gi, cds = group.all_cds[int(rng.integers(len(group.all_cds)))]
    seq = group.genomes[gi].seq
    pos = cds.start_site + int(rng.integers(*NEAR_START))
    if not 0 <= pos < len(seq):
      return None
    return gi, mut.substitution(seq, pos, rng)
  gi = group.genome_index(rng)
  seq = group.genomes[gi].seq
  pos = int(rng.integers(1, len(seq)))
  if mode == "substitution":
    return gi, mut.substitution(seq, pos, rng)
  length = INDEL_LENGTHS[int(rng.integers(len(INDEL_LENGTHS)))]
  return gi, mut.indel(seq, pos, length, bool(rng.integers(2)), rng)


def _accept(kind, verdict):
  if kind == "intact":
    return verdict.label == 0
  if verdict.label != 1:
    return False
  sets = [set(r) for r in verdict.reasons.values()]
  if kind == "lof_stop":
    return all(s == {"stop"} for s in sets)
  if kind == "lof_start":
    return all(s == {"start"} for s in sets)
  return all("frameshift" in s and "start" not in s for s in sets)


def _mutated_example(kind, group, window, n_edits, rng):
  what = _mode(kind, group, rng)
  for attempt in range(MAX_TRIES):
    if attempt == FALLBACK_AFTER and what in FALLBACK:
      # Some groups cannot knock out a non-essential CDS in every way
      # (phiX174: a frameshift in A* or K also shifts A or C); the mode
      # with the same kind of edit takes over.
      what = FALLBACK[what]
    drawn = _primary(what, group, rng)
    if drawn is None or drawn[1] is None:
      continue
    gi, first = drawn
    g = group.genomes[gi]
    span = max(first.length, 1)
    lo = max(0, first.pos + span - window + SLACK)
    hi = min(first.pos - 1, len(g.seq) - window - SLACK)
    if lo > hi:
      continue
    w0 = int(rng.integers(lo, hi + 1))
    edits = [first]
    taken = {first.pos + j for j in range(-1, span + 1)}
    while len(edits) < n_edits:
      pos = int(rng.integers(w0 + 1, w0 + window - SLACK))
      if pos in taken:
        continue
      edits.append(mut.substitution(g.seq, pos, rng))
      taken.update((pos - 1, pos, pos + 1))
    verdict = mut.classify(g.seq, g.cds, edits, group.refs[gi])
    if not _accept(kind, verdict):
      continue
    edits = mut.check_edits(edits, len(g.seq))
    s = mut.splice(g.seq, w0, w0 + window + SLACK, edits)[:window]
    strand = 1 if rng.integers(2) else -1
    if strand < 0:
      s = mut.reverse_complement(s)
    effects = ",".join(f"{k}:{v}" for k, v in sorted(verdict.effects.items())
                       ) or "noncoding"
    detail = (f"{what}; {g.name}:{w0}-{w0 + window}"
              f"({'+' if strand > 0 else '-'}); edits "
              + ",".join(f"{e.pos}:{e.length}>{e.alt}" for e in edits)
              + f"; {effects}")
    return g, s, detail
  raise RuntimeError(f"viral_viability: no '{kind}' example for group "
                     f"{group.name} in {MAX_TRIES} draws")


def mutation_of(example):
  """(genome name, window start, strand +1/-1, [mutations.Edit]) of a
  mutated viral_viability example, read back from its `detail`."""
  parts = example["detail"].split("; ")
  where, edits = parts[1], parts[2]
  name, span = where.rsplit(":", 1)
  start = int(span.split("-")[0])
  strand = 1 if span.endswith("(+)") else -1
  out = []
  for e in edits[len("edits "):].split(","):
    pos, rest = e.split(":", 1)
    length, alt = rest.split(">", 1)
    out.append(mut.Edit(int(pos), int(length), alt))
  return name, start, strand, out


def _shuffle_example(group, window, rng):
  gi = group.genome_index(rng)
  g = group.genomes[gi]
  w0 = int(rng.integers(0, len(g.seq) - window + 1))
  s = g.seq[w0:w0 + window]
  strand = 1 if rng.integers(2) else -1
  if strand < 0:
    s = mut.reverse_complement(s)
  return g, mut.dinucleotide_shuffle(s, rng), (
      f"dinucleotide_shuffle of {g.name}:{w0}-{w0 + window}"
      f"({'+' if strand > 0 else '-'})")


def viability_groups():
  """{group: [Genome]} of the annotated viral genomes, in genomes.py
  order."""
  out = {}
  for g in genomes_lib.viral_genomes():
    if g.cds:
      out.setdefault(viability_group(g), []).append(g)
  return out


def make_viability(seed=0, window=300, per_group=4200, mutations=(1, 3)):
  """viral_viability examples (module docstring); per_group examples per
  group, kinds by kind_counts."""
  window, per_group = int(window), int(per_group)
  lo, hi = (int(m) for m in mutations)
  if window < 3 * SLACK or per_group < 1 or not 1 <= lo <= hi:
    raise ValueError(f"viral_viability: window {window}, per_group "
                     f"{per_group} or mutations {mutations} out of range")
  out = []
  for name, members in viability_groups().items():
    group = _Group(name, members)
    i = 0
    for kind, count in kind_counts(per_group).items():
      for _ in range(count):
        # One generator per example: an example depends on (seed, group,
        # its number) only.
        rng = np.random.default_rng([seed, _key(name), i])
        if kind == "shuffle":
          g, s, detail = _shuffle_example(group, window, rng)
        else:
          n_edits = int(rng.integers(lo, hi + 1))
          g, s, detail = _mutated_example(kind, group, window, n_edits, rng)
        out.append({"id": f"{name}-{i:05d}", "sequence": s,
                    "label": int(kind != "intact"), "kind": kind,
                    "group": name, "genome": g.name, "table": g.table,
                    "length": len(s), "detail": detail})
        i += 1
  return out


def _clean_starts(seq, length, stride):
  """Starts (every `stride`) of the N-free fragments of `length`."""
  if len(seq) < length:
    return np.zeros(0, np.int64)
  n = np.concatenate([[0], np.cumsum(np.frombuffer(seq.encode(), np.uint8)
                                     == ord("N"))])
  starts = np.arange(0, len(seq) - length + 1, stride)
  return starts[n[starts + length] == n[starts]]


def make_fragments(seed=0, lengths=LENGTHS, per_genome=600):
  """viral_vs_cellular examples (module docstring)."""
  per_genome = int(per_genome)
  if per_genome < 1 or not lengths or any(int(l) < 1 for l in lengths):
    raise ValueError(f"viral_vs_cellular: lengths {lengths} or per_genome "
                     f"{per_genome} out of range")
  by_group = {}
  for g in genomes_lib.viral_genomes() + genomes_lib.cellular_genomes():
    by_group.setdefault(g.group, []).append(g)
  out = []
  for length in (int(l) for l in lengths):
    for name, members in by_group.items():
      rng = np.random.default_rng([seed, _key(name), length])
      cands = [(gi, int(s)) for gi, g in enumerate(members)
               for s in _clean_starts(g.seq, length, max(1, length // 4))]
      if len(cands) > per_genome:
        pick = np.sort(rng.choice(len(cands), per_genome, replace=False))
        cands = [cands[i] for i in pick]
      strands = rng.integers(0, 2, len(cands))
      for (gi, s), plus in zip(cands, strands):
        g = members[gi]
        seq = g.seq[s:s + length]
        if not plus:
          seq = mut.reverse_complement(seq)
        where = f"{g.name}:{s}-{s + length}({'+' if plus else '-'})"
        out.append({"id": f"{name}-{length}-{where}", "sequence": seq,
                    "label": int(g.kind == "viral"), "kind": g.kind,
                    "group": name, "genome": g.name, "table": g.table,
                    "length": length, "detail": where})
  return out


def make(variant, seed=0, **options):
  """The examples of `variant` ('viral_viability' or 'viral_vs_cellular');
  options as in the module docstring. Deterministic given (variant, seed,
  options)."""
  if variant not in VARIANTS:
    raise ValueError(f"dataset.variant: '{variant}' is not a viral variant "
                     f"(known: {', '.join(VARIANTS)})")
  known = VIABILITY_OPTIONS if variant == VARIANTS[0] else FRAGMENT_OPTIONS
  unknown = set(options) - set(known)
  if unknown:
    raise ValueError(f"{variant}: unknown option '{sorted(unknown)[0]}' "
                     f"(known: {', '.join(known)})")
  kw = dict(known, **options)
  if variant == "viral_viability":
    return make_viability(seed, **kw)
  return make_fragments(seed, **kw)


def split_by_group(examples, seed, fractions=splits.FRACTIONS):
  """train/val/test index arrays, every group in one part
  (splits.group_split on the examples' groups)."""
  return splits.group_split([e["group"] for e in examples], seed, fractions)


def leave_group_out(groups, fold):
  """(train, val, test) index arrays: test the `fold`-th of the sorted
  distinct groups, val the next one (cyclically), train the rest."""
  groups = np.asarray(groups)
  keys = np.unique(groups)
  if not 0 <= int(fold) < len(keys):
    raise ValueError(f"dataset.fold: {fold} is outside [0, {len(keys)}) "
                     f"(groups: {', '.join(keys)})")
  test, val = keys[int(fold)], keys[(int(fold) + 1) % len(keys)]
  return [np.flatnonzero(~np.isin(groups, (test, val))),
          np.flatnonzero(groups == val), np.flatnonzero(groups == test)]


def group_folds(examples, k=4):
  """int32 [N] fold of each example, whole groups per fold.

  k = 4: the research notes' folds (FOLDS), each pairing bacterial and
  viral genomes. Other k: viral and cellular groups, each largest first,
  go to the fold holding the fewest examples of their class.
  """
  groups = [e["group"] for e in examples]
  if k == len(FOLDS):
    fold_of = {g: f for f, names in enumerate(FOLDS) for g in names}
    missing = sorted(set(groups) - set(fold_of))
    if missing:
      raise ValueError(f"group_folds: group '{missing[0]}' is in none of "
                       "the folds")
    return np.asarray([fold_of[g] for g in groups], np.int32)
  if k < 2:
    raise ValueError(f"group_folds: k = {k} < 2")
  fold_of = {}
  for label in sorted({int(e["label"]) for e in examples}):
    sizes = {}
    for e in examples:
      if int(e["label"]) == label:
        sizes[e["group"]] = sizes.get(e["group"], 0) + 1
    load = np.zeros(k)
    for g in sorted(sizes, key=lambda g: (-sizes[g], g)):
      f = int(np.argmin(load))
      fold_of[g] = f
      load[f] += sizes[g]
  return np.asarray([fold_of[g] for g in groups], np.int32)
