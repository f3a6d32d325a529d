"""Inception networks: InceptionV3, BN-Inception and a tiny Inception.

- `inception_v3`: Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the
  Inception Architecture for Computer Vision" (2016, arXiv 1512.00567), the
  architecture of `keras.applications.InceptionV3` without the auxiliary
  head: same layers in the same order, same shapes and parameter counts, but
  every layer named (`mixed4_branch7x7dbl_3_relu`).
- `bn_inception`: Ioffe & Szegedy, "Batch Normalization: Accelerating Deep
  Network Training by Reducing Internal Covariate Shift" (2015, arXiv
  1502.03167), Figure 5: GoogLeNet (arXiv 1409.4842) with BN after every
  convolution and each 5x5 replaced by two 3x3.
- `inception_tiny`: a small stem and three small BN-Inception modules (the
  middle one a stride-2 reduction), for tests and demos.

Where EraseReLU erases: an Inception module ends at its Concatenate
(`<module>_out`); the erased ReLUs are the last ReLU of every branch feeding
it, the branches of the inner concatenations of InceptionV3's mixed9 and
mixed10 included. A pooling branch with a projection conv has a ReLU; a pure
max-pool branch (the reductions) has none. The stem and the head keep their
ReLUs. On InceptionV3 this erases 44 of 94 ReLUs, as on
`keras.applications.InceptionV3`.

Example:

```python
model = inception_v3(input_shape=(75, 75, 3), include_top=False, erase="last")
print(keras_eraserelu.plan_erasure(inception_v3(include_top=False)))
```
"""

from __future__ import annotations

import keras

from keras_eraserelu.core import check_number
from keras_eraserelu.models.builders import CIFAR_INPUT, Family, Option
from keras_eraserelu.models.inception_blocks import (
    apply_bn_inception,
    apply_bn_inception_reduction,
    apply_conv_bn_relu,
    apply_inception_a,
    apply_inception_b,
    apply_inception_c,
    apply_reduction_a,
    apply_reduction_b,
)

# BN-Inception, Figure 5 of arXiv 1502.03167. Columns: #1x1, #3x3 reduce,
# #3x3, double #3x3 reduce, double #3x3, pool projection, pooling; the
# reductions (3c, 4e) have no 1x1 and no projection (max-pool pass-through).
# The paper's table sums to 608 channels for 4c and 4d against the 576 it
# prints; like the reference Caffe model, 4d projects its pool to 96 channels
# so that 4d gives 576 and 4e gives the table's 1024.
BN_INCEPTION_CONFIG = (
    ("inception3a", (64, 64, 64, 64, 96, 32), "avg"),
    ("inception3b", (64, 64, 96, 64, 96, 64), "avg"),
    ("inception3c", (128, 160, 64, 96), None),
    ("inception4a", (224, 64, 96, 96, 128, 128), "avg"),
    ("inception4b", (192, 96, 128, 96, 128, 128), "avg"),
    ("inception4c", (160, 128, 160, 128, 160, 128), "avg"),
    ("inception4d", (96, 128, 192, 160, 192, 96), "avg"),
    ("inception4e", (128, 192, 192, 256), None),
    ("inception5a", (352, 192, 320, 160, 224, 128), "avg"),
    ("inception5b", (352, 192, 320, 192, 224, 128), "max"),
)

# inception_tiny: the same two module kinds, a few channels each.
TINY_CONFIG = (
    ("inception1", (8, 8, 12, 4, 8, 8), "avg"),
    ("inception2", (8, 16, 4, 8), None),
    ("inception3", (16, 8, 16, 8, 16, 16), "max"),
)


def _inception_v3(app, dropout):
    _check_dropout(dropout)
    inputs, x = app.inputs()
    x = _v3_unit(x, 32, 3, 2, "valid", "1")
    x = _v3_unit(x, 32, 3, 1, "valid", "2")
    x = _v3_unit(x, 64, 3, 1, "same", "3")
    x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool1")(x)
    x = _v3_unit(x, 80, 1, 1, "valid", "4")
    x = _v3_unit(x, 192, 3, 1, "valid", "5")
    x = keras.layers.MaxPooling2D(3, strides=2, name="stem_pool2")(x)
    for k, pool_filters in enumerate((32, 64, 64)):
        x = apply_inception_a(x, (64, 48, 64, 64, 96, pool_filters), f"mixed{k}")
    x = apply_reduction_a(x, (384, 64, 96, 96), "mixed3")
    for k, inner in zip(range(4, 8), (128, 160, 160, 192), strict=True):
        x = apply_inception_b(x, (192, inner), f"mixed{k}")
    x = apply_reduction_b(x, (192, 320, 192), "mixed8")
    for k in (9, 10):
        x = apply_inception_c(x, (320, 384, 448, 384, 192), f"mixed{k}")
    return app.finish(inputs, app.head(x, dropout))


