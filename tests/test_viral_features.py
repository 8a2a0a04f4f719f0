"""Sequence features of the viral baselines against hand-counted answers and
a codon-by-codon reference translation."""

import numpy as np
import pytest

from mmjax.data.viral import features

_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def _rc(seq):
  return seq.translate(_COMPLEMENT)[::-1]


def _reference_frames(seq, table):
  """Six-frame longest stop-free codon run, one codon string at a time."""
  stops = set(features.STOP_CODONS[table])
  out = []
  for strand in (seq, _rc(seq)):
    for frame in range(3):
      best = run = 0
      for i in range(frame, len(strand) - 2, 3):
        run = 0 if strand[i:i + 3] in stops else run + 1
        best = max(best, run)
      out.append(best)
  return out


def _random_seqs(n, low, high, seed=0, n_rate=0.0):
  rng = np.random.default_rng(seed)
  seqs = []
  for _ in range(n):
    s = rng.choice(list("ACGT"), size=int(rng.integers(low, high + 1)))
    s[rng.random(len(s)) < n_rate] = "N"
    seqs.append("".join(s))
  return seqs


def test_stop_in_frame_2_only():
  # TGA at positions 2-4: a stop in forward frame 2 and nowhere else (no
  # TTA/CTA/TCA, so no reverse-strand stop either).
  seq = "CC" + "TGA" + "C" * 25
  assert list(features.frame_orfs(seq, 11)) == [10, 9, 8, 10, 9, 9]
  assert features.longest_orf(seq, 11) == 10


def test_reverse_strand_orf():
  # The reverse complement is 8 sense codons (CAT CAT TCA ATC ...); the
  # forward frames are cut every few codons.
  seq = "TAATGAATGATTGATTGAATGATG"
  assert _rc(seq) == "CATCATTCAATCAATCATTCATTA"
  frames = features.frame_orfs(seq, 11)
  assert frames[3] == 8 and frames[:3].max() == 3
  assert features.longest_orf(seq, 11) == 8


def test_table_15_reads_tag_as_sense():
  seq = "CCC" * 5 + "TAG" + "CCC" * 5
  for table in (1, 11):
    assert features.frame_orfs(seq, table)[0] == 5
  assert features.frame_orfs(seq, 15)[0] == 11
  for stop in ("TAA", "TGA"):  # Still stops under table 15.
    assert features.frame_orfs("CCC" * 5 + stop + "CCC" * 5, 15)[0] == 5
  with pytest.raises(ValueError, match="table 2"):
    features.longest_orf(seq, 2)


def test_unknown_bases():
  # A codon holding an N is sense: it cannot be shown to be a stop.
  assert features.frame_orfs("CCC" * 5 + "TNA" + "CCC" * 5, 11)[0] == 11
  assert features.longest_orf("NNNNNN", 11) == 2
  assert features.longest_orf("AC", 11) == 0
  # Windows with an N are skipped: ACG CGT | ACG CGT.
  counts = features.kmer_counts(["ACGTNACGT"], 3)[0]
  assert counts.sum() == 4 and counts[6] == 2 and counts[27] == 2  # ACG, CGT
  freq = features.kmer_frequencies(["ACGTNACGT"], ks=(3,), symmetrise=False)
  np.testing.assert_allclose(freq[0, [6, 27]], [0.5, 0.5])
  # ACG and CGT are each other's reverse complement: one canonical 3-mer.
  freq = features.kmer_frequencies(["ACGTNACGT"], ks=(3,))
  assert freq[0].max() == 1.0
  names = features.kmer_names((3,))
  assert names[int(freq[0].argmax())] == "ACG"
  np.testing.assert_allclose(features.gc_content(["GGNN", "acgt", "ATAT"]),
                             [1.0, 0.5, 0.0])
  assert np.isnan(features.gc_content(["NNNN"])[0])
  # Shorter than k, or all N: an all-zero block, not a division by zero.
  assert not features.kmer_frequencies(["AC", "NNNNNN"]).any()


