"""3D convolution blocks and the voxel-grid encoders built from them
(reference recipe 002's AdvancedTransformerCNN and ResidualTransformerCNN).

Every tensor is channels-last: x [B, D, H, W, C]. Padding follows PyTorch's
convention (the same number of voxels on both sides of every axis), so a
stride-2 convolution keeps torch's output grid; flax's 'SAME' would pad an
even-sized input on the high side only and shift the grid by half a voxel.
Every BatchNorm takes `rows` [B] (1 = the row counts in batch statistics;
None = all rows), as mmjax.models.mlp.BatchNorm does.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.models.mlp import BatchNorm
from mmjax.models.positions import positional_encoding_3d
from mmjax.models.transformer import TransformerBlock


def _flat(init):
  """A fan-in initialiser drawing a 2D [k^3 C_in, C_out] array and reshaping
  it: the same distribution, but XLA on CPU compiles threefry bits for 5D
  shapes in seconds per kernel (tens of seconds of init for a trunk)."""
  def draw(key, shape, dtype=jnp.float32):
    flat = (int(np.prod(shape[:-1])), shape[-1])
    return init(key, flat, dtype).reshape(shape)
  return draw


# He initialisation for convolutions followed by ReLU.
_HE = _flat(nn.initializers.variance_scaling(2.0, "fan_in",
                                             "truncated_normal"))


def conv3d(features, kernel_size, *, stride=1, padding="same", dilation=1,
           use_bias=True, dtype=jnp.float32, kernel_init=_HE, name=None):
  """A 3D convolution with torch.nn.Conv3d's arguments.

  Args:
    features: output channels.
    kernel_size: edge of the cubic kernel (odd when padding is 'same').
    stride: step on every axis.
    padding: voxels added on each side of every axis (int), or 'same': the
      output keeps the input's size at stride 1,
      dilation * (kernel_size - 1) / 2 per side.
    dilation: spacing of the kernel taps.
    use_bias: add a bias per output channel.
    dtype: computation dtype (parameters stay float32).
    kernel_init: initialiser of the [k, k, k, C_in, C_out] kernel.
    name: module name.

  Returns:
    A Conv3d mapping [B, D, H, W, C_in] to [B, D', H', W', features],
    D' = (D + 2 padding - dilation (k - 1) - 1) // stride + 1 (torch's).
  """
  if padding == "same":
    if kernel_size % 2 == 0:
      raise ValueError(f"conv3d: padding 'same' needs an odd kernel, got "
                       f"{kernel_size}")
    padding = dilation * (kernel_size - 1) // 2
  return Conv3d(features, kernel_size, stride=stride, padding=padding,
                dilation=dilation, use_bias=use_bias, dtype=dtype,
                kernel_init=kernel_init, name=name)


class Conv3d(nn.Module):
  """A cubic 3D convolution, parameters `kernel` [k, k, k, C_in, C_out] and
  `bias` [C_out] as flax's nn.Conv names them.

  `impl` 'native' is XLA's 3D convolution; 'depth_slices' computes the same
  sum as one 2D convolution over (H, W) of every depth slice, whose output
  channels hold the k depth taps, followed by k shifted sums along D: XLA's
  CPU backend runs 3D convolutions much slower than 2D ones,
  while GPUs and TPUs have fast 3D kernels.
  'auto' (default) picks depth_slices on CPU and native elsewhere.
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  dilation: int = 1
  use_bias: bool = True
  dtype: Any = jnp.float32
  kernel_init: Any = _HE
  impl: str = "auto"

  @nn.compact
  def __call__(self, x):
    k, c = self.kernel_size, x.shape[-1]
    kernel = self.param("kernel", self.kernel_init,
                        (k, k, k, c, self.features))
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    impl = self.impl
    if impl == "auto":
      impl = "depth_slices" if jax.default_backend() == "cpu" else "native"
    if impl == "native":
      y = jax.lax.conv_general_dilated(
          x, kernel, (self.stride,) * 3, [(self.padding, self.padding)] * 3,
          rhs_dilation=(self.dilation,) * 3,
          dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    elif impl == "depth_slices":
      y = _conv3d_by_depth_slices(x, kernel, self.stride, self.padding,
                                  self.dilation)
    else:
      raise ValueError(f"Conv3d.impl: unknown '{self.impl}' (known: auto, "
                       "native, depth_slices)")
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,))
      y = y + bias.astype(y.dtype)
    return y


