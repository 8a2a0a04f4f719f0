"""Dense encoders and heads."""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
  """Dense -> [BatchNorm] -> ReLU -> Dropout per hidden width.

  `final_activation=False` leaves the last layer linear (a head); True makes
  every layer a block (an encoder). Input [B, F] -> output [B, widths[-1]].
  BatchNorm follows PyTorch's defaults (momentum 0.1, eps 1e-5).
  """
  widths: Sequence[int]
  dropout: float = 0.0
  batch_norm: bool = False
  final_activation: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    for i, width in enumerate(self.widths):
      x = nn.Dense(width, dtype=self.dtype, name=f"dense{i}")(x)
      if i == len(self.widths) - 1 and not self.final_activation:
        break
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         epsilon=1e-5, dtype=self.dtype, name=f"bn{i}")(x)
      x = nn.relu(x)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return x
