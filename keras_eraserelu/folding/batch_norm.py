"""Batch normalization folded into the linear layer before it or after it.

In inference mode a `BatchNormalization` (any subclass, such as this
package's `FusedBatchNormalization`) computes `x * s + t` per channel, with
`s = gamma / sqrt(moving_variance + epsilon)` and `t = beta - moving_mean *
s` (gamma 1 and beta 0 where `scale` or `center` is False). That is absorbed
exactly:

- into the layer before it (`Dense`, `Conv1D/2D/3D`, grouped or not,
  `DepthwiseConv1D/2D`, `SeparableConv1D/2D`, or a layer an earlier fold
  made): its output channels are scaled by `s` and `t` joins its bias;
- else into the one after it: its input channels are scaled by `s` and the
  shift `t` goes through the kernel into the bias. Only where that layer
  does not zero-pad its input (`padding="valid"`, or a 1x1 kernel): a padded
  border would see 0 where the batch norm gives `t` (unless `t` is 0).

Skipped, with the reason in the report: a batch norm whose neighbour has a
nonlinear activation of its own, is shared (called more than once), feeds
or reads a tensor used elsewhere (or a model output), is no linear layer,
or normalizes another axis than the channels.

Example:

```python
folds, skips = fold_batch_norms(graph)
[(f.into, f.layers) for f in folds][:1]   # [('conv1_conv', ('conv1_bn',))]
```
"""

from __future__ import annotations

import keras
import numpy as np

from keras_eraserelu.folding.affine import (
    WEIGHTED,
    NotFoldable,
    call_affines,
    is_linear,
)
from keras_eraserelu.folding.emit import LayerSpec
from keras_eraserelu.folding.report import Fold, Skip
from keras_eraserelu.folding.spatial_bias import SpatialBias


def batch_norm_scale(layer):
    """The per-channel (scale, shift) of a BatchNormalization in inference."""
    variance = np.asarray(layer.moving_variance, np.float64)
    scale = 1.0 / np.sqrt(variance + layer.epsilon)
    if layer.scale:
        scale = scale * np.asarray(layer.gamma, np.float64)
    shift = -np.asarray(layer.moving_mean, np.float64) * scale
    if layer.center:
        shift = shift + np.asarray(layer.beta, np.float64)
    return scale, shift


def is_batch_norm(call):
    return call.node is not None and isinstance(
        call.operation, keras.layers.BatchNormalization
    )


def fold_batch_norms(graph):
    """Folds every batch norm it can (see the module docstring).

    Returns:
        (list of Fold, list of Skip).
    """
    folds, skips = [], []
    for call in [c for c in graph.calls if is_batch_norm(c)]:
        try:
            source = _checked(graph, call)
            scale, shift = batch_norm_scale(call.operation)
        except NotFoldable as why:
            skips.append(Skip("batch_norm", (call.name,), str(why)))
            continue
        try:
            into = _into_previous(graph, call, source, scale, shift)
        except NotFoldable as before:
            try:
                into = _into_next(graph, call, scale, shift)
            except NotFoldable as after:
                reason = f"not into the layer before ({before}) nor after ({after})"
                skips.append(Skip("batch_norm", (call.name,), reason))
                continue
        folds.append(Fold("batch_norm", into, (call.name,)))
    return folds, skips


def _checked(graph, call):
    source = call.single_input
    if source is None:
        raise NotFoldable("it takes more than one tensor")
    if not graph.called_once(call):
        raise NotFoldable("it is shared: called more than once")
    axis = call.operation.axis % len(source.shape)
    if axis not in (1, len(source.shape) - 1):
        raise NotFoldable(f"it normalizes axis {axis}, not the channels")
    return source


def _check_axis(bn, shape, layer, name):
    data_format = getattr(layer, "data_format", "channels_last")
    channels = (
        1 if data_format == "channels_first" and len(shape) > 2 else len(shape) - 1
    )
    if bn.operation.axis % len(shape) != channels:
        raise NotFoldable(f"it normalizes another axis than the channels of '{name}'")


def _linear_neighbour(graph, call):
    """The Affine maps and activation of a linear call next to a batch norm."""
    if not graph.called_once(call):
        raise NotFoldable(f"'{call.name}' is shared: called more than once")
    if call.single_input is None:
        raise NotFoldable(f"'{call.name}' takes more than one tensor")
    affines, activation = call_affines(call)  # NotFoldable if not linear
    if not any(type(layer) in WEIGHTED for layer, _ in call.layers):
        raise NotFoldable(f"'{call.name}' has no weights")
    return affines, activation


