"""CIFAR residual networks, post-activation and pre-activation.

Post-activation: He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", 2016, arXiv 1512.03385, section 4.2 (6n+2 layers, basic blocks,
16/32/64 filters, option A or B shortcuts) and the 164-layer bottleneck net.
Pre-activation: He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual
Networks", 2016, arXiv 1603.05027 (ResNet-110, 164 and 1001 on CIFAR).

Where EraseReLU erases (the default plan, one ReLU per block):

- post-activation blocks (conv-BN-ReLU-conv-BN, Add, ReLU): the ReLU right
  after the addition, `<block>_out`;
- pre-activation blocks (BN-ReLU-conv, repeated, then Add): the ReLU in front
  of the last conv of the residual branch (`<block>_relu2` for basic blocks,
  `<block>_relu3` for bottlenecks); the block ends at the Add, `<block>_out`.

The stem and the head keep their ReLUs.

Layer names: `stem_conv`, `stage{s}_block{b}_conv{k}`, `..._bn{k}`,
`..._relu{k}`, `..._add`, `..._out`, `..._shortcut` (option A),
`..._shortcut_conv` / `..._shortcut_bn` (projections), `head_bn`,
`head_relu`, `head_pool`, `head_fc`. In pre-activation blocks `bn{k}` and
`relu{k}` come right before `conv{k}`; the shortcut of a block that changes
shape takes the pre-activated input (the output of `relu1`), an identity
shortcut the raw block input. Pre-activation projections are bias-free 1x1
convs with no BN, in the first block of every stage for bottlenecks (stage 1
goes from 16 to 64 channels): the variant with 1,703,258 (ResNet-164) and
10,327,706 (ResNet-1001) parameters. Stride-2 3x3 convs pad one pixel on
each side (`..._conv{k}_pad`), as in the reference implementations, so the
branch lines up with the shortcut's subsampling.

Convs are He-initialised; BN uses momentum 0.9 and epsilon 1e-5 (PyTorch's
defaults). Weight decay is left to the training code. The convs, BN, ReLUs,
shortcuts, blocks and stages live in `keras_eraserelu.models.cifar_blocks`
(their names stay importable from here).

Example:

```python
model = cifar_resnet56(erase="last")        # EraseReLU ResNet-56
model = cifar_resnet(depth=38, shortcut="B")  # any 6n+2 depth
```
"""

from __future__ import annotations

import sys

from keras_eraserelu.core import check_choice
from keras_eraserelu.models.cifar_blocks import (
    apply_basic_block,
    apply_bottleneck_block,
    apply_preact_basic_block,
    apply_preact_bottleneck_block,
    apply_stage,
    batch_norm,
    conv,
    relu,
)
from keras_eraserelu.models.common import (
    check_builder_args,
    classifier_head,
    finish_model,
    model_input,
)
from keras_eraserelu.models.registry import register_model

BLOCK_CHOICES = ("basic", "bottleneck")
SHORTCUT_CHOICES = ("A", "B")
STAGE_FILTERS = (16, 32, 64)
STAGE_STRIDES = (1, 2, 2)
_LAYERS_PER_N = {"basic": 6, "bottleneck": 9}  # 3 stages x convs per block

_BLOCKS = {
    ("basic", False): apply_basic_block,
    ("bottleneck", False): apply_bottleneck_block,
    ("basic", True): apply_preact_basic_block,
    ("bottleneck", True): apply_preact_bottleneck_block,
}


def cifar_resnet(
    depth,
    block="basic",
    preact=False,
    shortcut=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name=None,
    erase=None,
):
    """A CIFAR ResNet of any valid depth (not registered; for depth sweeps).

    Three stages of `n` blocks with 16, 32 and 64 filters (bottleneck
    outputs 64, 128, 256), strides 1, 2, 2, after a 3x3 conv with 16
    filters; global average pooling and a Dense classifier.

    Args:
        depth: int. `6n + 2` for basic blocks, `9n + 2` for bottlenecks.
        block: str. `"basic"` (3x3, 3x3) or `"bottleneck"` (1x1, 3x3, 1x1
            with 4x expansion). Defaults to `"basic"`.
        preact: bool. Pre-activation blocks (arXiv 1603.05027) instead of
            post-activation ones. Defaults to False.
        shortcut: str or None. Where the shape changes: `"A"` zero-pads
            (no parameters), `"B"` projects with a 1x1 conv (+ BN in
            post-activation blocks). Defaults to `"A"` for basic blocks and
            `"B"` for bottlenecks, as in the papers.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in `keras.applications`; `weights` is
            None or a local weights file. `input_shape` defaults to
            (32, 32, 3), `classes` to 10.
        name: str or None. Model name. Defaults to `cifar_resnet{depth}` or
            `cifar_preact_resnet{depth}`.
        erase: None, `"last"`, `"first"`, `"all"`, an int or a list of site
            names: which ReLUs to erase (see `keras_eraserelu.erase_relu`).

    Returns:
        A `keras.Model`.

    Keras walks functional graphs recursively, about one Python frame per
    layer: for deep nets (ResNet-1202 has 4,210 layers) this raises the
    interpreter's recursion limit to `10 * depth + 2000` if it is lower.

    Example:

    ```python
    model = cifar_resnet(depth=1001, block="bottleneck", preact=True)
    ```
    """
    check_builder_args(include_top, weights, pooling, classes, classifier_activation)
    check_choice("block", block, BLOCK_CHOICES)
    per_n = _LAYERS_PER_N[block]
    if (
        isinstance(depth, bool)
        or not isinstance(depth, int)
        or depth < per_n + 2
        or (depth - 2) % per_n
    ):
        raise ValueError(
            f"`depth` must be {per_n}n + 2 with n >= 1 for block={block!r} "
            f"(e.g. {per_n + 2}, {2 * per_n + 2}, {3 * per_n + 2}). "
            f"Received: depth={depth!r}."
        )
    if not isinstance(preact, bool):
        raise TypeError(f"`preact` must be a bool. Received: preact={preact!r}.")
    if shortcut is None:
        shortcut = "A" if block == "basic" else "B"
    check_choice("shortcut", shortcut, SHORTCUT_CHOICES)
    if name is None:
        name = f"cifar_{'preact_' if preact else ''}resnet{depth}"

    inputs, x = model_input(input_tensor, input_shape, default=(32, 32, 3), min_size=8)
    x = conv(x, STAGE_FILTERS[0], 3, 1, "stem_conv")
    if not preact:
        x = relu(batch_norm(x, "stem_bn"), "stem_relu")
    block_fn = _BLOCKS[(block, preact)]
    for stage, (filters, strides) in enumerate(zip(STAGE_FILTERS, STAGE_STRIDES)):
        x = apply_stage(
            x,
            filters,
            (depth - 2) // per_n,
            strides,
            block_fn,
            name=f"stage{stage + 1}",
            shortcut=shortcut,
        )
    if preact:
        x = relu(batch_norm(x, "head_bn"), "head_relu")
    outputs = classifier_head(x, include_top, pooling, classes, classifier_activation)
    _allow_deep_graph(depth)
    return finish_model(inputs, outputs, name, weights=weights, erase=erase)


