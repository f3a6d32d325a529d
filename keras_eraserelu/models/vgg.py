"""VGG networks (plain conv stacks), with EraseReLU built in.

Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", 2014, arXiv 1409.1556; batch normalization from Ioffe, Szegedy,
2015, arXiv 1502.03167. Configurations A, B, D, E give VGG-11, 13, 16, 19:
five stages of 3x3 convs, each stage closed by a 2x2 max pooling
(`stage{s}_pool`).

Two kinds:

- `cifar_vgg{11,13,16,19}_bn`: conv3x3 (no bias) - BN - ReLU, input 32x32x3,
  10 classes. Head: global average pooling and one Dense classifier (after
  five poolings a 32x32 input is 1x1, so this equals flattening; it also
  accepts larger inputs). The head has 512 * classes + classes parameters
  (5,130 for 10 classes).
- `vgg16`, `vgg19`: the ImageNet networks of keras.applications (conv3x3
  with bias, no BN), input 224x224x3, 1000 classes. Head: Flatten, fc1 (4096)
  - ReLU, fc2 (4096) - ReLU, Dense classifier: 138,357,544 and 143,667,240
  parameters, like keras.applications.

Every ReLU is a standalone `keras.layers.ReLU` named `stage{s}_conv{k}_relu`
(fc ReLUs: `head_fc1_relu`, `head_fc2_relu`), so both kinds look alike to
the graph walker; the parameters equal those of fused activations.

Where EraseReLU erases: a module is the conv stack of one stage, ended by its
pooling; its last ReLU is the one right before the pooling (the last conv of
each stage). The ReLUs of the fc head are kept.

Example:

```python
model = create_model("cifar_vgg16_bn", erase="last", classes=100)
```
"""

from __future__ import annotations

import numbers

import keras

from keras_eraserelu.models.batch_norm import FusedBatchNormalization
from keras_eraserelu.models.common import (
    check_builder_args,
    classifier,
    classifier_head,
    documented,
    finish_model,
    model_input,
)
from keras_eraserelu.models.registry import register_model

# Filters of the convs of each stage, per configuration of the paper.
CONFIGS = {
    "A": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "B": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "D": ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3),
    "E": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def apply_vgg_stage(x, filters, batch_norm, *, name):
    """One VGG stage: conv3x3 [- BN] - ReLU per entry of `filters`, max pool.

    Args:
        x: KerasTensor.
        filters: tuple of int. Output channels of each conv.
        batch_norm: bool. Convs without bias followed by BN, or convs with
            bias and no BN.
        name: str. Stage prefix, e.g. `"stage3"`.

    Returns:
        The output of the pooling `{name}_pool`.
    """
    for index, width in enumerate(filters, start=1):
        prefix = f"{name}_conv{index}"
        x = keras.layers.Conv2D(
            width,
            3,
            padding="same",
            use_bias=not batch_norm,
            kernel_initializer="he_normal",
            name=prefix,
        )(x)
        if batch_norm:
            x = FusedBatchNormalization(
                momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{prefix}_bn"
            )(x)
        x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
    return keras.layers.MaxPooling2D(2, 2, name=f"{name}_pool")(x)


def apply_fc_head(x, units, dropout, classes, classifier_activation, *, name):
    """VGG's head: Flatten, two Dense - ReLU [- Dropout] layers, classifier.

    Args:
        x: KerasTensor. The last feature map.
        units: int. Width of fc1 and fc2.
        dropout: float. Dropout rate after fc1 and fc2; 0 adds no layer.
        classes: int. Number of classes.
        classifier_activation: str or None. Activation of the classifier.
        name: str. Prefix, e.g. `"head"`.

    Returns:
        The classifier output (float32).
    """
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    for index in (1, 2):
        x = keras.layers.Dense(units, name=f"{name}_fc{index}")(x)
        x = keras.layers.ReLU(name=f"{name}_fc{index}_relu")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{name}_fc{index}_dropout")(x)
    return classifier(x, classes, classifier_activation, name=f"{name}_fc")