def _conv3d_by_depth_slices(x, kernel, stride, padding, dilation):
  """The 3D convolution of x [B, D, H, W, C] with kernel [k, k, k, C, O]
  (torch's padding, stride and dilation on every axis) as one 2D
  convolution and k shifted sums: [B, D', H', W', O]."""
  b, d, h, w, c = x.shape
  k, o = kernel.shape[0], kernel.shape[-1]
  xp = jnp.pad(x, ((0, 0), (padding, padding), (0, 0), (0, 0), (0, 0)))
  dp = d + 2 * padding
  d_out = (dp - dilation * (k - 1) - 1) // stride + 1
  # [kh, kw, C, (kd, O)]: each depth tap is a block of output channels.
  k2 = jnp.transpose(kernel, (1, 2, 3, 0, 4)).reshape(k, k, c, k * o)
  y = jax.lax.conv_general_dilated(
      xp.reshape(b * dp, h, w, c), k2, (stride, stride),
      [(padding, padding)] * 2, rhs_dilation=(dilation, dilation),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  y = y.reshape(b, dp, y.shape[1], y.shape[2], k, o)
  # Output depth i reads input slices i * stride + tap * dilation.
  last = stride * (d_out - 1) + 1
  return sum(y[:, t * dilation:t * dilation + last:stride, :, :, t]
             for t in range(k))


class ConvBNReLU(nn.Module):
  """conv3d -> BatchNorm -> ReLU. [B, D, H, W, C] -> [B, D', H', W',
  features]; parameters under `conv` and `bn`."""
  features: int
  kernel_size: int = 3
  stride: int = 1
  padding: Any = "same"
  dilation: int = 1
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, rows=None):
    x = conv3d(self.features, self.kernel_size, stride=self.stride,
               padding=self.padding, dilation=self.dilation,
               use_bias=self.use_bias, dtype=self.dtype, name="conv")(x)
    x = BatchNorm(dtype=self.dtype, name="bn")(x, train=train,
                                                       rows=rows)
    return nn.relu(x)


class MultiScaleBlock(nn.Module):
  """Parallel 1x1x1, 3x3x3, 5x5x5 and dilated (2) 3x3x3 convolutions of
  `branch_channels` each, concatenated in that order, then BatchNorm and
  ReLU. [B, D, H, W, C] -> [B, D, H, W, 4 branch_channels]."""
  branch_channels: int = 32
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, rows=None):
    c = self.branch_channels
    feats = [conv3d(c, 1, dtype=self.dtype, name="point")(x),
             conv3d(c, 3, dtype=self.dtype, name="local")(x),
             conv3d(c, 5, dtype=self.dtype, name="regional")(x),
             conv3d(c, 3, dilation=2, dtype=self.dtype, name="dilated")(x)]
    x = jnp.concatenate(feats, axis=-1)
    x = BatchNorm(dtype=self.dtype, name="bn")(x, train=train,
                                                       rows=rows)
    return nn.relu(x)


class ChannelAttention(nn.Module):
  """Squeeze-and-excitation: s = sigmoid(W2 relu(W1 mean_xyz(x) + b1) + b2),
  out = x * s per channel. W1: C -> max(C // reduction, 1).
  [B, D, H, W, C] -> same."""
  reduction: int = 16
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    s = x.astype(jnp.float32).mean(axis=(1, 2, 3)).astype(self.dtype)
    s = nn.relu(nn.Dense(max(c // self.reduction, 1), dtype=self.dtype,
                         name="squeeze")(s))
    s = nn.sigmoid(nn.Dense(c, dtype=self.dtype, name="excite")(s))
    return x * s[:, None, None, None, :].astype(x.dtype)


class SpatialAttention(nn.Module):
  """CBAM spatial attention: s = sigmoid(conv([mean_c(x), max_c(x)])) with a
  bias-free kernel_size^3 convolution of 2 -> 1 channels ('same' padding),
  out = x * s per position. [B, D, H, W, C] -> same."""
  kernel_size: int = 7
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    maps = jnp.stack([x.astype(jnp.float32).mean(-1),
                      x.astype(jnp.float32).max(-1)], axis=-1)
    s = conv3d(1, self.kernel_size, use_bias=False, dtype=self.dtype,
               kernel_init=_flat(nn.initializers.lecun_normal()),
               name="conv")(
                   maps.astype(self.dtype))
    return x * nn.sigmoid(s).astype(x.dtype)


class ResidualBlock3d(nn.Module):
  """ResNet basic block: relu(BN(conv3(relu(BN(conv3_s(x))))) + skip(x)),
  skip = BN(conv1_s(x)) when the stride or the width changes, else x.
  Bias-free convolutions (BatchNorm follows each).
  [B, D, H, W, C] -> [B, D/s, H/s, W/s, features] (torch's rounding)."""
  features: int
  stride: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, rows=None):
    h = ConvBNReLU(self.features, 3, stride=self.stride, padding=1,
                   use_bias=False, dtype=self.dtype, name="conv_bn1")(
                       x, train=train, rows=rows)
    h = conv3d(self.features, 3, padding=1, use_bias=False, dtype=self.dtype,
               name="conv2")(h)
    h = BatchNorm(dtype=self.dtype, name="bn2")(h, train=train,
                                                        rows=rows)
    if self.stride != 1 or x.shape[-1] != self.features:
      x = conv3d(self.features, 1, stride=self.stride, padding=0,
                 use_bias=False, dtype=self.dtype, name="proj")(x)
      x = BatchNorm(dtype=self.dtype, name="proj_bn")(
          x, train=train, rows=rows)
    return nn.relu(h + x.astype(h.dtype))


