"""Fixed sine/cosine position codes, in numpy only.

numpy, so that a code is a constant of any trace, and so that the PyTorch
benchmarks (benchmarks/w3_torch.py, w4_torch.py) can use the very same
codes without importing JAX into the process whose memory they measure.
"""

import numpy as np


def sinusoidal(length, width):
  """The 1D code of "Attention is all you need": float32 [length, width]
  (width even), sines in the even columns, cosines in the odd ones:
    pe[p, 2m] = sin(p / 10000^(2m / width)),
    pe[p, 2m + 1] = cos(p / 10000^(2m / width))."""
  pos = np.arange(length)[:, None]
  freq = np.exp(-np.log(10000.0) * np.arange(0, width, 2) / width)
  out = np.zeros((length, width), np.float32)
  out[:, 0::2] = np.sin(pos * freq)
  out[:, 1::2] = np.cos(pos * freq)
  return out


def positional_encoding_3d(d, h, w, width):
  """Fixed 3D sine/cosine position code: [d, h, w, width] float32.

  The width is split into three parts of P = 2 ceil(width / 6) features,
  one per grid axis (D, H, W in that order), each the 1D code of
  `sinusoidal` (width P) of that axis' voxel index, and the 3P features are
  cut to `width`. For the axis a in {0, 1, 2} with index p_a (i, j or k)
  and m in [0, P / 2):
    pe[i, j, k, a P + 2m]     = sin(p_a / 10000^(2m / P))
    pe[i, j, k, a P + 2m + 1] = cos(p_a / 10000^(2m / P))
  """
  part = 2 * int(np.ceil(width / 6))
  codes = [sinusoidal(n, part) for n in (d, h, w)]
  pe = np.concatenate(
      [np.broadcast_to(codes[0][:, None, None], (d, h, w, part)),
       np.broadcast_to(codes[1][None, :, None], (d, h, w, part)),
       np.broadcast_to(codes[2][None, None, :], (d, h, w, part))], axis=-1)
  return np.ascontiguousarray(pe[..., :width])
