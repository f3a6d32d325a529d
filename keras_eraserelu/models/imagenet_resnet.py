"""ImageNet ResNets (post-activation), with EraseReLU built in.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", 2015,
arXiv 1512.03385. ResNet-18/34 stack basic blocks (two 3x3 convs),
ResNet-50/101/152 bottleneck blocks (1x1, 3x3, 1x1 with 4x expansion).
The stem is conv7x7/2 (64) - BN - ReLU - maxpool3x3/2 (`stem_pool`); every
conv before a BN has no bias; a shortcut whose shape changes is a projection
(conv1x1 + BN); the head is global average pooling and a Dense classifier.
Parameter counts equal torchvision's: 11,689,512 / 21,797,672 / 25,557,032 /
44,549,160 / 60,192,808 for 1000 classes.

Where EraseReLU erases: a module is one residual block, and its last ReLU is
the one right after the residual addition (`stage{s}_block{b}_out`). The stem
ReLU and the head keep theirs.

The bottleneck stride sits on the first 1x1 conv by default
(`stride_on="conv1"`, the original Caffe models and keras.applications);
`stride_on="conv2"` moves it to the 3x3 conv (torchvision, "ResNet v1.5").
Batch normalization uses momentum 0.9 and epsilon 1e-5, as the Torch
reference implementations do. Convs and the stem pooling use "same" padding
(no ZeroPadding layers), so any input of at least 32x32 works; convs start
from `he_normal`.

Example:

```python
model = create_model("resnet50", erase="last")
```
"""

from __future__ import annotations

import keras

from keras_eraserelu.core import check_bool, check_choice
from keras_eraserelu.models.batch_norm import FusedBatchNormalization
from keras_eraserelu.models.builders import IMAGENET_INPUT, Family, Option

STRIDE_ON_CHOICES = ("conv1", "conv2")
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def conv_bn(
    x, filters, kernel_size, strides=1, groups=1, zero_gamma=False, *, name, bn_name
):
    """A conv without bias, then batch normalization.

    Args:
        x: KerasTensor.
        filters: int. Output channels.
        kernel_size: int. Square kernel size.
        strides: int. Defaults to 1.
        groups: int. Groups of a grouped convolution (ResNeXt). Defaults to 1.
        zero_gamma: bool. Start the BN scale at zero. Defaults to False.
        name: str. Name of the conv layer.
        bn_name: str. Name of the BN layer.

    Returns:
        The BN output.
    """
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        groups=groups,
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )(x)
    return FusedBatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=bn_name,
    )(x)