class VoxelTransformer(nn.Module):
  """Feature-map tokens -> Dense to `width` + 3D position code [+ component
  embedding] -> `depth` pre-LN TransformerBlocks -> LayerNorm.

  fmaps: K feature maps [B, d, h, w, C] (K > 1: the components of a grid,
  each given a learned embedding `component_embed` [K, width] so that
  attention can tell them apart; every token attends to every component's
  tokens). Returns tokens [B, K d h w, width], component-major, positions
  in row-major d, h, w order. The final LayerNorm uses torch's epsilon
  (1e-5), as the reference recipe's nn.LayerNorm.
  """
  width: int
  depth: int
  num_heads: int
  mlp_ratio: int = 4
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, fmaps, *, train: bool):
    embed = nn.Dense(self.width, dtype=self.dtype, name="embed")
    if len(fmaps) > 1:
      comp = self.param("component_embed", nn.initializers.normal(0.02),
                        (len(fmaps), self.width))
    tokens = []
    for k, fmap in enumerate(fmaps):
      b, d, h, w, _ = fmap.shape
      x = embed(fmap)
      x = x + positional_encoding_3d(d, h, w, self.width).astype(x.dtype)
      if len(fmaps) > 1:
        x = x + comp[k].astype(x.dtype)
      tokens.append(x.reshape(b, d * h * w, self.width))
    x = jnp.concatenate(tokens, axis=1)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    mask = jnp.ones(x.shape[:2], jnp.float32)  # every token is real
    for i in range(self.depth):
      x = TransformerBlock(self.num_heads, self.mlp_ratio, self.dropout,
                           self.dtype, name=f"block{i}")(x, mask, train=train)
    return nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name="ln_out")(x)


class MultiScaleTrunk(nn.Module):
  """AdvancedTransformerCNN's CNN (reference recipe 002):
  MultiScaleBlock (4 branch_channels) -> [ChannelAttention] ->
  [SpatialAttention] -> stride-2 3x3x3 conv (same width) -> 3x3x3 conv to
  `stage_channels` -> stride-2 3x3x3 conv, each conv with BatchNorm and
  ReLU. [B, D, H, W, C] -> [B, D/4, H/4, W/4, stage_channels] (D divisible
  by 4; torch's ceil otherwise): 24^3 -> 6^3, 12^3 -> 3^3.
  """
  branch_channels: int = 32
  stage_channels: int = 256
  channel_attention: bool = True
  spatial_attention: bool = True
  reduction: int = 16
  spatial_kernel: int = 7
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, rows=None):
    x = MultiScaleBlock(self.branch_channels, self.dtype, name="multiscale")(
        x, train=train, rows=rows)
    if self.channel_attention:
      x = ChannelAttention(self.reduction, self.dtype,
                           name="channel_attention")(x)
    if self.spatial_attention:
      x = SpatialAttention(self.spatial_kernel, self.dtype,
                           name="spatial_attention")(x)
    x = ConvBNReLU(x.shape[-1], 3, stride=2, padding=1, dtype=self.dtype,
                   name="down1")(x, train=train, rows=rows)
    x = ConvBNReLU(self.stage_channels, 3, padding=1, dtype=self.dtype,
                   name="stage")(x, train=train, rows=rows)
    return ConvBNReLU(self.stage_channels, 3, stride=2, padding=1,
                      dtype=self.dtype, name="down2")(x, train=train,
                                                      rows=rows)


