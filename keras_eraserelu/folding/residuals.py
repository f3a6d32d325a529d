"""Linear branches added to their shortcut, folded into one kernel (RepVGG).

An `Add` whose inputs are all one tensor `x` or single linear layers of it
becomes one layer of `x`: `Add(conv3x3(x), conv1x1(x), x)` is one 3x3
convolution whose kernel is the sum of the branches' kernels, centred, with
the identity added at the centre tap (a `BatchNormalization` of `x` on a
branch of its own counts as a diagonal 1x1 kernel). This is how RepVGG
turns its training-time blocks into plain 3x3 convolutions, and what a
MobileNetV2 inverted residual block becomes once its chain is one
convolution.

The branches must keep the tensor's size: strides 1, padding "same" with an
odd kernel (or a 1x1 kernel), one dilation; each branch layer must be
called once, have a linear activation and feed the `Add` only. The fold is
skipped, with the reason, where the merged kernel would cost more FLOPs than
the branches (a depthwise branch plus a full 1x1 branch makes a full kxk
kernel).

Example:

```python
folds, skips = fold_residuals(graph, taken=set())
```
"""

from __future__ import annotations

import keras
import numpy as np

from keras_eraserelu.folding.affine import (
    Affine,
    NotFoldable,
    call_affines,
    call_style,
    is_linear,
)
from keras_eraserelu.folding.batch_norm import batch_norm_scale, is_batch_norm
from keras_eraserelu.folding.chains import describe
from keras_eraserelu.folding.compose import compose
from keras_eraserelu.folding.emit import layers_for
from keras_eraserelu.folding.report import Fold, Skip


def fold_residuals(graph, taken):
    """Folds every `Add` of linear branches of one tensor (module docstring).

    Returns:
        (list of Fold, list of Skip).
    """
    folds, skips = [], []
    adds = [c for c in graph.calls if c.node and type(c.operation) is keras.layers.Add]
    for add in adds:
        try:
            source, branches = _branches(graph, add)
            affine, style = _summed(add, source, branches)
        except NotFoldable as why:
            skips.append(Skip("residual", (add.name,), str(why)))
            continue
        calls = [call for call, _ in branches if call is not None]
        main = max(
            (pair for pair in branches if pair[0] is not None),
            key=lambda pair: np.prod(pair[1].taps),
        )[0]
        specs = layers_for(
            affine,
            name=main.name,
            activation=None,
            policy=style[0],
            data_format=style[1],
            taken=taken,
        )
        graph.replace_calls(calls + [add], specs, source, main.name)
        removed = [c.name for c in calls if c is not main] + [add.name]
        identities = sum(1 for call, _ in branches if call is None)
        detail = describe(specs, affine) + (
            f", identity x{identities} at the centre tap"
            if identities > 1
            else ", identity at the centre tap"
            if identities
            else ""
        )
        folds.append(Fold("residual", main.name, tuple(removed), detail))
    return folds, skips


def _branches(graph, add):
    """The common source tensor and [(branch call or None, Affine or None)]."""
    if not graph.called_once(add):
        raise NotFoldable("it is shared: called more than once")
    values = [add.bindings[id(t)] for t in add.node.input_tensors]
    if len({id(value) for value in values}) < len(values):
        raise NotFoldable("it adds one tensor to itself")
    options = [_source_options(graph, add, value) for value in values]
    common = [
        source
        for source, _, _ in options[0]
        if all(any(other is source for other, _, _ in opts) for opts in options)
    ]
    if not common:
        names = ", ".join(_name(value) for value in values)
        raise NotFoldable(
            f"its inputs ({names}) are not one tensor and single linear layers of it"
        )
    source = common[0]
    branches = [next((c, a) for s, c, a in opts if s is source) for opts in options]
    if all(call is None for call, _ in branches):
        raise NotFoldable("none of its inputs is a linear layer of the others' tensor")
    return source, branches


def _source_options(graph, add, value):
    """[(source Value, branch call or None, Affine or None)] one input could be:
    the tensor itself, and (if it is one) the linear layer's input."""
    options = [(value, None, None)]
    producer = value.producer
    if producer is None or producer.single_input is None:
        return options
    if graph.sole_consumer(value) is not add or not graph.called_once(producer):
        return options
    try:
        affine = _branch_affine(producer)
    except NotFoldable:
        return options
    return [(producer.single_input, producer, affine), *options]