def apply_shortcut(x, filters, strides, name):
    """Identity, or a conv1x1 + BN projection where the shape changes."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(
        x,
        filters,
        1,
        strides,
        name=f"{name}_shortcut_conv",
        bn_name=f"{name}_shortcut_bn",
    )


def apply_basic_block(x, filters, strides=1, zero_init_residual=False, *, name):
    """Post-activation basic block: 3x3 - BN - ReLU - 3x3 - BN, add, ReLU.

    Args:
        x: KerasTensor.
        filters: int. Channels of both convs and of the output.
        strides: int. Stride of the first conv (and of the projection).
        zero_init_residual: bool. Start the last BN scale at zero.
        name: str. Block prefix, e.g. `"stage2_block1"`.

    Returns:
        The output of the ReLU `{name}_out`.
    """
    shortcut = apply_shortcut(x, filters, strides, name)
    x = conv_bn(x, filters, 3, strides, name=f"{name}_conv1", bn_name=f"{name}_bn1")
    x = keras.layers.ReLU(name=f"{name}_relu1")(x)
    x = conv_bn(
        x,
        filters,
        3,
        zero_gamma=zero_init_residual,
        name=f"{name}_conv2",
        bn_name=f"{name}_bn2",
    )
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def apply_bottleneck_block(
    x,
    filters,
    width,
    strides=1,
    groups=1,
    stride_on="conv1",
    zero_init_residual=False,
    *,
    name,
):
    """Post-activation bottleneck: 1x1 - 3x3 - 1x1 (each with BN), add, ReLU.

    Args:
        x: KerasTensor.
        filters: int. Output channels (of the last 1x1 conv).
        width: int. Channels of the first 1x1 and of the 3x3 conv.
        strides: int. The block's stride.
        groups: int. Groups of the 3x3 conv (ResNeXt's cardinality).
        stride_on: `"conv1"` (the first 1x1) or `"conv2"` (the 3x3).
        zero_init_residual: bool. Start the last BN scale at zero.
        name: str. Block prefix, e.g. `"stage3_block2"`.

    Returns:
        The output of the ReLU `{name}_out`.
    """
    shortcut = apply_shortcut(x, filters, strides, name)
    stride1, stride2 = (strides, 1) if stride_on == "conv1" else (1, strides)
    x = conv_bn(x, width, 1, stride1, name=f"{name}_conv1", bn_name=f"{name}_bn1")
    x = keras.layers.ReLU(name=f"{name}_relu1")(x)
    x = conv_bn(
        x, width, 3, stride2, groups=groups, name=f"{name}_conv2", bn_name=f"{name}_bn2"
    )
    x = keras.layers.ReLU(name=f"{name}_relu2")(x)
    x = conv_bn(
        x,
        filters,
        1,
        zero_gamma=zero_init_residual,
        name=f"{name}_conv3",
        bn_name=f"{name}_bn3",
    )
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def check_resnet_options(stride_on, zero_init_residual):
    """Checks the family options shared by the ResNet and ResNeXt builders."""
    check_choice("stride_on", stride_on, STRIDE_ON_CHOICES)
    check_bool("zero_init_residual", zero_init_residual)


ZERO_INIT_RESIDUAL = Option(
    "zero_init_residual",
    False,
    "bool. Start the scale of the last BN of every residual branch at zero "
    "(Goyal et al. 2017). Defaults to {default}.",
)


def _resnet(
    app,
    block,
    blocks_per_stage,
    widths=(64, 128, 256, 512),
    stem_filters=64,
    *,
    stride_on,
    zero_init_residual,
):
    check_resnet_options(stride_on, zero_init_residual)
    inputs, x = app.inputs()
    x = conv_bn(x, stem_filters, 7, 2, name="stem_conv", bn_name="stem_bn")
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)
    for stage, (count, width) in enumerate(
        zip(blocks_per_stage, widths, strict=True), start=1
    ):
        for index in range(1, count + 1):
            strides = 2 if stage > 1 and index == 1 else 1
            prefix = f"stage{stage}_block{index}"
            if block == "basic":
                x = apply_basic_block(
                    x, width, strides, zero_init_residual, name=prefix
                )
            else:
                x = apply_bottleneck_block(
                    x,
                    4 * width,
                    width,
                    strides,
                    stride_on=stride_on,
                    zero_init_residual=zero_init_residual,
                    name=prefix,
                )
    return app.finish(inputs, app.head(x))


_RESNET = Family(
    build=_resnet,
    **IMAGENET_INPUT,
    options=(
        Option(
            "stride_on",
            "conv1",
            '"conv1" or "conv2". In bottleneck blocks, the conv that strides: '
            "the first 1x1 (original, keras.applications) or the 3x3 "
            '(torchvision, "v1.5"). Basic blocks ignore it. Defaults to {default}.',
        ),
        ZERO_INIT_RESIDUAL,
    ),
    example='model = create_model("{key}", erase="last")',
)


def _variant(block, blocks):
    depth = 2 + sum(blocks) * (2 if block == "basic" else 3)
    summary = f"ResNet-{depth} for ImageNet: {block} blocks {list(blocks)}."
    return _RESNET.variant(
        f"resnet{depth}", summary, block=block, blocks_per_stage=blocks
    )


# One line each: the block and the blocks per stage (arXiv 1512.03385, table 1).
resnet18 = _variant("basic", (2, 2, 2, 2))
resnet34 = _variant("basic", (3, 4, 6, 3))
resnet50 = _variant("bottleneck", (3, 4, 6, 3))
resnet101 = _variant("bottleneck", (3, 4, 23, 3))
resnet152 = _variant("bottleneck", (3, 8, 36, 3))
resnet_tiny = _RESNET.replace(
    classes=10,
    input_shape=(64, 64, 3),
    intro="Basic blocks [1, 1, 1, 1] with widths 8, 16, 32, 64 and an 8-filter stem.",
).variant(
    "resnet_tiny",
    "A tiny ImageNet-style ResNet for tests and demos.",
    block="basic",
    blocks_per_stage=(1, 1, 1, 1),
    widths=(8, 16, 32, 64),
    stem_filters=8,
)
