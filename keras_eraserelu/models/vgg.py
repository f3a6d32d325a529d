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

import keras

from keras_eraserelu.core import check_number
from keras_eraserelu.models.batch_norm import FusedBatchNormalization
from keras_eraserelu.models.builders import CIFAR_INPUT, IMAGENET_INPUT, Family, Option
from keras_eraserelu.models.common import classifier

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


def _vgg(app, stages, batch_norm, dropout=None):
    if dropout is not None:
        check_number("dropout", dropout, 0, 1, open_high=True)
    inputs, x = app.inputs()
    for stage, filters in enumerate(stages, start=1):
        x = apply_vgg_stage(x, filters, batch_norm, name=f"stage{stage}")
    if dropout is None or not app.include_top:  # the CIFAR head, or no top
        outputs = app.head(x)
    else:
        outputs = apply_fc_head(
            x, 4096, dropout, app.classes, app.classifier_activation, name="head"
        )
    return app.finish(inputs, outputs)


_CIFAR_VGG = Family(
    build=_vgg,
    **{**CIFAR_INPUT, "min_size": 32},
    intro="""
        Conv3x3 - BN - ReLU stacks, a max pooling after each of the 5 stages,
        global average pooling and a Dense classifier.
    """,
)
_IMAGENET_VGG = Family(
    build=_vgg,
    **IMAGENET_INPUT,
    options=(
        Option(
            "dropout",
            0.0,
            "float in [0, 1). Dropout after fc1 and fc2, as in the paper (0.5); "
            "0 adds no layer, as keras.applications. Defaults to {default}.",
        ),
    ),
    intro="""
        Conv3x3 (with bias) - ReLU stacks without BN, a max pooling after each
        of the 5 stages, and keras.applications' head: Flatten, fc1 and fc2
        (4096 units, ReLU), a Dense classifier.
    """,
    top="The Flatten - fc1 - fc2 - classifier head. Its size depends on the "
    "input: 224x224 gives keras.applications' count.",
    example='model = create_model("{key}", erase="last", dropout=0.5)',
)


def _cifar(depth, config):
    return _CIFAR_VGG.variant(
        f"cifar_vgg{depth}_bn",
        f"VGG-{depth} (configuration {config}) with batch normalization, for CIFAR.",
        stages=CONFIGS[config],
        batch_norm=True,
    )


def _imagenet(depth, config):
    return _IMAGENET_VGG.variant(
        f"vgg{depth}",
        f"VGG-{depth} (configuration {config}) for ImageNet, as "
        f"keras.applications.VGG{depth}.",
        stages=CONFIGS[config],
        batch_norm=False,
    )


# One line each: the depth and the paper's configuration.
cifar_vgg11_bn = _cifar(11, "A")
cifar_vgg13_bn = _cifar(13, "B")
cifar_vgg16_bn = _cifar(16, "D")
cifar_vgg19_bn = _cifar(19, "E")
vgg16 = _imagenet(16, "D")
vgg19 = _imagenet(19, "E")
cifar_vgg_tiny = _CIFAR_VGG.replace(
    min_size=8, intro="Three stages, so inputs from 8x8."
).variant(
    "cifar_vgg_tiny",
    "A tiny VGG with BN for tests and demos: stages (8), (16), (32, 32).",
    stages=((8,), (16,), (32, 32)),
    batch_norm=True,
)
