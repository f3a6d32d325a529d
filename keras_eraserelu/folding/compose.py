"""Affine maps composed, and computed in NumPy.

`compose(a, b)` is the one `Affine` that computes `b` after `a`, exactly, or
raises `NotFoldable` saying why none does: the second one zero-pads a result
that has a spatial extent already (padding an intermediate tensor is not a
padding of the input), the merged map would need both strides and dilation
above 1 (Keras convolutions refuse that), or a bias cut off at the borders
needs a static size. Kernels compose tap by tap: tap `j` of `b` lands at
offset `j * b.dilation * a.strides` of the input, so `k1` then `k2` taps
give `(k1 - 1) * d1 + (k2 - 1) * d2 * s1 + 1`, strides multiply, and the new
dilation is the gcd of the steps. A depthwise kernel stays depthwise when
both are; otherwise channels compose by matrix product. A bias passes
through the later kernels; where a zero padding cuts it off at the borders
it becomes a map (`apply` computes it).

`apply(affine, x)` is the NumPy reference computation of an Affine.

Example:

```python
merged = compose(a, b)           # a: 1x1 conv, b: 3x3 conv
apply(merged, x)                 # == apply(b, apply(a, x))
```
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from keras_eraserelu.folding.affine import Affine, NotFoldable


def compose(a, b):
    """The one `Affine` that computes `b` after `a`, or raises NotFoldable."""
    if a.rank != b.rank:
        raise NotFoldable("a Dense layer and a convolution do not compose")
    if a.pads is None or b.pads is None:
        raise NotFoldable(
            "padding='same' with strides > 1 on an input of unknown size has no "
            "fixed padding"
        )
    if b.padded:
        if not a.pointwise:
            raise NotFoldable(
                "it zero-pads the output of a layer with a spatial extent: padding "
                "an intermediate result is not a padding of the input"
            )
        pads = tuple((p[0] + q[0], p[1] + q[1]) for p, q in zip(a.pads, b.pads))
    else:
        pads = a.pads
    kernel, depthwise, dilation = _compose_kernels(a, b)
    taps = (1,) * a.rank if kernel is None else kernel.shape[: a.rank]
    dilation = tuple(d if k > 1 else 1 for d, k in zip(dilation, taps))
    strides = tuple(p * q for p, q in zip(a.strides, b.strides))
    if any(s > 1 for s in strides) and any(d > 1 for d in dilation):
        raise NotFoldable(
            f"the merged layer would need strides={strides} and dilation_rate="
            f"{dilation}, which Keras convolutions refuse together"
        )
    carried = a.bias if a.bias is not None and np.any(a.bias) else None
    if carried is None:
        bias = b.bias
    elif b.padded:  # b's zero padding cuts the carried bias off at the borders
        bias = apply(b, _as_map(carried, a.out_spatial))
    elif carried.ndim > 1:
        bias = apply(b, carried)
    else:
        bias = _vector_through(carried, b)
    merged = Affine(
        kernel,
        depthwise,
        bias,
        strides,
        dilation,
        pads,
        a.in_spatial,
        b.out_spatial,
        a.cin,
        b.cout,
    )
    _check_size(merged)
    return merged


def _as_map(bias, spatial):
    if bias.ndim > 1:
        return bias
    if any(n is None for n in spatial):
        raise NotFoldable(
            "a bias zero-padded at the borders needs a static spatial size, and "
            f"this input's is {spatial}"
        )
    return np.broadcast_to(bias, tuple(spatial) + bias.shape).copy()


def _vector_through(vector, b):
    """A constant vector input through `b` (its bias included)."""
    if b.kernel is None:
        out = vector
    else:
        taps = b.kernel.reshape((-1,) + b.kernel.shape[-2:]).sum(axis=0)
        out = (vector[:, None] * taps).reshape(-1) if b.depthwise else vector @ taps
    return out if b.bias is None else out + b.bias


def _compose_kernels(a, b):
    """The kernel, depthwise flag and dilation of `b` after `a` (no bias)."""
    if b.kernel is None:
        return a.kernel, a.depthwise, a.dilation
    step = tuple(d * s for d, s in zip(b.dilation, a.strides))  # b's taps, in x
    if a.kernel is None:
        return b.kernel, b.depthwise, step
    dilation = tuple(
        math.gcd(*(([da] if ka > 1 else []) + ([sb] if kb > 1 else []))) or 1
        for ka, kb, da, sb in zip(a.taps, b.taps, a.dilation, step)
    )
    size = tuple(
        ((ka - 1) * da + (kb - 1) * sb) // d + 1
        for ka, kb, da, sb, d in zip(a.taps, b.taps, a.dilation, step, dilation)
    )
    depthwise = a.depthwise and b.depthwise
    out_channels = (a.kernel.shape[-1] * b.kernel.shape[-1]) if depthwise else b.cout
    kernel = np.zeros(size + (a.cin, out_channels))
    for tap in itertools.product(*(range(k) for k in b.taps)):
        block = _channel_product(a, b, b.kernel[tap])
        window = tuple(
            slice(t * sb // d, t * sb // d + (ka - 1) * (da // d) + 1, da // d)
            if ka > 1
            else slice(t * sb // d, t * sb // d + 1)
            for t, sb, d, ka, da in zip(tap, step, dilation, a.taps, a.dilation)
        )
        kernel[window] += block
    return kernel, depthwise, dilation


def _channel_product(a, b, tap):
    """`a`'s kernel followed by one tap of `b`'s, over the channels."""
    if not a.depthwise and not b.depthwise:
        return a.kernel @ tap
    if a.depthwise and not b.depthwise:  # tap: (cin * mult_a, cout)
        per = tap.reshape(a.cin, a.kernel.shape[-1], -1)
        return np.einsum("...cr,crd->...cd", a.kernel, per)
    if not a.depthwise:  # b depthwise, tap: (m, mult_b)
        product = a.kernel[..., None] * tap
        return product.reshape(product.shape[:-2] + (-1,))
    per = tap.reshape(a.cin, a.kernel.shape[-1], -1)
    product = a.kernel[..., None] * per
    return product.reshape(product.shape[:-2] + (-1,))


def _check_size(merged):
    for n, k, s, d, (before, after), m in zip(
        merged.in_spatial,
        merged.taps,
        merged.strides,
        merged.dilation,
        merged.pads,
        merged.out_spatial,
    ):
        if None not in (n, m) and (n + before + after - (k - 1) * d - 1) // s + 1 != m:
            raise NotFoldable("the merged layer's output size would differ")


def apply(affine, x):
    """Computes `affine` on `x` (*batch, *spatial, cin) in NumPy (float64)."""
    x = np.asarray(x, np.float64)
    rank = affine.rank
    if affine.padded:
        x = np.pad(x, [(0, 0)] * (x.ndim - rank - 1) + list(affine.pads) + [(0, 0)])
    if affine.kernel is not None:
        x = _conv_valid(x, affine)
    return x if affine.bias is None else x + affine.bias


def _conv_valid(x, affine):
    rank = affine.rank
    spatial = x.shape[x.ndim - rank - 1 : -1]
    out = tuple(
        (n - (k - 1) * d - 1) // s + 1
        for n, k, s, d in zip(spatial, affine.taps, affine.strides, affine.dilation)
    )
    lead = x.shape[: x.ndim - rank - 1]
    channels = affine.cout
    y = np.zeros(lead + out + (channels,))
    for tap in itertools.product(*(range(k) for k in affine.taps)):
        window = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, o, s in zip(tap, affine.dilation, out, affine.strides)
        )
        patch = x[(Ellipsis, *window, slice(None))]
        weights = affine.kernel[tap]
        if affine.depthwise:
            y += (patch[..., None] * weights).reshape(patch.shape[:-1] + (channels,))
        else:
            y += patch @ weights
    return y