def _into_previous(graph, bn, source, scale, shift):
    producer = source.producer
    if producer is None:
        raise NotFoldable("it reads a model input")
    if graph.sole_consumer(source) is not bn:
        raise NotFoldable(f"the output of '{producer.name}' is used elsewhere too")
    _, activation = _linear_neighbour(graph, producer)
    if not is_linear(activation):
        raise NotFoldable(
            f"'{producer.name}' has activation "
            f"{keras.activations.serialize(activation)!r}"
        )
    weighted = [layer for layer, _ in producer.layers if type(layer) in WEIGHTED]
    _check_axis(bn, source.shape, weighted[-1], producer.name)
    last = producer.layers[-1][0]
    specs = []
    for layer, weights in producer.layers:
        weights = weights if weights is not None else layer.get_weights()
        if layer is last and isinstance(layer, SpatialBias):
            specs.append(
                LayerSpec(layer, [_shifted_map(layer, weights[0], scale, shift)])
            )
        elif layer is last:
            bias = weights[-1] * scale + shift if layer.use_bias else shift
            kernels = _scale_outputs(layer, weights, scale)
            specs.append(_rebuilt(layer, kernels + [bias], use_bias=True))
        elif type(layer) in WEIGHTED:  # before a SpatialBias: no bias of its own
            specs.append(_rebuilt(layer, _scale_outputs(layer, weights, scale)))
        else:
            specs.append(LayerSpec(layer, weights))
    producer.specs = specs
    graph.bypass(bn, source)
    return producer.name


def _into_next(graph, bn, scale, shift):
    (output,) = bn.outputs
    consumer = graph.sole_consumer(output)
    if consumer is None:
        raise NotFoldable("its output feeds several layers or is a model output")
    affines, _ = _linear_neighbour(graph, consumer)
    (first, weights), *rest = consumer.layers
    if type(first) not in WEIGHTED:
        raise NotFoldable(f"'{consumer.name}' starts with a {type(first).__name__}")
    if affines[0].padded and np.any(shift):
        raise NotFoldable(
            f"'{consumer.name}' zero-pads its input (padding={first.padding!r}), "
            "where the batch norm's shift would be"
        )
    _check_axis(bn, output.shape, first, consumer.name)
    weights = weights if weights is not None else first.get_weights()
    kernels, offset = _scale_inputs(first, weights, scale, shift)
    bias = weights[-1] + offset if first.use_bias else offset
    consumer.specs = [_rebuilt(first, kernels + [bias], use_bias=True)] + [
        LayerSpec(layer, w if w is not None else layer.get_weights())
        for layer, w in rest
    ]
    graph.bypass(bn, bn.single_input)
    return consumer.name


def _rebuilt(layer, weights, use_bias=False):
    """A new layer from `layer`'s config (with a bias if asked) and weights."""
    config = layer.get_config()
    if use_bias:
        config["use_bias"] = True
    return LayerSpec(type(layer).from_config(config), weights)


def _shifted_map(layer, bias, scale, shift):
    view = (
        (-1,) + (1,) * (bias.ndim - 1)
        if layer.data_format == "channels_first"
        else (-1,)
    )
    return bias * scale.reshape(view) + shift.reshape(view)


_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def _scale_outputs(layer, weights, scale):
    """The kernels of `layer` with each output channel times `scale`."""
    if isinstance(layer, _SEPARABLE):
        return [weights[0], weights[1] * scale]
    kernel = weights[0]
    if isinstance(layer, _DEPTHWISE):
        flat = kernel.reshape(kernel.shape[:-2] + (-1,))
        return [(flat * scale).reshape(kernel.shape)]
    return [kernel * scale]


def _scale_inputs(layer, weights, scale, shift):
    """The kernels of `layer` with each input channel times `scale`, and what
    the constant input `shift` adds to its bias (through every tap)."""
    kernel = weights[0]
    if isinstance(layer, keras.layers.Dense):
        return [kernel * scale[:, None]], shift @ kernel
    taps = tuple(range(kernel.ndim - 2))
    if isinstance(layer, _DEPTHWISE + _SEPARABLE):
        through = (kernel.sum(axis=taps) * shift[:, None]).reshape(-1)
        if isinstance(layer, _SEPARABLE):
            pointwise = weights[1]
            offset = through @ pointwise.reshape(pointwise.shape[-2:])
            return [kernel * scale[:, None], pointwise], offset
        return [kernel * scale[:, None]], through
    per_in, cout = kernel.shape[-2:]
    group = np.arange(cout) // (cout // layer.groups)
    channel = group[None, :] * per_in + np.arange(per_in)[:, None]  # (per_in, cout)
    offset = (kernel.sum(axis=taps) * shift[channel]).sum(axis=0)
    return [kernel * scale[channel]], offset