def _bn_inception(app, dropout):
    _check_dropout(dropout)
    inputs, x = app.inputs()
    x = apply_conv_bn_relu(x, 64, 7, strides=2, name="stem", suffix="1")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool1")(x)
    x = apply_conv_bn_relu(x, 64, 1, name="stem", suffix="2")
    x = apply_conv_bn_relu(x, 192, 3, name="stem", suffix="3")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool2")(x)
    x = _apply_bn_inception_modules(x, BN_INCEPTION_CONFIG)
    return app.finish(inputs, app.head(x, dropout))


def _inception_tiny(app, dropout):
    _check_dropout(dropout)
    inputs, x = app.inputs()
    x = apply_conv_bn_relu(x, 16, 3, name="stem", suffix="1")
    x = _apply_bn_inception_modules(x, TINY_CONFIG)
    return app.finish(inputs, app.head(x, dropout))


def _v3_unit(x, filters, kernel_size, strides, padding, suffix):
    # keras.applications' conv2d_bn: no conv bias, BN without scale.
    return apply_conv_bn_relu(
        x,
        filters,
        kernel_size,
        strides,
        padding,
        scale=False,
        name="stem",
        suffix=suffix,
    )


def _apply_bn_inception_modules(x, config):
    for module, filters, pool in config:
        if pool is None:
            x = apply_bn_inception_reduction(x, filters, module)
        else:
            x = apply_bn_inception(x, filters, pool, module)
    return x


def _check_dropout(dropout):
    check_number("dropout", dropout, 0, 1, open_high=True)


# The three networks share keras.applications' arguments and `dropout`; each
# has its own graph, default size and classes.
_INCEPTION = Family(
    build=_inception_v3,
    classes=1000,
    input_shape=(299, 299, 3),
    min_size=75,
    options=(
        Option(
            "dropout",
            0.0,
            "float in [0, 1). Dropout before the classifier; 0 adds no layer "
            "(keras.applications has none). Defaults to {default}.",
        ),
    ),
    example='model = {key}(input_shape=(75, 75, 3), classes=10, erase="last")',
)

inception_v3 = _INCEPTION.variant(
    "inception_v3",
    "InceptionV3 (arXiv 1512.00567) as keras.applications builds it, named.",
)
bn_inception = _INCEPTION.replace(
    build=_bn_inception,
    input_shape=(224, 224, 3),
    min_size=32,
    intro="""
        Stem: conv 7x7/2 (64), max pool 3x3/2, conv 1x1 (64), conv 3x3 (192),
        max pool 3x3/2; then modules 3a, 3b, 3c (stride 2), 4a-4d, 4e (stride
        2), 5a, 5b; global average pooling and a Dense classifier. Every conv
        is followed by BN (with scale) and a ReLU; all paddings are "same", so
        a 224x224 input gives 7x7x1024 features. Filters per module (#1x1,
        #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool +
        projection):

        | module | filters | pool | output |
        |---|---|---|---|
        | 3a | 64, 64, 64, 64, 96, 32 | avg | 256 |
        | 3b | 64, 64, 96, 64, 96, 64 | avg | 320 |
        | 3c | -, 128, 160, 64, 96, - | max, stride 2 | 576 |
        | 4a | 224, 64, 96, 96, 128, 128 | avg | 576 |
        | 4b | 192, 96, 128, 96, 128, 128 | avg | 576 |
        | 4c | 160, 128, 160, 128, 160, 128 | avg | 608 |
        | 4d | 96, 128, 192, 160, 192, 96 | avg | 576 |
        | 4e | -, 128, 192, 192, 256, - | max, stride 2 | 1024 |
        | 5a | 352, 192, 320, 160, 224, 128 | avg | 1024 |
        | 5b | 352, 192, 320, 192, 224, 128 | max | 1024 |

        The paper's table sums to 608 for 4c and 4d but prints 576; as in the
        reference Caffe model, 4d projects its pool branch to 96. No dropout
        by default (the paper removed it). Parameters with the 1000-class
        top: 11,228,840 trainable (10,203,840 without the top); BN moving
        statistics add 19,968 non-trainable weights.
    """,
    example='model = {key}(input_shape=(96, 96, 3), classes=100, erase="last")',
).variant("bn_inception", "BN-Inception / Inception-v2 (arXiv 1502.03167, Figure 5).")
inception_tiny = _INCEPTION.replace(
    build=_inception_tiny,
    **CIFAR_INPUT,
    intro="""
        Stem conv 3x3 (16); module `inception1` (avg-pool branch), the
        stride-2 reduction `inception2` (max-pool pass-through, no ReLU on
        that branch), module `inception3` (max-pool branch); global average
        pooling and Dense. Filters: see `TINY_CONFIG`.
    """,
    example='model = {key}(erase="last")   # 4 + 2 + 4 erased ReLUs',
).variant(
    "inception_tiny",
    "A tiny BN-Inception for tests and demos (13,618 trainable parameters).",
)
