"""Hand-made sequence features for the viral recipes' baselines (pure numpy).

Sequences are strings over ACGT; N (or any other letter, in either case) is
an unknown base. Three kinds of feature:
  * k-mer frequencies, optionally strand-symmetrised: a k-mer and its reverse
    complement are pooled into one canonical k-mer, so the features of a
    sequence equal those of its reverse complement (a fragment's strand
    carries no label information);
  * GC content;
  * the longest open reading frame over the six frames, under a sequence's
    NCBI translation table, and its length as a fraction of the sequence.
"""

import itertools

import numpy as np

BASES = "ACGT"
# Codes: A=0, C=1, G=2, T=3 (so the complement of c is 3 - c), unknown=4.
_UNKNOWN = 4
_CODE = np.full(256, _UNKNOWN, np.uint8)
for _i, _b in enumerate(BASES):
  _CODE[ord(_b)] = _CODE[ord(_b.lower())] = _i

# Stop codons per NCBI translation table. Table 15 (Blepharisma nuclear code,
# used for the crAss-like phages that recode TAG) reads TAG as Gln.
STOP_CODONS = {
    1: ("TAA", "TAG", "TGA"),
    11: ("TAA", "TAG", "TGA"),
    15: ("TAA", "TGA"),
}
# Bases per k-mer block: the concatenated sequences are processed in chunks of
# about this many bases, which bounds the int64 temporaries (~8 bytes/base).
_CHUNK_BASES = 1 << 22


def encode(seq):
  """str [L] -> uint8 [L] codes (A=0, C=1, G=2, T=3, anything else 4)."""
  return _CODE[np.frombuffer(seq.encode("ascii"), np.uint8)]


