"""Floating-point operations of a model per example, by layer kind.

Counted per example (the batch left out), a multiply-add being 2:

- `Dense`, `Conv1D/2D/3D` (grouped), `DepthwiseConv1D/2D`,
  `SeparableConv1D/2D`: 2 per multiply-add of the kernel, plus one per
  output element for a bias and one for a fused activation;
- `BatchNormalization` (inference): 2 per element (a scale, a shift);
  `SpatialBias`: 1 per element (and its activation);
- `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`: one per
  output element for each input after the first;
- activation layers: 1 per element; pooling: one per window element and
  output; global pooling: one per input element;
- everything else (padding, reshapes, concatenation, raw ops, Identity): 0.

A size that is unknown (None) makes the count None.

Example:

```python
graph_flops(FoldGraph.from_model(model))   # e.g. 7.75e9 for ResNet50 at 224
```
"""

from __future__ import annotations

import math

import keras

from keras_eraserelu.core import POOLING_LAYERS
from keras_eraserelu.folding.affine import NotFoldable, affine_of, is_linear
from keras_eraserelu.folding.batch_norm import is_batch_norm
from keras_eraserelu.folding.spatial_bias import SpatialBias

_MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
)
_ACTIVATIONS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
)
_GLOBAL_POOLS = (
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
)


def graph_flops(graph):
    """FLOPs per example of every call of a `FoldGraph`, or None if a size
    is unknown."""
    total = 0
    for call in graph.calls:
        flops = call_flops(call)
        if flops is None:
            return None
        total += flops
    return total


def call_flops(call):
    """FLOPs per example of one call (see the module docstring)."""
    if is_batch_norm(call):
        return _elements(call.outputs[0].shape, 2)
    total = 0
    shape = call.single_input.shape if call.single_input is not None else None
    for position, (layer, weights) in enumerate(call.layers):
        if position == len(call.layers) - 1:
            out = call.outputs[0].shape
        else:
            out = tuple(layer.compute_output_shape(shape))
        flops = _layer_flops(call, layer, weights, shape, out)
        if flops is None:
            return None
        total, shape = total + flops, out
    return total


def _layer_flops(call, layer, weights, in_shape, out_shape):
    if isinstance(layer, _MERGES):
        return _elements(out_shape, len(call.inputs) - 1)
    if isinstance(layer, _ACTIVATIONS):
        return _elements(out_shape, 1)
    if isinstance(layer, POOLING_LAYERS):
        return _elements(out_shape, math.prod(layer.pool_size))
    if isinstance(layer, _GLOBAL_POOLS):
        return _elements(in_shape, 1)
    try:
        affines = affine_of(layer, in_shape, out_shape, weights)
    except NotFoldable:
        return 0
    per_position = 0
    for affine in affines:
        per_position += 2 * affine.macs() if affine.kernel is not None else 0
    extra = int(getattr(layer, "use_bias", False)) + int(
        not is_linear(getattr(layer, "activation", None))
    )
    if isinstance(layer, SpatialBias):
        extra += 1
    positions = _elements(
        out_shape[:-1] if _last_channels(layer) else out_shape[:1] + out_shape[2:], 1
    )
    outputs = _elements(out_shape, extra)
    if positions is None or outputs is None:
        return None
    return positions * per_position + outputs


def _last_channels(layer):
    return getattr(layer, "data_format", "channels_last") != "channels_first"


def _elements(shape, each):
    if shape is None:
        return None
    sizes = shape[1:]
    if any(size is None for size in sizes):
        return None
    return math.prod(sizes) * each
