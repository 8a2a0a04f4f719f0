"""The bounded variant of reference recipe 000's feature-diversity regulariser."""

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.training.losses import feature_diversity


def _features(seed=0, b=16, f=12):
  return jax.random.normal(jax.random.key(seed), (b, f))


def test_seed_mode_rewards_scale_without_bound():
  x, mask = _features(), jnp.ones((16,))
  # The verbatim formula drops by log(s) when features are scaled by s.
  for s in (10.0, 1e3, 1e6):
    np.testing.assert_allclose(feature_diversity(x * s, mask, "seed"),
                               feature_diversity(x, mask, "seed") - np.log(s),
                               rtol=1e-4, atol=1e-4)


def test_normalized_mode_ignores_scale_and_penalises_collapse():
  x, mask = _features(), jnp.ones((16,))
  base = feature_diversity(x, mask, "normalized")
  for s in (10.0, 1e3):
    np.testing.assert_allclose(feature_diversity(x * s, mask, "normalized"),
                               base, rtol=1e-4)
  # All samples nearly alike: a much larger penalty than diverse samples.
  collapsed = x[:1] + 1e-3 * x
  assert feature_diversity(collapsed, mask, "normalized") > base + 3.0
  # Masked-out rows do not count.
  junk = x.at[10:].set(1e6)
  mask2 = jnp.ones((16,)).at[10:].set(0.0)
  np.testing.assert_allclose(feature_diversity(junk, mask2, "normalized"),
                             feature_diversity(x[:10], jnp.ones((10,)),
                                               "normalized"), rtol=1e-5)
