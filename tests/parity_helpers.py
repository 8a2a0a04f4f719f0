"""Helpers shared by the PyTorch / PyG parity tests."""

import flax
import jax
import numpy as np
import pytest
import torch

RTOL = ATOL = 1e-5


@pytest.fixture(autouse=True)
def highest_precision():
  """Matmuls in full float32 (a test module imports this fixture)."""
  with jax.default_matmul_precision("highest"):
    yield


def close(got, want, rtol=RTOL, atol=ATOL):
  if isinstance(want, torch.Tensor):
    want = want.detach().cpu().numpy()
  np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


def t(a):
  """numpy/jax -> torch tensor (a copy)."""
  return torch.from_numpy(np.array(a))


def unfreeze(p):
  return flax.core.unfreeze(p) if hasattr(p, "unfreeze") else p
