"""k-mer tokens of nucleotide sequences, made on the device.

Sequences arrive as base ids (A=0, C=1, G=2, T=3, N=4; mmjax.data.viral)
[B, L] with a mask [B, L]. A token is a patch of `patch` consecutive
positions; its features are, for each position p of the patch and each k,
the one-hot of the k-mer that starts at p (zero where that k-mer runs past
the sequence or holds an N): [B, T, patch * sum(4^k)], T = ceil(L / patch).

Why one-hots per position rather than k-mer counts per window: a count
forgets where in the window a k-mer sits, and with it the reading frame (a
stop codon matters only in the frame of a gene). With patch = 3 the offset
of a codon inside its token is its frame relative to the token grid, so a
premature stop or a frameshift stays visible to the transformer. k = 3 and
4 with patch 3 gives 3 x (64 + 256) = 960 features per token, the reference
recipe's ~1,024-feature tokens.

`kmer_patch_indices` gives the same features as the indices of their ones
(at most patch * len(ks) per token), so that the first layer can gather
rows of its kernel instead of multiplying by a one-hot matrix that is
almost all zeros (transformer.MultiHotDense: the same parameters, the
same outputs).
"""

import jax.numpy as jnp

ALPHABET = 4  # A, C, G, T; id 4 (N) and padding never make a valid k-mer.
FLAG_BITS = 2  # kmer_patch_indices' per-position flags: forward, reverse.


def kmer_ids(bases, mask, k):
  """(ids [B, L] int32 of the k-mer starting at each position, valid
  [B, L] bool: its k bases are real ACGT)."""
  b = bases.astype(jnp.int32)
  length = b.shape[1]
  ids = jnp.zeros_like(b)
  valid = jnp.ones(b.shape, bool)
  for j in range(k):
    shifted = jnp.pad(b[:, j:], ((0, 0), (0, j)), constant_values=ALPHABET)
    real = jnp.pad(mask[:, j:] > 0, ((0, 0), (0, j)))
    ok = real & (shifted < ALPHABET)
    ids = ids * ALPHABET + jnp.where(ok, shifted, 0)
    valid = valid & ok
  del length
  return ids, valid


def kmer_patches(bases, mask, ks=(3, 4), patch=3, dtype=jnp.float32):
  """Token features [B, T, patch * sum(4^k)] and token mask [B, T] (1 = the
  patch holds a real position) of base ids [B, L] with mask [B, L]."""
  b, length = bases.shape
  t = -(-length // patch)
  pad = t * patch - length
  bases = jnp.pad(bases, ((0, 0), (0, pad)), constant_values=ALPHABET)
  mask = jnp.pad(mask, ((0, 0), (0, pad)))
  feats = []
  for k in ks:
    ids, valid = kmer_ids(bases, mask, k)
    onehot = (ids[..., None] == jnp.arange(ALPHABET ** k)) & valid[..., None]
    feats.append(onehot.astype(dtype).reshape(b, t, patch * ALPHABET ** k))
  token_mask = (mask.reshape(b, t, patch) > 0).any(-1)
  return jnp.concatenate(feats, -1), token_mask.astype(jnp.float32)


def kmer_patch_indices(bases, mask, ks=(3, 4), patch=3, flags=None):
  """The ones of kmer_patches as indices: [B, T, patch * len(ks)] int32
  into its feature axis, -1 where that k-mer is not valid; token mask
  [B, T] as kmer_patches.

  flags: None, or int [B, L] per-position bit flags (e.g. stop codons,
  mmjax.data.viral.features.stop_flags), each set bit j at position p of a
  patch one more feature num_features(ks, patch) + p * FLAG_BITS + j:
  [B, T, patch * (len(ks) + FLAG_BITS)] indices then."""
  b, length = bases.shape
  t = -(-length // patch)
  pad = t * patch - length
  bases = jnp.pad(bases, ((0, 0), (0, pad)), constant_values=ALPHABET)
  mask = jnp.pad(mask, ((0, 0), (0, pad)))
  idx, offset = [], 0
  for k in ks:
    ids, valid = kmer_ids(bases, mask, k)
    # Feature p * 4^k + id of k's block: the k-mer at position p of a patch.
    within = jnp.arange(t * patch).reshape(1, -1) % patch * ALPHABET ** k
    idx.append(jnp.where(valid, offset + within + ids, -1).reshape(
        b, t, patch))
    offset += patch * ALPHABET ** k
  if flags is not None:
    flags = jnp.pad(flags.astype(jnp.int32), ((0, 0), (0, pad)))
    within = jnp.arange(t * patch).reshape(1, -1) % patch * FLAG_BITS
    for j in range(FLAG_BITS):
      on = ((flags >> j) & 1).astype(bool) & (mask > 0)
      idx.append(jnp.where(on, offset + within + j, -1).reshape(b, t, patch))
  token_mask = (mask.reshape(b, t, patch) > 0).any(-1)
  return jnp.concatenate(idx, -1), token_mask.astype(jnp.float32)


def num_features(ks, patch, flags=False):
  """Features per token: the k-mer one-hots, and the flag bits if
  `flags`."""
  return patch * (sum(ALPHABET ** k for k in ks) + (FLAG_BITS if flags
                                                     else 0))