def _allow_deep_graph(depth):
    # Keras walks a functional graph recursively, about one Python frame per
    # layer on the longest path (ResNet-1202 has 4,210 layers). Only raises
    # the interpreter's limit, never lowers it.
    needed = 10 * depth + 2000
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


# The registered builders pass their own arguments on: `**locals()` holds
# exactly the builder's keyword arguments when it is the first statement.


# Post-activation, basic blocks (arXiv 1512.03385, table 6).


@register_model
def cifar_resnet8(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_resnet8",
    erase=None,
    shortcut="A",
):
    """Tiny ResNet-8 (n=1, 75K parameters) for tests; see `cifar_resnet`."""
    return cifar_resnet(8, "basic", False, **locals())


@register_model
def cifar_resnet20(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_resnet20",
    erase=None,
    shortcut="A",
):
    """ResNet-20 (n=3, 0.27M parameters); see `cifar_resnet`."""
    return cifar_resnet(20, "basic", False, **locals())


@register_model
def cifar_resnet32(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_resnet32",
    erase=None,
    shortcut="A",
):
    """ResNet-32 (n=5, 0.46M parameters); see `cifar_resnet`."""
    return cifar_resnet(32, "basic", False, **locals())


@register_model
def cifar_resnet44(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_resnet44",
    erase=None,
    shortcut="A",
):
    """ResNet-44 (n=7, 0.66M parameters); see `cifar_resnet`."""
    return cifar_resnet(44, "basic", False, **locals())


@register_model
def cifar_resnet56(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_resnet56",
    erase=None,
    shortcut="A",
):
    """ResNet-56 (n=9, 0.85M parameters); see `cifar_resnet`."""
    return cifar_resnet(56, "basic", False, **locals())


@register_model
def cifar_resnet110(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_resnet110",
    erase=None,
    shortcut="A",
):
    """ResNet-110 (n=18, 1.7M parameters); see `cifar_resnet`."""
    return cifar_resnet(110, "basic", False, **locals())


@register_model
def cifar_resnet1202(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_resnet1202",
    erase=None,
    shortcut="A",
):
    """ResNet-1202 (n=200, 19.4M parameters); see `cifar_resnet`."""
    return cifar_resnet(1202, "basic", False, **locals())


# Post-activation bottleneck (arXiv 1603.05027, table 3 baseline).


@register_model
def cifar_resnet164(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_resnet164",
    erase=None,
    shortcut="B",
):
    """ResNet-164, bottleneck blocks (n=18, 1.7M parameters)."""
    return cifar_resnet(164, "bottleneck", False, **locals())


# Pre-activation (arXiv 1603.05027, tables 3 and 4).


@register_model
def cifar_preact_resnet_tiny(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_preact_resnet_tiny",
    erase=None,
    block="bottleneck",
    shortcut=None,
):
    """Tiny pre-activation ResNet (n=1: depth 11 bottleneck or 8 basic)."""
    options = dict(locals())
    check_choice("block", block, BLOCK_CHOICES)
    return cifar_resnet(_LAYERS_PER_N[block] + 2, preact=True, **options)


@register_model
def cifar_preact_resnet110(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_preact_resnet110",
    erase=None,
    shortcut="A",
):
    """Pre-activation ResNet-110, basic blocks (n=18, 1.7M parameters)."""
    return cifar_resnet(110, "basic", True, **locals())


@register_model
def cifar_preact_resnet164(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_preact_resnet164",
    erase=None,
    shortcut="B",
):
    """Pre-activation ResNet-164, bottlenecks (n=18, 1.7M parameters)."""
    return cifar_resnet(164, "bottleneck", True, **locals())


@register_model
def cifar_preact_resnet1001(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="cifar_preact_resnet1001",
    erase=None,
    shortcut="B",
):
    """Pre-activation ResNet-1001, bottlenecks (n=111, 10.3M parameters)."""
    return cifar_resnet(1001, "bottleneck", True, **locals())
