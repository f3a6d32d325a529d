"""Inception modules: parallel conv-BN-ReLU branches joined by a Concatenate.

Each helper builds one module and names its end `<name>_out`; every layer
inside is named `<name>_<branch>_<kind>` (`mixed4_branch7x7dbl_3_relu`), so
that the ReLUs that EraseReLU removes (the last one of each branch feeding the
concatenation) are easy to read in `plan_erasure(model)`.

The InceptionV3 modules follow Szegedy et al., "Rethinking the Inception
Architecture for Computer Vision" (2016, arXiv 1512.00567), as
keras.applications builds them; the BN-Inception modules follow Ioffe &
Szegedy, "Batch Normalization" (2015, arXiv 1502.03167), Figure 5.

Example:

```python
x = apply_conv_bn_relu(inputs, 32, 3, name="stem", suffix="1")
x = apply_inception_a(x, (64, 48, 64, 64, 96, 32), name="mixed0")
```
"""

from __future__ import annotations

import keras

from keras_eraserelu.models.batch_norm import FusedBatchNormalization

POOL_CHOICES = ("avg", "max")


def apply_conv_bn_relu(
    x,
    filters,
    kernel_size,
    strides=1,
    padding="same",
    scale=True,
    name=None,
    suffix="",
):
    """Conv2D (no bias) -> BatchNormalization -> ReLU.

    Args:
        x: input tensor.
        filters: int. Output channels.
        kernel_size: int or tuple. Kernel height and width.
        strides: int or tuple. Defaults to 1.
        padding: str. `"same"` or `"valid"`. Defaults to `"same"`.
        scale: bool. Whether BN learns a scale (keras' InceptionV3 does not).
            Defaults to True.
        name: str. Prefix of the layer names.
        suffix: str. Appended to each kind: with `name="stem", suffix="1"` the
            layers are `stem_conv1`, `stem_bn1`, `stem_relu1`; with the
            default "" they are `<name>_conv`, `<name>_bn`, `<name>_relu`.

    Returns:
        The ReLU's output tensor.
    """
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        name=f"{name}_conv{suffix}",
    )(x)
    x = FusedBatchNormalization(axis=-1, scale=scale, name=f"{name}_bn{suffix}")(x)
    return keras.layers.ReLU(name=f"{name}_relu{suffix}")(x)


def _concat(branches, name):
    return keras.layers.Concatenate(axis=-1, name=name)(branches)


def apply_inception_a(x, filters, name, scale=False):
    """InceptionV3's 35x35 module (mixed0-2): 1x1, 5x5, double 3x3, pool.

    Args:
        x: input tensor.
        filters: 6 ints: 1x1, 5x5 reduce, 5x5, double-3x3 reduce, double 3x3,
            pool projection.
        name: str. Module prefix (`"mixed0"`).
        scale: bool. BN scale. Defaults to False, as in keras.applications.
    """
    f1, f5r, f5, fdr, fd, fp = filters
    unit = _unit(name, scale)
    b1 = unit(x, f1, 1, "branch1x1")
    b5 = unit(x, f5r, 1, "branch5x5_1")
    b5 = unit(b5, f5, 5, "branch5x5_2")
    bd = unit(x, fdr, 1, "branch3x3dbl_1")
    bd = unit(bd, fd, 3, "branch3x3dbl_2")
    bd = unit(bd, fd, 3, "branch3x3dbl_3")
    bp = _pool(x, "avg", 1, "same", name)
    bp = unit(bp, fp, 1, "branchpool")
    return _concat([b1, b5, bd, bp], f"{name}_out")


def apply_reduction_a(x, filters, name, scale=False):
    """InceptionV3's 35->17 reduction (mixed3): 3x3/2, double 3x3/2, max pool.

    Args:
        x: input tensor.
        filters: 4 ints: 3x3, double-3x3 reduce, double 3x3 (first),
            double 3x3 (second, strided).
        name: str. Module prefix (`"mixed3"`).
        scale: bool. BN scale. Defaults to False.
    """
    f3, fdr, fd1, fd2 = filters
    unit = _unit(name, scale)
    b3 = unit(x, f3, 3, "branch3x3", strides=2, padding="valid")
    bd = unit(x, fdr, 1, "branch3x3dbl_1")
    bd = unit(bd, fd1, 3, "branch3x3dbl_2")
    bd = unit(bd, fd2, 3, "branch3x3dbl_3", strides=2, padding="valid")
    bp = _pool(x, "max", 2, "valid", name)
    return _concat([b3, bd, bp], f"{name}_out")


def apply_inception_b(x, filters, name, scale=False):
    """InceptionV3's 17x17 module (mixed4-7) with factorized 7x7 branches.

    Args:
        x: input tensor.
        filters: 2 ints: the output of every branch (192 in InceptionV3) and
            the inner width of the 7x7 branches (128, 160 or 192).
        name: str. Module prefix (`"mixed4"`).
        scale: bool. BN scale. Defaults to False.
    """
    out, inner = filters
    unit = _unit(name, scale)
    b1 = unit(x, out, 1, "branch1x1")
    b7 = unit(x, inner, 1, "branch7x7_1")
    b7 = unit(b7, inner, (1, 7), "branch7x7_2")
    b7 = unit(b7, out, (7, 1), "branch7x7_3")
    bd = unit(x, inner, 1, "branch7x7dbl_1")
    bd = unit(bd, inner, (7, 1), "branch7x7dbl_2")
    bd = unit(bd, inner, (1, 7), "branch7x7dbl_3")
    bd = unit(bd, inner, (7, 1), "branch7x7dbl_4")
    bd = unit(bd, out, (1, 7), "branch7x7dbl_5")
    bp = _pool(x, "avg", 1, "same", name)
    bp = unit(bp, out, 1, "branchpool")
    return _concat([b1, b7, bd, bp], f"{name}_out")


