"""Linear layers as NumPy affine maps: read from layers, composed, computed.

An `Affine` is what a convolution, a Dense layer, a zero padding or a
`SpatialBias` computes, written one way for all of them: zero-pad the input,
run a "valid" convolution, add a bias,

    y = conv_valid(pad(x), kernel, strides, dilation) + bias,

with `kernel` of shape (*taps, cin, cout) (full), (*taps, cin, multiplier)
(depthwise) or None (the channels pass unchanged), `bias` a vector, a map of
the output's shape (a bias that differs at the borders) or None. A Dense
layer is the case without spatial dimensions. Everything is channels-last
and float64 here.

`compose.py` composes them, `emit.py` turns one back into layers.

Example:

```python
(a,) = affine_of(conv1x1_layer, (None, 8, 8, 4), (None, 8, 8, 6))
a.kernel.shape, a.pads                # (1, 1, 4, 6), ((0, 0), (0, 0))
```
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import keras
import numpy as np

from keras_eraserelu.folding.spatial_bias import SpatialBias

_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_PADDINGS = (
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
)
WEIGHTED = (keras.layers.Dense, *_CONVS, *_DEPTHWISE, *_SEPARABLE)
LINEAR_LAYERS = (*WEIGHTED, *_PADDINGS, SpatialBias)


class NotFoldable(ValueError):
    """Why a layer or a pair of layers cannot become one affine map."""


@dataclass(frozen=True, eq=False)
class Affine:
    """One affine map `conv_valid(pad(x)) + bias` (see the module docstring).

    Attributes:
        kernel: np.ndarray or None. (*taps, cin, cout), or (*taps, cin,
            multiplier) when `depthwise`; None keeps the channels.
        depthwise: bool.
        bias: np.ndarray or None. (cout,), or (*out_spatial, cout) (a map).
        strides, dilation: tuple of int, one per spatial dimension.
        pads: tuple of (before, after) per spatial dimension, or None when
            unknown (padding="same" with strides on an input of unknown size).
        in_spatial, out_spatial: tuple of int or None per spatial dimension.
        cin, cout: int. Channels in and out.
    """

    kernel: np.ndarray | None
    depthwise: bool
    bias: np.ndarray | None
    strides: tuple
    dilation: tuple
    pads: tuple | None
    in_spatial: tuple
    out_spatial: tuple
    cin: int
    cout: int

    @property
    def rank(self):
        return len(self.strides)

    @property
    def taps(self):
        if self.kernel is None:
            return (1,) * self.rank
        return tuple(self.kernel.shape[: self.rank])

    @property
    def pointwise(self):
        """Whether each output position sees its own input position only."""
        return all(k == 1 for k in self.taps) and all(s == 1 for s in self.strides)

    @property
    def padded(self):
        return self.pads is None or any(any(p) for p in self.pads)

    @property
    def bias_is_map(self):
        return self.bias is not None and self.bias.ndim > 1

    @functools.cached_property
    def groups(self):
        """The convolution's groups, read from the kernel's zero blocks."""
        if self.kernel is None or self.depthwise:
            return self.cin
        return groups_of(self.kernel)

    def macs(self):
        """Multiply-adds per output position (bias maps: one add)."""
        if self.kernel is None:
            return self.cout if self.bias_is_map else 0
        if self.depthwise:
            return math.prod(self.taps) * self.cout
        return math.prod(self.taps) * self.cin // self.groups * self.cout


def groups_of(kernel):
    """The largest number of groups whose blocks hold every nonzero weight."""
    cin, cout = kernel.shape[-2:]
    used = np.any(kernel != 0, axis=tuple(range(kernel.ndim - 2)))
    count = math.gcd(cin, cout)
    for groups in sorted(d for d in range(1, count + 1) if count % d == 0)[::-1]:
        rows = np.arange(cin) // (cin // groups)
        columns = np.arange(cout) // (cout // groups)
        if groups == 1 or not used[rows[:, None] != columns[None, :]].any():
            return groups
    return 1


def same_pads(size, taps, stride, dilation):
    """TensorFlow's padding="same" (before, after) for one dimension, or None
    when it depends on an unknown size."""
    extent = (taps - 1) * dilation + 1
    if size is None:
        return (
            None if stride > 1 else ((extent - 1) // 2, extent - 1 - (extent - 1) // 2)
        )
    total = max((math.ceil(size / stride) - 1) * stride + extent - size, 0)
    return (total // 2, total - total // 2)


def spatial_of(shape, data_format, rank):
    """The spatial part of a tensor shape (channels-last or channels-first)."""
    if rank == 0:
        return ()
    return tuple(shape[2:] if data_format == "channels_first" else shape[1:-1])


def affine_of(layer, in_shape, out_shape, weights=None):
    """The list of `Affine` maps one supported layer computes (a separable
    convolution is two), from its attributes and `weights` (default: its
    own). Raises `NotFoldable` for other layers, LoRA and quantized ones."""
    if getattr(layer, "lora_enabled", False) or getattr(
        layer, "quantization_mode", None
    ):
        raise NotFoldable(f"'{layer.name}' has LoRA or quantized weights")
    if type(layer) not in LINEAR_LAYERS:
        raise NotFoldable(
            f"'{layer.name}' ({type(layer).__name__}) is not a linear layer"
        )
    weights = [np.asarray(w, np.float64) for w in (weights or layer.get_weights())]
    if isinstance(layer, keras.layers.Dense):
        bias = weights[1] if layer.use_bias else None
        cin, cout = weights[0].shape
        return [Affine(weights[0], False, bias, (), (), (), (), (), cin, cout)]
    rank = len(in_shape) - 2
    fmt = getattr(layer, "data_format", "channels_last")
    n_in, n_out = spatial_of(in_shape, fmt, rank), spatial_of(out_shape, fmt, rank)
    channels = in_shape[1] if fmt == "channels_first" else in_shape[-1]
    if isinstance(layer, _PADDINGS):
        pads = layer.padding if rank > 1 else (layer.padding,)
        pads = tuple(tuple(p) for p in pads)
        one = (1,) * rank
        return [
            Affine(None, False, None, one, one, pads, n_in, n_out, channels, channels)
        ]
    if isinstance(layer, SpatialBias):
        bias = weights[0]
        if fmt == "channels_first":
            bias = np.moveaxis(bias, 0, -1)
        one, zero = (1,) * rank, ((0, 0),) * rank
        return [
            Affine(None, False, bias, one, one, zero, n_in, n_out, channels, channels)
        ]
    pads = _pads(layer, n_in)
    strides, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
    if isinstance(layer, _SEPARABLE):
        depthwise, pointwise = weights[0], weights[1]
        middle = depthwise.shape[-2] * depthwise.shape[-1]
        bias = weights[2] if layer.use_bias else None
        one = (1,) * rank
        return [
            Affine(
                depthwise,
                True,
                None,
                strides,
                dilation,
                pads,
                n_in,
                n_out,
                channels,
                middle,
            ),
            Affine(
                pointwise,
                False,
                bias,
                one,
                one,
                ((0, 0),) * rank,
                n_out,
                n_out,
                middle,
                pointwise.shape[-1],
            ),
        ]
    kernel = weights[0]
    bias = weights[1] if layer.use_bias else None
    if isinstance(layer, _DEPTHWISE):
        cout = kernel.shape[-2] * kernel.shape[-1]
        return [
            Affine(
                kernel, True, bias, strides, dilation, pads, n_in, n_out, channels, cout
            )
        ]
    kernel = _ungroup(kernel, layer.groups)
    return [
        Affine(
            kernel,
            False,
            bias,
            strides,
            dilation,
            pads,
            n_in,
            n_out,
            channels,
            kernel.shape[-1],
        )
    ]


def _pads(layer, sizes):
    if layer.padding == "valid":
        return ((0, 0),) * len(sizes)
    if layer.padding == "causal":
        return (((layer.kernel_size[0] - 1) * layer.dilation_rate[0], 0),)
    pads = tuple(
        same_pads(n, k, s, d)
        for n, k, s, d in zip(
            sizes, layer.kernel_size, layer.strides, layer.dilation_rate
        )
    )
    return None if None in pads else pads


def _ungroup(kernel, groups):
    """A grouped kernel (*taps, cin/groups, cout) as its full block-diagonal."""
    if groups == 1:
        return kernel
    per_in, cout = kernel.shape[-2:]
    per_out = cout // groups
    full = np.zeros(kernel.shape[:-2] + (per_in * groups, cout))
    for group in range(groups):
        columns = slice(group * per_out, (group + 1) * per_out)
        full[..., group * per_in : (group + 1) * per_in, columns] = kernel[..., columns]
    return full


def is_linear(activation):
    """Whether a layer's activation is the identity (or absent)."""
    return activation is None or keras.activations.serialize(activation) == "linear"


def call_affines(call):
    """The `Affine` maps of one single-input graph call, in order, and the
    activation it ends with. Raises NotFoldable when it is not linear."""
    shape = call.single_input.shape
    pairs = call.layers
    affines = []
    for position, (layer, weights) in enumerate(pairs):
        if position == len(pairs) - 1:
            out = call.outputs[0].shape
        else:
            out = tuple(layer.compute_output_shape(shape))
        affines += affine_of(layer, shape, out, weights)
        shape = out
    return affines, getattr(pairs[-1][0], "activation", None)


def call_style(call):
    """(dtype policy name, data format) of a call's layers."""
    layers = [layer for layer, _ in call.layers]
    formats = [layer.data_format for layer in layers if hasattr(layer, "data_format")]
    data_format = formats[0] if formats else "channels_last"
    return layers[-1].dtype_policy.name, data_format