def test_frames_match_a_reference_translation():
  seqs = _random_seqs(60, 0, 200, seed=1, n_rate=0.02)
  for i, seq in enumerate(seqs):
    table = (1, 11, 15)[i % 3]
    assert list(features.frame_orfs(seq, table)) == _reference_frames(
        seq, table), (seq, table)
  lens = np.array([len(s) for s in seqs])
  frac = features.longest_orf_fraction(seqs, [(1, 11, 15)[i % 3]
                                              for i in range(len(seqs))])
  orfs = features.longest_orfs(seqs, [(1, 11, 15)[i % 3]
                                      for i in range(len(seqs))])
  np.testing.assert_allclose(frac, 3 * orfs / np.maximum(lens, 1), rtol=1e-6)
  assert ((frac >= 0) & (frac <= 1)).all()


def test_canonical_kmers_count_and_sum():
  seqs = _random_seqs(20, 50, 400, seed=2, n_rate=0.01)
  x = features.kmer_frequencies(seqs)
  assert x.shape == (20, 32 + 136) and x.dtype == np.float32
  np.testing.assert_allclose(x[:, :32].sum(1), 1, rtol=1e-5)
  np.testing.assert_allclose(x[:, 32:].sum(1), 1, rtol=1e-5)
  raw = features.kmer_frequencies(seqs, symmetrise=False)
  assert raw.shape == (20, 64 + 256)
  names = features.kmer_names()
  assert len(names) == 168 == len(set(names))
  assert len(features.kmer_names(symmetrise=False)) == 320
  # 16 palindromic 4-mers are their own class; the rest come in pairs.
  assert sum(n == _rc(n) for n in names[32:]) == 16
  # Pooling only regroups the counts: as many k-mers as raw windows.
  for k in (3, 4):
    raw_counts = features.kmer_counts(seqs, k)
    valid = [sum("N" not in s[i:i + k] for i in range(len(s) - k + 1))
             for s in seqs]
    np.testing.assert_array_equal(raw_counts.sum(1), valid)


def test_symmetrised_features_ignore_the_strand():
  seqs = _random_seqs(30, 1, 600, seed=3, n_rate=0.01)
  rcs = [_rc(s) for s in seqs]
  np.testing.assert_allclose(features.kmer_frequencies(seqs),
                             features.kmer_frequencies(rcs), atol=1e-7)
  assert not np.allclose(features.kmer_frequencies(seqs, symmetrise=False),
                         features.kmer_frequencies(rcs, symmetrise=False))
  np.testing.assert_array_equal(features.gc_content(seqs),
                                features.gc_content(rcs))
  np.testing.assert_array_equal(features.longest_orfs(seqs),
                                features.longest_orfs(rcs))


def test_batch_of_long_sequences_is_fast():
  """The vectorised paths: 2,000 sequences of 300-3,000 bp (a fifth of the
  10,000 the recipe featurises) in well under the time a per-window loop
  would take."""
  import time  # pylint: disable=g-import-not-at-top
  seqs = _random_seqs(2000, 300, 3000, seed=4)
  t0 = time.time()
  features.kmer_frequencies(seqs)
  features.longest_orf_fraction(seqs, 11)
  assert time.time() - t0 < 10


@pytest.mark.parametrize("table", [1, 11, 15])
def test_stop_flags_match_biopython_codon_tables(table):
  """Bit 0: the codon at p is a stop of Biopython's table; bit 1: its
  reverse complement is; 0 where no codon fits or an N is in it."""
  from Bio.Data import CodonTable  # pylint: disable=g-import-not-at-top
  from Bio.Seq import Seq  # pylint: disable=g-import-not-at-top
  stops = set(CodonTable.unambiguous_dna_by_id[table].stop_codons)
  rng = np.random.default_rng(table)
  seq = "".join(rng.choice(list("ACGT"), 400)) + "TAGNTAA"
  flags = features.stop_flags(seq, table)
  assert flags.shape == (len(seq),) and flags.dtype == np.int32
  for p in range(len(seq)):
    codon = seq[p:p + 3]
    real = len(codon) == 3 and "N" not in codon
    fwd = real and codon in stops
    rev = real and str(Seq(codon).reverse_complement()) in stops
    assert flags[p] == int(fwd) | (int(rev) << 1), (p, codon)