def apply_reduction_b(x, filters, name, scale=False):
    """InceptionV3's 17->8 reduction (mixed8): 3x3/2, 7x7 then 3x3/2, max pool.

    Args:
        x: input tensor.
        filters: 3 ints: reduce width (192), 3x3 output (320), 7x7x3 output
            (192).
        name: str. Module prefix (`"mixed8"`).
        scale: bool. BN scale. Defaults to False.
    """
    fr, f3, f7 = filters
    unit = _unit(name, scale)
    b3 = unit(x, fr, 1, "branch3x3_1")
    b3 = unit(b3, f3, 3, "branch3x3_2", strides=2, padding="valid")
    b7 = unit(x, fr, 1, "branch7x7x3_1")
    b7 = unit(b7, fr, (1, 7), "branch7x7x3_2")
    b7 = unit(b7, fr, (7, 1), "branch7x7x3_3")
    b7 = unit(b7, f7, 3, "branch7x7x3_4", strides=2, padding="valid")
    bp = _pool(x, "max", 2, "valid", name)
    return _concat([b3, b7, bp], f"{name}_out")


def apply_inception_c(x, filters, name, scale=False):
    """InceptionV3's 8x8 module (mixed9-10) with expanded 1x3 / 3x1 outputs.

    The two expanded branches end in inner concatenations named
    `<name>_branch3x3_concat` and `<name>_branch3x3dbl_concat`.

    Args:
        x: input tensor.
        filters: 5 ints: 1x1 (320), 3x3 width (384), double-3x3 reduce (448),
            double-3x3 width (384), pool projection (192).
        name: str. Module prefix (`"mixed9"`).
        scale: bool. BN scale. Defaults to False.
    """
    f1, f3, fdr, fd, fp = filters
    unit = _unit(name, scale)
    b1 = unit(x, f1, 1, "branch1x1")
    b3 = unit(x, f3, 1, "branch3x3_1")
    b3a = unit(b3, f3, (1, 3), "branch3x3_2a")
    b3b = unit(b3, f3, (3, 1), "branch3x3_2b")
    b3 = _concat([b3a, b3b], f"{name}_branch3x3_concat")
    bd = unit(x, fdr, 1, "branch3x3dbl_1")
    bd = unit(bd, fd, 3, "branch3x3dbl_2")
    bda = unit(bd, fd, (1, 3), "branch3x3dbl_3a")
    bdb = unit(bd, fd, (3, 1), "branch3x3dbl_3b")
    bd = _concat([bda, bdb], f"{name}_branch3x3dbl_concat")
    bp = _pool(x, "avg", 1, "same", name)
    bp = unit(bp, fp, 1, "branchpool")
    return _concat([b1, b3, bd, bp], f"{name}_out")


def apply_bn_inception(x, filters, pool, name):
    """A BN-Inception module: 1x1, 3x3, double 3x3, pool + projection.

    Args:
        x: input tensor.
        filters: 6 ints, the columns of the paper's table: #1x1, #3x3 reduce,
            #3x3, double #3x3 reduce, double #3x3, pool projection.
        pool: str. `"avg"` or `"max"`: the pooling of the pool branch.
        name: str. Module prefix (`"inception3a"`).
    """
    f1, f3r, f3, fdr, fd, fp = filters
    unit = _unit(name, True)
    b1 = unit(x, f1, 1, "branch1x1")
    b3 = unit(x, f3r, 1, "branch3x3_1")
    b3 = unit(b3, f3, 3, "branch3x3_2")
    bd = unit(x, fdr, 1, "branch3x3dbl_1")
    bd = unit(bd, fd, 3, "branch3x3dbl_2")
    bd = unit(bd, fd, 3, "branch3x3dbl_3")
    bp = _pool(x, pool, 1, "same", name)
    bp = unit(bp, fp, 1, "branchpool")
    return _concat([b1, b3, bd, bp], f"{name}_out")


def apply_bn_inception_reduction(x, filters, name):
    """A stride-2 BN-Inception module: 3x3/2, double 3x3/2, max pool pass-through.

    The pooling branch has no convolution, hence no ReLU.

    Args:
        x: input tensor.
        filters: 4 ints: #3x3 reduce, #3x3, double #3x3 reduce, double #3x3.
        name: str. Module prefix (`"inception3c"`).
    """
    f3r, f3, fdr, fd = filters
    unit = _unit(name, True)
    b3 = unit(x, f3r, 1, "branch3x3_1")
    b3 = unit(b3, f3, 3, "branch3x3_2", strides=2)
    bd = unit(x, fdr, 1, "branch3x3dbl_1")
    bd = unit(bd, fd, 3, "branch3x3dbl_2")
    bd = unit(bd, fd, 3, "branch3x3dbl_3", strides=2)
    bp = _pool(x, "max", 2, "same", name)
    return _concat([b3, bd, bp], f"{name}_out")


def _unit(module, scale):
    def unit(x, filters, kernel_size, branch, strides=1, padding="same"):
        return apply_conv_bn_relu(
            x,
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            scale=scale,
            name=f"{module}_{branch}",
        )

    return unit


def _pool(x, pool, strides, padding, module):
    layer = (
        keras.layers.AveragePooling2D if pool == "avg" else keras.layers.MaxPooling2D
    )
    return layer(
        3, strides=strides, padding=padding, name=f"{module}_branchpool_{pool}pool"
    )(x)
