"""The building blocks of the CIFAR residual networks.

Bias-free, He-initialised convs (stride-2 3x3 convs pad one pixel on each
side, `<name>_pad`, as in the reference implementations), BN with momentum
0.9 and epsilon 1e-5 (PyTorch's defaults), standalone ReLU layers, the
shortcut (identity, option A zero-pad or option B 1x1 projection), the four
residual blocks (post- and pre-activation, basic and bottleneck) and a stage
of blocks. Every layer is named from the `name` given, as described in
`keras_eraserelu.models.cifar_resnets`, which builds the networks from these;
`keras_eraserelu.models.wide_resnet` reuses them.

Example:

```python
inputs = keras.Input((32, 32, 3))
x = conv(inputs, 16, 3, 1, "stem_conv")
x = apply_stage(x, 32, 2, 2, apply_preact_basic_block, "stage1", shortcut="A")
```
"""

from __future__ import annotations

import keras

from keras_eraserelu.models.batch_norm import FusedBatchNormalization
from keras_eraserelu.models.layers import ZeroPadShortcut

_BOTTLENECK_EXPANSION = 4


def conv(x, filters, kernel_size, strides, name):
    """A bias-free, He-initialised conv; stride-2 3x3 convs pad 1 each side."""
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )(x)


def batch_norm(x, name):
    """BatchNormalization with the reference implementations' settings."""
    return FusedBatchNormalization(momentum=0.9, epsilon=1e-5, name=name)(x)


def relu(x, name):
    """A standalone ReLU layer."""
    return keras.layers.ReLU(name=name)(x)


def apply_shortcut(x, filters, strides, shortcut, name, normalize=True):
    """The shortcut: identity, option A (zero-pad) or B (1x1 conv projection).

    The identity is used whenever the shape does not change.
    """
    if strides == 1 and x.shape[-1] == filters:
        return x
    if shortcut == "A":
        return ZeroPadShortcut(filters, strides, name=f"{name}_shortcut")(x)
    x = conv(x, filters, 1, strides, f"{name}_shortcut_conv")
    return batch_norm(x, f"{name}_shortcut_bn") if normalize else x


def apply_basic_block(x, filters, strides=1, shortcut="A", name="block"):
    """Post-activation basic block: conv-BN-ReLU-conv-BN, Add, ReLU."""
    y = conv(x, filters, 3, strides, f"{name}_conv1")
    y = relu(batch_norm(y, f"{name}_bn1"), f"{name}_relu1")
    y = conv(y, filters, 3, 1, f"{name}_conv2")
    y = batch_norm(y, f"{name}_bn2")
    x = apply_shortcut(x, filters, strides, shortcut, name)
    x = keras.layers.Add(name=f"{name}_add")([y, x])
    return relu(x, f"{name}_out")


def apply_bottleneck_block(x, filters, strides=1, shortcut="B", name="block"):
    """Post-activation bottleneck: 1x1, 3x3 (strided), 1x1 to 4x `filters`."""
    y = conv(x, filters, 1, 1, f"{name}_conv1")
    y = relu(batch_norm(y, f"{name}_bn1"), f"{name}_relu1")
    y = conv(y, filters, 3, strides, f"{name}_conv2")
    y = relu(batch_norm(y, f"{name}_bn2"), f"{name}_relu2")
    y = conv(y, filters * _BOTTLENECK_EXPANSION, 1, 1, f"{name}_conv3")
    y = batch_norm(y, f"{name}_bn3")
    x = apply_shortcut(x, filters * _BOTTLENECK_EXPANSION, strides, shortcut, name)
    x = keras.layers.Add(name=f"{name}_add")([y, x])
    return relu(x, f"{name}_out")


def apply_preact_basic_block(
    x, filters, strides=1, shortcut="A", dropout_rate=0.0, name="block"
):
    """Pre-activation basic block: BN-ReLU-conv-BN-ReLU-(Dropout)-conv, Add.

    Projections have no BatchNormalization (the input is pre-activated).
    """
    preact = relu(batch_norm(x, f"{name}_bn1"), f"{name}_relu1")
    if not (strides == 1 and x.shape[-1] == filters):
        x = apply_shortcut(preact, filters, strides, shortcut, name, normalize=False)
    y = conv(preact, filters, 3, strides, f"{name}_conv1")
    y = relu(batch_norm(y, f"{name}_bn2"), f"{name}_relu2")
    if dropout_rate > 0:
        y = keras.layers.Dropout(dropout_rate, name=f"{name}_dropout")(y)
    y = conv(y, filters, 3, 1, f"{name}_conv2")
    return keras.layers.Add(name=f"{name}_out")([y, x])


def apply_preact_bottleneck_block(x, filters, strides=1, shortcut="B", name="block"):
    """Pre-activation bottleneck: (BN-ReLU-conv) x 3 with 1x1, 3x3, 1x1, Add."""
    outputs = filters * _BOTTLENECK_EXPANSION
    preact = relu(batch_norm(x, f"{name}_bn1"), f"{name}_relu1")
    if not (strides == 1 and x.shape[-1] == outputs):
        x = apply_shortcut(preact, outputs, strides, shortcut, name, normalize=False)
    y = conv(preact, filters, 1, 1, f"{name}_conv1")
    y = relu(batch_norm(y, f"{name}_bn2"), f"{name}_relu2")
    y = conv(y, filters, 3, strides, f"{name}_conv2")
    y = relu(batch_norm(y, f"{name}_bn3"), f"{name}_relu3")
    y = conv(y, outputs, 1, 1, f"{name}_conv3")
    return keras.layers.Add(name=f"{name}_out")([y, x])


def apply_stage(x, filters, blocks, strides, block_fn, name, **block_options):
    """`blocks` blocks named `{name}_block{b}`; the first one has `strides`."""
    for index in range(1, blocks + 1):
        x = block_fn(
            x,
            filters,
            strides if index == 1 else 1,
            name=f"{name}_block{index}",
            **block_options,
        )
    return x
