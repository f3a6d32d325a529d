"""Keras layers that compute one `Affine`: the way back from NumPy.

`layers_for(affine, ...)` returns the layers, in call order, each with the
weights it gets once built (`LayerSpec`):

- no spatial dimensions: one `Dense`;
- a convolution: `DepthwiseConv1D/2D` when every output channel reads one
  input channel, else `Conv1D/2D/3D` with the most groups the kernel's zero
  blocks allow (1 for a full kernel);
- its padding becomes `padding="valid"` or `"same"` when one of them is
  exactly that padding, else a `ZeroPadding1D/2D/3D` layer in front;
- a bias that varies at the borders (a map) becomes a `SpatialBias` after a
  convolution without bias, and the activation moves onto it.

Example:

```python
specs = layers_for(merged, name="block_2_project", activation="linear",
                   policy="float32", data_format="channels_last", taken=set())
[type(spec.layer).__name__ for spec in specs]   # ['Conv2D', 'SpatialBias']
```
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from keras_eraserelu.folding.affine import NotFoldable, same_pads
from keras_eraserelu.folding.spatial_bias import SpatialBias

_CONV = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_DEPTHWISE = {1: keras.layers.DepthwiseConv1D, 2: keras.layers.DepthwiseConv2D}
_PAD = {
    1: keras.layers.ZeroPadding1D,
    2: keras.layers.ZeroPadding2D,
    3: keras.layers.ZeroPadding3D,
}


@dataclass(eq=False)
class LayerSpec:
    """A new, unbuilt layer and the weights it gets once built.

    Attributes:
        layer: keras.layers.Layer, not built yet.
        weights: list of np.ndarray, in the order of `layer.weights`.
    """

    layer: object
    weights: list


def unique_name(name, taken):
    """`name`, or `name_1`, `name_2`, ... when taken; the result is taken."""
    candidate, count = name, 0
    while candidate in taken:
        count += 1
        candidate = f"{name}_{count}"
    taken.add(candidate)
    return candidate


def layers_for(affine, *, name, activation, policy, data_format, taken):
    """The layers (`LayerSpec` list) that compute `affine`, named after `name`.

    Args:
        affine: Affine. What to compute.
        name: str. The main layer's name (kept as is: it is the name of a
            layer the fold removed); helpers get `name_pad`, `name_bias`.
        activation: activation name or callable, applied last.
        policy: str. The dtype policy of every new layer.
        data_format: str. `"channels_last"` or `"channels_first"`.
        taken: set of str. Layer names in use; the new ones are added.

    Raises:
        NotFoldable: when channels-first 1D data would need explicit padding
            (`ZeroPadding1D` pads the steps axis only in channels-last).
    """
    if affine.rank == 0:
        use_bias = affine.bias is not None and bool(np.any(affine.bias))
        layer = keras.layers.Dense(
            affine.cout,
            activation=activation,
            use_bias=use_bias,
            dtype=policy,
            name=name,
        )
        return [LayerSpec(layer, [affine.kernel] + [affine.bias] * use_bias)]
    specs = []
    padding = padding_word(affine, causal=not _depthwise(affine))
    if padding is None:
        if affine.rank == 1 and data_format == "channels_first":
            raise NotFoldable("channels-first 1D data cannot be zero-padded by a layer")
        options = {} if affine.rank == 1 else {"data_format": data_format}
        pads = affine.pads[0] if affine.rank == 1 else affine.pads
        pad = _PAD[affine.rank](
            pads, dtype=policy, name=unique_name(f"{name}_pad", taken), **options
        )
        specs.append(LayerSpec(pad, []))
        padding = "valid"
    bias_map = affine.bias_is_map
    if affine.kernel is not None:
        use_bias = (
            not bias_map and affine.bias is not None and bool(np.any(affine.bias))
        )
        specs.append(
            _convolution(
                affine,
                padding,
                None if bias_map else activation,
                use_bias,
                policy,
                data_format,
                name,
            )
        )
    if bias_map:
        bias = affine.bias
        if data_format == "channels_first":
            bias = np.moveaxis(bias, -1, 0)
        layer = SpatialBias(
            activation,
            data_format,
            dtype=policy,
            name=unique_name(f"{name}_bias", taken),
        )
        specs.append(LayerSpec(layer, [bias]))
    return specs


def padding_word(affine, causal=False):
    """`"valid"`, `"same"` (or, with `causal`, `"causal"`) when one of them is
    exactly the padding of `affine`, else None (a padding layer is needed)."""
    if not affine.padded:
        return "valid"
    if causal and affine.rank == 1 and affine.strides == (1,):
        if affine.pads == (((affine.taps[0] - 1) * affine.dilation[0], 0),):
            return "causal"
    same = tuple(
        same_pads(n, k, s, d)
        for n, k, s, d in zip(
            affine.in_spatial, affine.taps, affine.strides, affine.dilation
        )
    )
    return "same" if same == tuple(affine.pads) else None


def _convolution(affine, padding, activation, use_bias, policy, data_format, name):
    rank, cin, cout = affine.rank, affine.cin, affine.cout
    kernel, groups = affine.kernel, affine.groups
    depthwise = _depthwise(affine)
    if depthwise and not affine.depthwise:  # a full kernel with one input a column
        multiplier = cout // cin
        columns = np.arange(cin)[:, None] * multiplier + np.arange(multiplier)
        kernel = np.take_along_axis(kernel, columns[(None,) * rank], axis=-1)
    options = {
        "kernel_size": affine.taps,
        "strides": affine.strides,
        "padding": padding,
        "data_format": data_format,
        "dilation_rate": affine.dilation,
        "activation": activation,
        "use_bias": use_bias,
        "dtype": policy,
        "name": name,
    }
    if depthwise and rank in _DEPTHWISE:
        layer = _DEPTHWISE[rank](depth_multiplier=kernel.shape[-1], **options)
    elif depthwise:  # DepthwiseConv3D does not exist: groups=cin
        kernel = kernel.reshape(kernel.shape[:-2] + (1, -1))
        layer = _CONV[rank](filters=cout, groups=cin, **options)
    else:
        kernel = _grouped(kernel, groups)
        layer = _CONV[rank](filters=cout, groups=groups, **options)
    return LayerSpec(layer, [kernel] + [affine.bias] * use_bias)


def _depthwise(affine):
    """Whether each output channel reads one input channel."""
    if affine.kernel is None or affine.depthwise:
        return affine.depthwise
    return affine.groups == affine.cin > 1 and affine.cout % affine.cin == 0


def _grouped(kernel, groups):
    """A block-diagonal kernel as Keras' grouped kernel (*taps, cin/g, cout)."""
    if groups == 1:
        return kernel
    cin, cout = kernel.shape[-2:]
    per_in, per_out = cin // groups, cout // groups
    blocks = [
        kernel[..., g * per_in : (g + 1) * per_in, g * per_out : (g + 1) * per_out]
        for g in range(groups)
    ]
    return np.concatenate(blocks, axis=-1)