class CNNTransformer3d(nn.Module):
  """AdvancedTransformerCNN (reference recipe 002) up to its head: the
  MultiScaleTrunk's feature map as tokens through a VoxelTransformer, mean
  pooled. Grid [B, D, H, W, C] -> [B, width]. Parameters under `cnn` and
  `transformer`."""
  branch_channels: int = 32
  stage_channels: int = 256
  channel_attention: bool = True
  spatial_attention: bool = True
  reduction: int = 16
  spatial_kernel: int = 7
  width: int = 256
  depth: int = 4
  num_heads: int = 8
  mlp_ratio: int = 4
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, grid, *, train: bool, rows=None):
    fmap = MultiScaleTrunk(self.branch_channels, self.stage_channels,
                           self.channel_attention, self.spatial_attention,
                           self.reduction, self.spatial_kernel,
                           dtype=self.dtype, name="cnn")(
                               grid.astype(self.dtype), train=train,
                               rows=rows)
    tokens = VoxelTransformer(self.width, self.depth, self.num_heads,
                              self.mlp_ratio, self.dropout, self.dtype,
                              name="transformer")([fmap], train=train)
    return tokens.astype(jnp.float32).mean(1).astype(self.dtype)


class ResidualTower(nn.Module):
  """3x3x3 stem conv (BN, ReLU) to widths[0], then one ResidualBlock3d per
  width with its stride. [B, D, H, W, C] -> [B, D / prod(strides), ...,
  widths[-1]]."""
  widths: Sequence[int] = (32, 64, 128)
  strides: Sequence[int] = (1, 2, 2)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool, rows=None):
    x = ConvBNReLU(self.widths[0], 3, padding=1, use_bias=False,
                   dtype=self.dtype, name="stem")(x, train=train, rows=rows)
    for i, (w, s) in enumerate(zip(self.widths, self.strides)):
      x = ResidualBlock3d(w, s, self.dtype, name=f"block{i}")(
          x, train=train, rows=rows)
    return x


class ResidualCNN3d(nn.Module):
  """The residual CNN of ResidualTransformerCNN: one ResidualTower per
  component (`component{k}`), on that component's channels.
  grid [B, D, H, W, C] -> K feature maps."""
  components: Sequence[int]
  widths: Sequence[int] = (32, 64, 128)
  strides: Sequence[int] = (1, 2, 2)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, grid, *, train: bool, rows=None):
    fmaps, start = [], 0
    for k, c in enumerate(self.components):
      fmaps.append(ResidualTower(self.widths, self.strides, self.dtype,
                                 name=f"component{k}")(
                                     grid[..., start:start + c], train=train,
                                     rows=rows))
      start += c
    return fmaps


class ResidualCNNTransformer3d(nn.Module):
  """ResidualTransformerCNN (reference recipe 002) up to its head.

  The grid's channels are split into `components` (channel counts in
  channel order, e.g. protein then ligand channels; None: one component of
  all channels). Each component has its own residual 3D CNN (`cnn`); a
  VoxelTransformer (`transformer`) over the tokens of all components,
  marked by a learned component embedding, lets every component's voxels
  attend to the others' (the recipe's cross-component attention). Tokens
  are mean pooled per component and concatenated:
  grid [B, D, H, W, C] -> [B, K width].
  """
  components: Sequence[int] | None = None
  widths: Sequence[int] = (32, 64, 128)
  strides: Sequence[int] = (1, 2, 2)
  width: int = 128
  depth: int = 2
  num_heads: int = 4
  mlp_ratio: int = 4
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, grid, *, train: bool, rows=None):
    comps = tuple(self.components or (grid.shape[-1],))
    if sum(comps) != grid.shape[-1]:
      raise ValueError(f"residual_cnn3d components {comps} sum to "
                       f"{sum(comps)} channels, the grid has "
                       f"{grid.shape[-1]}")
    fmaps = ResidualCNN3d(comps, tuple(self.widths), tuple(self.strides),
                          self.dtype, name="cnn")(
                              grid.astype(self.dtype), train=train,
                              rows=rows)
    tokens = VoxelTransformer(self.width, self.depth, self.num_heads,
                              self.mlp_ratio, self.dropout, self.dtype,
                              name="transformer")(fmaps, train=train)
    b = tokens.shape[0]
    pooled = tokens.astype(jnp.float32).reshape(b, len(comps), -1,
                                                self.width).mean(2)
    return pooled.reshape(b, -1).astype(self.dtype)