def _branch_affine(call):
    if is_batch_norm(call):
        scale, shift = batch_norm_scale(call.operation)
        shape = call.single_input.shape
        rank = len(shape) - 2
        if rank <= 0 or call.operation.axis % len(shape) != len(shape) - 1:
            raise NotFoldable("a batch norm branch on channels-last images only")
        one = (1,) * rank
        kernel = scale.reshape(one + (-1, 1))
        spatial = tuple(shape[1:-1])
        return Affine(
            kernel,
            True,
            shift,
            one,
            one,
            ((0, 0),) * rank,
            spatial,
            spatial,
            len(scale),
            len(scale),
        )
    affines, activation = call_affines(call)
    if not is_linear(activation):
        raise NotFoldable(f"'{call.name}' has an activation")
    result = affines[0]
    for affine in affines[1:]:
        result = compose(result, affine)
    return result


def _name(value):
    return f"'{value.producer.name}'" if value.producer is not None else "a model input"


def _summed(add, source, branches):
    """The Affine of the whole Add, and the (policy, data format) to emit."""
    style = _style(add, branches)
    shape = source.shape
    if style[1] == "channels_first" and len(shape) > 2:
        raise NotFoldable("channels-first residuals are not folded")
    rank = len(shape) - 2 if len(shape) > 2 else 0
    channels = shape[-1]
    spatial = tuple(shape[1:-1]) if rank else ()
    affines = [
        a if a is not None else _identity(rank, channels, spatial) for _, a in branches
    ]
    for (call, _), affine in zip(branches, affines):
        name = call.name if call is not None else "the shortcut"
        if (
            affine.strides != (1,) * rank
            or affine.cout != channels
            or affine.cin != channels
        ):
            raise NotFoldable(f"'{name}' changes the tensor's size or channels")
        if affine.pads is None or any(
            k % 2 == 0 or pads != ((k - 1) * d // 2,) * 2
            for k, d, pads in zip(affine.taps, affine.dilation, affine.pads)
        ):
            raise NotFoldable(f"'{name}' is not a centred 'same' convolution")
    taps = tuple(max(a.taps[i] for a in affines) for i in range(rank))
    dilation = []
    for i in range(rank):
        rates = {a.dilation[i] for a in affines if a.taps[i] > 1}
        if len(rates) > 1:
            raise NotFoldable("its branches have different dilations")
        dilation.append(rates.pop() if rates else 1)
    dilation = tuple(dilation)
    depthwise = all(a.depthwise and a.kernel.shape[-1] == 1 for a in affines)
    kernel = np.zeros(taps + ((channels, 1) if depthwise else (channels, channels)))
    bias = np.zeros(channels)
    for affine in affines:
        offset = tuple(
            slice((t - k) // 2, (t - k) // 2 + k) for t, k in zip(taps, affine.taps)
        )
        kernel[offset] += affine.kernel if depthwise else _full(affine)
        if affine.bias is not None:
            bias = bias + affine.bias
    pads = tuple(((t - 1) * d // 2,) * 2 for t, d in zip(taps, dilation))
    merged = Affine(
        kernel,
        depthwise,
        bias,
        (1,) * rank,
        dilation,
        pads,
        spatial,
        spatial,
        channels,
        channels,
    )
    apart = sum(a.macs() for a in affines) + channels * (len(affines) - 1)
    if merged.macs() > apart:
        raise NotFoldable(
            f"one kernel would cost {merged.macs()} multiply-adds per position "
            f"against {apart} for the branches"
        )
    return merged, style


def _style(add, branches):
    styles = {call_style(call) for call, _ in branches if call is not None}
    if len(styles) != 1:
        raise NotFoldable(
            f"its branches differ in dtype policy or data format {styles}"
        )
    (style,) = styles
    if add.operation.dtype_policy.name != style[0]:
        raise NotFoldable(f"'{add.name}' has another dtype policy than its branches")
    return style


def _identity(rank, channels, spatial):
    if rank == 0:
        return Affine(
            np.eye(channels), False, None, (), (), (), (), (), channels, channels
        )
    one = (1,) * rank
    return Affine(
        np.ones(one + (channels, 1)),
        True,
        None,
        one,
        one,
        ((0, 0),) * rank,
        spatial,
        spatial,
        channels,
        channels,
    )


def _full(affine):
    """A kernel as (*taps, cin, cout), depthwise ones spread on the diagonal."""
    if not affine.depthwise:
        return affine.kernel
    cin, multiplier = affine.kernel.shape[-2:]
    full = np.zeros(affine.kernel.shape[:-2] + (cin, cin * multiplier))
    for channel in range(cin):
        full[..., channel, channel * multiplier : (channel + 1) * multiplier] = (
            affine.kernel[..., channel, :]
        )
    return full
