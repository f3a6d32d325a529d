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

from keras_eraserelu.core import check_choice
from keras_eraserelu.models.batch_norm import FusedBatchNormalization
from keras_eraserelu.models.common import (
    check_builder_args,
    classifier_head,
    documented,
    finish_model,
    model_input,
)
from keras_eraserelu.models.registry import register_model

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
    if not isinstance(zero_init_residual, bool):
        raise TypeError(
            "`zero_init_residual` must be a bool. "
            f"Received: zero_init_residual={zero_init_residual!r}."
        )


def _resnet(
    block,
    blocks_per_stage,
    widths=(64, 128, 256, 512),
    stem_filters=64,
    default_size=224,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    erase,
    stride_on,
    zero_init_residual,
):
    check_builder_args(include_top, weights, pooling, classes, classifier_activation)
    check_resnet_options(stride_on, zero_init_residual)
    inputs, x = model_input(
        input_tensor, input_shape, default=(default_size, default_size, 3), min_size=32
    )
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
    outputs = classifier_head(x, include_top, pooling, classes, classifier_activation)
    return finish_model(inputs, outputs, name, weights=weights, erase=erase)


_documented = documented(
    input_shape=(224, 224, 3),
    min_size=32,
    classes=1000,
    family_args="""
        stride_on: "conv1" or "conv2". In bottleneck blocks, the conv that
            strides: the first 1x1 (original, keras.applications) or the 3x3
            (torchvision, "v1.5"). Basic blocks ignore it. Defaults to "conv1".
        zero_init_residual: bool. Start the scale of the last BN of every
            residual branch at zero (Goyal et al. 2017). Defaults to False.
""",
    top="Global average pooling and the classifier.",
    example="",
)


@register_model
@_documented
def resnet18(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet18",
    erase=None,
    stride_on="conv1",
    zero_init_residual=False,
):
    """ResNet-18 for ImageNet: basic blocks [2, 2, 2, 2], post-activation."""
    return _resnet("basic", (2, 2, 2, 2), **locals())


@register_model
@_documented
def resnet34(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet34",
    erase=None,
    stride_on="conv1",
    zero_init_residual=False,
):
    """ResNet-34 for ImageNet: basic blocks [3, 4, 6, 3], post-activation."""
    return _resnet("basic", (3, 4, 6, 3), **locals())


@register_model
@_documented
def resnet50(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet50",
    erase=None,
    stride_on="conv1",
    zero_init_residual=False,
):
    """ResNet-50 for ImageNet: bottleneck blocks [3, 4, 6, 3], post-activation."""
    return _resnet("bottleneck", (3, 4, 6, 3), **locals())


@register_model
@_documented
def resnet101(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet101",
    erase=None,
    stride_on="conv1",
    zero_init_residual=False,
):
    """ResNet-101 for ImageNet: bottleneck blocks [3, 4, 23, 3], post-activation."""
    return _resnet("bottleneck", (3, 4, 23, 3), **locals())


@register_model
@_documented
def resnet152(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet152",
    erase=None,
    stride_on="conv1",
    zero_init_residual=False,
):
    """ResNet-152 for ImageNet: bottleneck blocks [3, 8, 36, 3], post-activation."""
    return _resnet("bottleneck", (3, 8, 36, 3), **locals())


@register_model
def resnet_tiny(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="resnet_tiny",
    erase=None,
    stride_on="conv1",
    zero_init_residual=False,
):
    """A tiny ImageNet-style ResNet for tests and demos.

    Basic blocks [1, 1, 1, 1] with widths 8, 16, 32, 64 and an 8-filter stem;
    default input `(64, 64, 3)` and 10 classes. The arguments are those of
    `resnet18`.

    Example:

    ```python
    model = create_model("resnet_tiny", erase="last")
    ```
    """
    return _resnet("basic", (1, 1, 1, 1), (8, 16, 32, 64), 8, 64, **locals())
