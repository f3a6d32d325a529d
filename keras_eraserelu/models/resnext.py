"""ResNeXt for CIFAR (post-activation), with EraseReLU built in.

Xie, Girshick, Dollar, Tu, He, "Aggregated Residual Transformations for Deep
Neural Networks", 2017, arXiv 1611.05431. ResNeXt-29 (C x d) is the paper's
CIFAR network: a conv3x3 (64) - BN - ReLU stem, then 3 stages of 3
bottleneck blocks, global average pooling and a Dense classifier
(29 = 3 x 3 x 3 convs + stem + classifier).

Width convention (the one of the paper's released CIFAR code, which gives
34.4M parameters for 8x64d and 68.2M for 16x64d): in stage s = 0, 1, 2 a
block is conv1x1 (C * d * 2^s) - BN - ReLU - grouped conv3x3 (C * d * 2^s,
C groups of d * 2^s channels) - BN - ReLU - conv1x1 (256 * 2^s) - BN, then
the shortcut is added and a ReLU follows. Stages 2 and 3 downsample with
stride 2 on the grouped conv; the shortcut is a projection (conv1x1 + BN)
wherever the shape changes, i.e. in the first block of each stage. Convs
before a BN have no bias.

Where EraseReLU erases: a module is one residual block, and its last ReLU is
the one right after the residual addition (`stage{s}_block{b}_out`). This is
the setting of the paper's best CIFAR-100 result (ResNeXt-29, 16.53% error).

Example:

```python
model = create_model("resnext29_8x64d", erase="last", classes=100)
```
"""

from __future__ import annotations

import keras

from keras_eraserelu.models.builders import CIFAR_INPUT, Family, Option
from keras_eraserelu.models.imagenet_resnet import (
    ZERO_INIT_RESIDUAL,
    apply_bottleneck_block,
    check_resnet_options,
    conv_bn,
)


def apply_resnext_stage(
    x,
    filters,
    blocks,
    cardinality,
    group_width,
    strides,
    stride_on="conv2",
    zero_init_residual=False,
    *,
    name,
):
    """A stage of ResNeXt bottleneck blocks; the first one may downsample.

    Args:
        x: KerasTensor.
        filters: int. Output channels of every block.
        blocks: int. Number of blocks.
        cardinality: int. Groups of the 3x3 conv (C).
        group_width: int. Channels per group (d, doubled in every stage).
        strides: int. Stride of the first block.
        stride_on: "conv1" or "conv2". The conv that strides.
        zero_init_residual: bool. Start the last BN scale at zero.
        name: str. Stage prefix, e.g. `"stage2"`; blocks are
            `"{name}_block{b}"`.

    Returns:
        The output of the last block.
    """
    for index in range(1, blocks + 1):
        x = apply_bottleneck_block(
            x,
            filters,
            cardinality * group_width,
            strides if index == 1 else 1,
            groups=cardinality,
            stride_on=stride_on,
            zero_init_residual=zero_init_residual,
            name=f"{name}_block{index}",
        )
    return x


def _resnext(
    app,
    blocks_per_stage,
    cardinality,
    bottleneck_width,
    stem_filters=64,
    base_filters=256,
    *,
    stride_on,
    zero_init_residual,
):
    check_resnet_options(stride_on, zero_init_residual)
    inputs, x = app.inputs()
    x = conv_bn(x, stem_filters, 3, name="stem_conv", bn_name="stem_bn")
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, blocks in enumerate(blocks_per_stage):
        x = apply_resnext_stage(
            x,
            base_filters * 2**stage,
            blocks,
            cardinality,
            bottleneck_width * 2**stage,
            1 if stage == 0 else 2,
            stride_on=stride_on,
            zero_init_residual=zero_init_residual,
            name=f"stage{stage + 1}",
        )
    return app.finish(inputs, app.head(x))


_RESNEXT = Family(
    build=_resnext,
    **CIFAR_INPUT,
    options=(
        Option(
            "stride_on",
            "conv2",
            '"conv1" or "conv2". The conv that strides in a downsampling block: '
            "the first 1x1, or the grouped 3x3 (the paper's code). Defaults to "
            "{default}.",
        ),
        ZERO_INIT_RESIDUAL,
    ),
)


def _variant(cardinality, width):
    return _RESNEXT.variant(
        f"resnext29_{cardinality}x{width}d",
        f"ResNeXt-29 ({cardinality}x{width}d) for CIFAR: cardinality {cardinality}, "
        f"bottleneck width {width}.",
        blocks_per_stage=(3, 3, 3),
        cardinality=cardinality,
        bottleneck_width=width,
    )


# One line each: cardinality C and bottleneck width d (arXiv 1611.05431).
resnext29_8x64d = _variant(8, 64)
resnext29_16x64d = _variant(16, 64)
resnext_tiny = _RESNEXT.replace(
    intro="A 16-filter stem and stage outputs of 32, 64, 128 channels."
).variant(
    "resnext_tiny",
    "A tiny ResNeXt for tests and demos: 1 block per stage, 2x4d.",
    blocks_per_stage=(1, 1, 1),
    cardinality=2,
    bottleneck_width=4,
    stem_filters=16,
    base_filters=32,
)