def _check_dropout(dropout):
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
        raise TypeError(
            f"`dropout` must be a float. Received: dropout={dropout!r} of type "
            f"{type(dropout).__name__}."
        )
    if not 0 <= dropout < 1:
        raise ValueError(
            "`dropout` must be in [0, 1): the fraction of fc units dropped "
            f"(0 adds no dropout layer). Received: dropout={dropout!r}."
        )


def _vgg(
    stages,
    batch_norm,
    default_size,
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
    dropout=None,
):
    check_builder_args(include_top, weights, pooling, classes, classifier_activation)
    if dropout is not None:
        _check_dropout(dropout)
    inputs, x = model_input(
        input_tensor,
        input_shape,
        default=(default_size, default_size, 3),
        min_size=2 ** len(stages),
    )
    for stage, filters in enumerate(stages, start=1):
        x = apply_vgg_stage(x, filters, batch_norm, name=f"stage{stage}")
    if dropout is None or not include_top:  # the CIFAR head, or no top
        outputs = classifier_head(
            x, include_top, pooling, classes, classifier_activation
        )
    else:
        outputs = apply_fc_head(
            x, 4096, dropout, classes, classifier_activation, name="head"
        )
    return finish_model(inputs, outputs, name, weights=weights, erase=erase)


_cifar_documented = documented(
    input_shape=(32, 32, 3),
    min_size=32,
    classes=10,
    intro="""
    Conv3x3 - BN - ReLU stacks, a max pooling after each of the 5 stages,
    global average pooling and a Dense classifier.
""",
    top="Global average pooling and the classifier.",
    example=", classes=100",
)


@register_model
@_cifar_documented
def cifar_vgg11_bn(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_vgg11_bn",
    erase=None,
):
    """VGG-11 (configuration A) with batch normalization, for CIFAR."""
    return _vgg(CONFIGS["A"], True, 32, **locals())


@register_model
@_cifar_documented
def cifar_vgg13_bn(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_vgg13_bn",
    erase=None,
):
    """VGG-13 (configuration B) with batch normalization, for CIFAR."""
    return _vgg(CONFIGS["B"], True, 32, **locals())


@register_model
@_cifar_documented
def cifar_vgg16_bn(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_vgg16_bn",
    erase=None,
):
    """VGG-16 (configuration D) with batch normalization, for CIFAR."""
    return _vgg(CONFIGS["D"], True, 32, **locals())


@register_model
@_cifar_documented
def cifar_vgg19_bn(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_vgg19_bn",
    erase=None,
):
    """VGG-19 (configuration E) with batch normalization, for CIFAR."""
    return _vgg(CONFIGS["E"], True, 32, **locals())


@register_model
def cifar_vgg_tiny(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_vgg_tiny",
    erase=None,
):
    """A tiny VGG with BN for tests and demos: stages (8), (16), (32, 32).

    Three stages, so inputs from 8x8; the arguments are those of
    `cifar_vgg11_bn`.

    Example:

    ```python
    model = create_model("cifar_vgg_tiny", erase="last")
    ```
    """
    return _vgg(((8,), (16,), (32, 32)), True, 32, **locals())


_imagenet_documented = documented(
    input_shape=(224, 224, 3),
    min_size=32,
    classes=1000,
    family_args="""
        dropout: float in [0, 1). Dropout after fc1 and fc2, as in the paper
            (0.5); 0 adds no layer, as keras.applications. Defaults to 0.0.
""",
    intro="""
    Conv3x3 (with bias) - ReLU stacks without BN, a max pooling after each of
    the 5 stages, and keras.applications' head: Flatten, fc1 and fc2 (4096
    units, ReLU), a Dense classifier.
""",
    top="The Flatten - fc1 - fc2 - classifier head. Its size depends on the "
    "input: 224x224 gives keras.applications' count.",
    example=", dropout=0.5",
)


@register_model
@_imagenet_documented
def vgg16(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg16",
    erase=None,
    dropout=0.0,
):
    """VGG-16 (configuration D) for ImageNet, as keras.applications.VGG16."""
    return _vgg(CONFIGS["D"], False, 224, **locals())


@register_model
@_imagenet_documented
def vgg19(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg19",
    erase=None,
    dropout=0.0,
):
    """VGG-19 (configuration E) for ImageNet, as keras.applications.VGG19."""
    return _vgg(CONFIGS["E"], False, 224, **locals())