def _reverse_complement_index(k):
  """int64 [4**k]: the index of each k-mer's reverse complement (base 4,
  first base most significant)."""
  idx = np.arange(4 ** k)
  digits = (idx[:, None] // 4 ** np.arange(k)[::-1]) % 4  # [4**k, k]
  rc = (3 - digits)[:, ::-1]
  return (rc * 4 ** np.arange(k)[::-1]).sum(1)


def _canonical_map(k):
  """(int64 [4**k] column of each k-mer, int n_columns) with strand pooling.

  The canonical k-mer of a pair is the one with the smaller index; columns
  follow the canonical k-mers' order. Even k has 4**(k/2) palindromes (their
  own reverse complement), hence 136 and not 128 canonical 4-mers.
  """
  idx = np.arange(4 ** k)
  canon = np.minimum(idx, _reverse_complement_index(k))
  classes, column = np.unique(canon, return_inverse=True)
  return column, len(classes)


def kmer_names(ks=(3, 4), symmetrise=True):
  """Column names of `kmer_frequencies` (a canonical k-mer's name is the
  lexicographically smaller of it and its reverse complement)."""
  names = []
  for k in ks:
    kmers = ["".join(p) for p in itertools.product(BASES, repeat=k)]
    if symmetrise:
      column, n = _canonical_map(k)
      first = {}
      for i, c in enumerate(column):
        first.setdefault(int(c), kmers[i])  # Index order: the smaller first.
      kmers = [first[c] for c in range(n)]
    names += kmers
  return names


def kmer_counts(seqs, k):
  """Raw k-mer counts, skipping every window that holds an unknown base.

  Args:
    seqs: N strings.
    k: k-mer length (4**k columns; k <= 8 keeps the counts table small).

  Returns:
    int64 [N, 4**k] counts, column = base-4 index of the k-mer (A=0 ... T=3,
    first base most significant).
  """
  n_cols = 4 ** k
  out = np.zeros((len(seqs), n_cols), np.int64)
  start = 0
  while start < len(seqs):
    # One chunk of whole sequences, each followed by an unknown base so that
    # no window spans two sequences.
    stop, total = start, 0
    while stop < len(seqs) and (stop == start or total < _CHUNK_BASES):
      total += len(seqs[stop]) + 1
      stop += 1
    chunk = seqs[start:stop]
    codes = encode("N".join(chunk) + "N").astype(np.int64)
    owner = np.repeat(np.arange(len(chunk)),
                      [len(s) + 1 for s in chunk])  # Sequence of each base.
    n_win = len(codes) - k + 1
    if n_win > 0:
      index = np.zeros(n_win, np.int64)
      valid = np.ones(n_win, bool)
      for j in range(k):
        window = codes[j:j + n_win]
        valid &= window != _UNKNOWN
        index = index * 4 + np.minimum(window, 3)
      flat = owner[:n_win][valid] * n_cols + index[valid]
      out[start:stop] = np.bincount(
          flat, minlength=len(chunk) * n_cols).reshape(len(chunk), n_cols)
    start = stop
  return out


def kmer_frequencies(seqs, ks=(3, 4), symmetrise=True):
  """k-mer frequencies, normalised per k, concatenated over `ks`.

  Windows holding an unknown base (N) are skipped and the rest normalised, so
  each k's block sums to 1 (or is all zero for a sequence with no valid
  k-mer, e.g. one shorter than k).

  Args:
    seqs: N strings over ACGTN.
    ks: k-mer lengths.
    symmetrise: pool each k-mer with its reverse complement (3-mers: 32
      columns, 4-mers: 136); otherwise all 4**k k-mers (64 + 256 = 320).

  Returns:
    float32 [N, F], columns named by `kmer_names(ks, symmetrise)`.
  """
  seqs = list(seqs)
  blocks = []
  for k in ks:
    counts = kmer_counts(seqs, k)
    if symmetrise:
      column, n = _canonical_map(k)
      pool = np.zeros((4 ** k, n), np.int64)
      pool[np.arange(4 ** k), column] = 1  # Each k-mer into its class.
      counts = counts @ pool
    total = counts.sum(1, keepdims=True)
    blocks.append(counts / np.maximum(total, 1))
  return np.concatenate(blocks, axis=1).astype(np.float32)


def gc_content(seqs):
  """float32 [N]: (G + C) / (A + C + G + T), unknown bases left out; NaN for
  a sequence without a single A, C, G or T."""
  out = np.empty(len(seqs), np.float32)
  for i, s in enumerate(seqs):
    s = s.upper()
    gc = s.count("G") + s.count("C")
    acgt = gc + s.count("A") + s.count("T")
    out[i] = gc / acgt if acgt else np.nan
  return out


def _stop_tables(table):
  """(bool [64] forward stop, bool [64] reverse-strand stop) by codon index.

  A codon read on the reverse strand over forward bases x y z is
  rc(xyz), so it is a stop iff xyz is the reverse complement of a stop.
  """
  if table not in STOP_CODONS:
    raise ValueError(f"translation table {table} is not supported; known: "
                     f"{sorted(STOP_CODONS)}")
  fwd = np.zeros(64, bool)
  for codon in STOP_CODONS[table]:
    c = encode(codon)
    fwd[c[0] * 16 + c[1] * 4 + c[2]] = True
  return fwd, fwd[_reverse_complement_index(3)]


def _longest_run(is_stop):
  """Longest run of False in bool [M] (M if no True)."""
  cuts = np.flatnonzero(is_stop)
  if not len(cuts):
    return len(is_stop)
  edges = np.concatenate([[-1], cuts, [len(is_stop)]])
  return int(np.diff(edges).max() - 1)


def _codon_stops(seq, table):
  """(forward, reverse) bool [L - 2]: the codon at positions p..p+2 is a
  stop read on the forward strand / read on the reverse strand, under
  `table`; a codon holding an N is never a stop."""
  fwd_stop, rev_stop = _stop_tables(table)
  codes = encode(seq).astype(np.int64)
  first, second, third = codes[:-2], codes[1:-1], codes[2:]
  known = (first < 4) & (second < 4) & (third < 4)
  index = (np.minimum(first, 3) * 16 + np.minimum(second, 3) * 4
           + np.minimum(third, 3))
  return fwd_stop[index] & known, rev_stop[index] & known


def stop_flags(seq, table=11):
  """int32 [L] per position p: bit 0 set if the codon p..p+2 is a stop on
  the forward strand, bit 1 if it is a stop read on the reverse strand,
  under NCBI translation table `table` (1, 11 or 15); 0 where no codon
  fits (the last two positions)."""
  out = np.zeros(len(seq), np.int32)
  if len(seq) >= 3:
    fwd, rev = _codon_stops(seq, table)
    out[:len(seq) - 2] = fwd.astype(np.int32) | (rev.astype(np.int32) << 1)
  return out


def frame_orfs(seq, table=11):
  """Longest stretch of consecutive sense codons in each of the six frames.

  An ORF here is stop-to-stop (no start codon needed): the sequence ends count
  as boundaries, since fragments cut through genes, and the stop codon itself
  is not counted. A codon with an unknown base is read as sense (as an 'X' in
  a translation): an N cannot be shown to be a stop.

  Forward frame f reads codons at positions f, f + 3, ...; reverse frame r
  reads the reverse complement from its position r. Reverse codons sit on the
  same three residue classes of forward positions, so all six frames come
  from one pass over the L - 2 codon positions.

  Args:
    seq: a string over ACGTN.
    table: NCBI translation table (1, 11 or 15), which sets the stop codons.

  Returns:
    int64 [6], in codons: forward frames 0, 1, 2, then reverse frames 0, 1, 2.
  """
  out = np.zeros(6, np.int64)
  n_pos = len(seq) - 2
  if n_pos <= 0:
    return out
  fwd, rev = _codon_stops(seq, table)
  for frame in range(3):
    out[frame] = _longest_run(fwd[frame::3])
    # Reverse position j = L - 3 - i reads forward codon position i.
    out[3 + (n_pos - 1 - frame) % 3] = _longest_run(rev[frame::3])
  return out


def longest_orf(seq, table=11):
  """int: the longest ORF over the six frames of `frame_orfs`, in codons
  (0 for a sequence shorter than 3 bases)."""
  return int(frame_orfs(seq, table).max())


def _tables_for(seqs, tables):
  if np.isscalar(tables):
    return [int(tables)] * len(seqs)
  tables = [int(t) for t in tables]
  if len(tables) != len(seqs):
    raise ValueError(f"{len(tables)} tables for {len(seqs)} sequences")
  return tables


def longest_orfs(seqs, tables=11):
  """int64 [N]: `longest_orf` of each sequence, in codons.

  Args:
    seqs: N strings.
    tables: one NCBI table for all, or N of them.
  """
  seqs = list(seqs)
  return np.array([longest_orf(s, t)
                   for s, t in zip(seqs, _tables_for(seqs, tables))], np.int64)


def longest_orf_fraction(seqs, tables=11):
  """float32 [N]: longest ORF in nucleotides (3 x codons) / sequence length
  (0 for an empty sequence). About 1 for an intact coding window; a
  premature stop or a frameshift roughly halves it."""
  seqs = list(seqs)
  lengths = np.array([len(s) for s in seqs], np.float64)
  nt = 3.0 * longest_orfs(seqs, tables)
  return (nt / np.maximum(lengths, 1)).astype(np.float32)
