"""Exactly balanced, deterministic sets of labelled tight-binding models.

Candidates from `tight_binding.sample_models` are labelled exactly
(`chern.label_models`), featurized (`tb_features.model_features`) and
accepted in candidate order until both classes are full.
"""

import numpy as np

from mmjax.data.materials.chern import label_models
from mmjax.data.materials.tb_features import model_features
from mmjax.data.materials.tight_binding import DEFAULT_GAP_MIN
from mmjax.data.materials.tight_binding import DEFAULT_NK
from mmjax.data.materials.tight_binding import sample_models

CHUNK = 256              # models sampled per rng chunk (fixed: determinism).


def label_of_chern(chern):
  """The dataset's label rule: 1 (topological) iff C != 0, else 0 (trivial).

  Args:
    chern: int [...] Chern numbers of the lower band.

  Returns:
    int64 [...] labels.
  """
  return (np.asarray(chern) != 0).astype(np.int64)


def _chunk(args):
  """Samples and labels chunk `index` of candidates; keeps accepted ones."""
  seed, index, n_k, gap_min, sample_kw = args
  rng = np.random.default_rng([seed, index])
  p = sample_models(rng, CHUNK, **sample_kw)
  chern, ok, _, mesh = label_models(p["onsite"], p["hops"], n_k, gap_min)
  keep = np.nonzero(ok)[0]
  out = dict(candidate=index * CHUNK + keep, chern=chern[keep],
             mesh=mesh[keep], onsite=p["onsite"][keep], hops=p["hops"][keep])
  out.update(model_features(out["onsite"], out["hops"]))
  out["rejected"] = int(CHUNK - len(keep))
  return out


def generate(num_examples, seed=0, n_k=DEFAULT_NK, gap_min=DEFAULT_GAP_MIN,
             processes=2, sample_kw=None):
  """Generates an exactly balanced set of labelled models with features.

  Candidates are drawn in fixed chunks (chunk i from default_rng([seed, i]))
  and accepted in candidate order until each class has num_examples / 2, so
  the output depends only on the arguments, not on `processes`.

  Args:
    num_examples: even total number of models.
    seed: integer seed.
    n_k: first FHS mesh (`chern.label_models`).
    gap_min: minimum direct gap in eV.
    processes: worker processes (1 = in-process).
    sample_kw: extra keyword arguments of `sample_models`.

  Returns:
    dict of arrays over the num_examples models in candidate order: label
    int64 [N], chern int64 [N], candidate int64 [N], mesh int64 [N] (the
    mesh that certified C), onsite, hops, the four modality arrays of
    `model_features`; and "rejected" (int) the number of candidates with a
    direct gap below gap_min or left undecided by `chern.label_models`.
  """
  if num_examples % 2:
    raise ValueError("num_examples must be even for exact balance")
  quota = num_examples // 2
  sample_kw = dict(sample_kw or {})
  parts, counts, rejected = [], [0, 0], 0

  def consume(res):
    nonlocal rejected
    rejected += res["rejected"]
    lab = label_of_chern(res["chern"])
    take = np.zeros(len(lab), bool)
    for i, l in enumerate(lab):
      if counts[l] < quota:
        counts[l] += 1
        take[i] = True
    parts.append({k: v[take] for k, v in res.items() if k != "rejected"})
    return counts[0] >= quota and counts[1] >= quota

  # Rounds of a few chunks each: bounded look-ahead, results used in order.
  # ~90% of candidates pass and classes are ~50/50: size the first rounds so
  # small datasets do not sample many unused chunks.
  per_round = max(processes, min(4 * max(processes, 1),
                                 -(-num_examples // int(0.8 * CHUNK))))
  pool = None
  if processes > 1:
    import multiprocessing  # pylint: disable=g-import-not-at-top
    # spawn, not fork: the caller (the trainer) has JAX's threads running,
    # and forking a multithreaded process can deadlock the children.
    pool = multiprocessing.get_context("spawn").Pool(processes)
  try:
    start, done = 0, False
    while not done:
      tasks = [(seed, i, n_k, gap_min, sample_kw)
               for i in range(start, start + per_round)]
      start += per_round
      results = pool.imap(_chunk, tasks) if pool else map(_chunk, tasks)
      for res in results:
        if not done:
          done = consume(res)
  finally:
    if pool is not None:
      pool.terminate()
  out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  out["label"] = label_of_chern(out["chern"])
  out["rejected"] = rejected
  return out
