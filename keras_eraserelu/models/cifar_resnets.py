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

from keras_eraserelu.core import check_bool, check_choice, check_int
from keras_eraserelu.models.builders import CIFAR_INPUT, Family, Option
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

DEPTH = Option("depth", doc="int. `6n + 2` for basic blocks, `9n + 2` for bottlenecks.")
BLOCK = Option(
    "block",
    "basic",
    'str. "basic" (3x3, 3x3) or "bottleneck" (1x1, 3x3, 1x1 with 4x '
    "expansion). Defaults to {default}.",
)
PREACT = Option(
    "preact",
    False,
    "bool. Pre-activation blocks (arXiv 1603.05027) instead of "
    "post-activation ones. Defaults to {default}.",
)
SHORTCUT = Option(
    "shortcut",
    None,
    'str or None. Where the shape changes: "A" zero-pads (no parameters), '
    '"B" projects with a 1x1 conv (+ BN in post-activation blocks). Defaults '
    'to {default}; None is "A" for basic blocks and "B" for bottlenecks, as '
    "in the papers.",
)


def _cifar_resnet(app, depth, block="basic", preact=False, shortcut=None):
    check_choice("block", block, BLOCK_CHOICES)
    per_n = _LAYERS_PER_N[block]
    check_int("depth", depth)
    if depth < per_n + 2 or (depth - 2) % per_n:
        raise ValueError(
            f"`depth` must be {per_n}n + 2 with n >= 1 for block={block!r} "
            f"(e.g. {per_n + 2}, {2 * per_n + 2}, {3 * per_n + 2}). "
            f"Received: depth={depth!r}."
        )
    check_bool("preact", preact)
    if shortcut is None:
        shortcut = "A" if block == "basic" else "B"
    check_choice("shortcut", shortcut, SHORTCUT_CHOICES)

    inputs, x = app.inputs()
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
    outputs = app.head(x)
    _allow_deep_graph(depth)
    name = f"cifar_{'preact_' if preact else ''}resnet{depth}"
    return app.finish(inputs, outputs, name)


def _allow_deep_graph(depth):
    # Keras walks a functional graph recursively, about one Python frame per
    # layer on the longest path (ResNet-1202 has 4,210 layers). Only raises
    # the interpreter's limit, never lowers it.
    needed = 10 * depth + 2000
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


def _preact_tiny(app, block, shortcut):
    check_choice("block", block, BLOCK_CHOICES)
    return _cifar_resnet(app, _LAYERS_PER_N[block] + 2, block, True, shortcut)


_CIFAR = Family(
    build=_cifar_resnet,
    **CIFAR_INPUT,
    intro="""
        Three stages of `n` blocks with 16, 32 and 64 filters (bottleneck
        outputs 64, 128, 256), strides 1, 2, 2, after a 3x3 conv with 16
        filters; global average pooling and a Dense classifier.

        Keras walks functional graphs recursively, about one Python frame per
        layer: for deep nets (ResNet-1202 has 4,210 layers) this raises the
        interpreter's recursion limit to `10 * depth + 2000` if it is lower.
    """,
)

cifar_resnet = _CIFAR.replace(
    example='model = cifar_resnet(depth=1001, block="bottleneck", preact=True)'
).generic(
    "cifar_resnet",
    "A CIFAR ResNet of any valid depth (not registered; for depth sweeps).",
    leading=(DEPTH, BLOCK, PREACT, SHORTCUT),
    name_doc="str or None. Model name. Defaults to None: `cifar_resnet{{depth}}` "
    "or `cifar_preact_resnet{{depth}}`.",
)

# The registered variants, one line each: depth, block, preact, summary. The
# shortcut defaults to "A" for basic blocks and "B" for bottlenecks.
_SHORTCUT_OPTION = _CIFAR.replace(options=(SHORTCUT,))


def _variant(depth, block, preact, summary):
    key = f"cifar_{'preact_' if preact else ''}resnet{depth}"
    default = {"shortcut": "A" if block == "basic" else "B"}
    return _SHORTCUT_OPTION.variant(
        key, summary, default, depth=depth, block=block, preact=preact
    )


# Post-activation, basic blocks (arXiv 1512.03385, table 6).
cifar_resnet8 = _variant(8, "basic", False, "Tiny ResNet-8 (n=1, 75K parameters).")
cifar_resnet20 = _variant(20, "basic", False, "ResNet-20 (n=3, 0.27M parameters).")
cifar_resnet32 = _variant(32, "basic", False, "ResNet-32 (n=5, 0.46M parameters).")
cifar_resnet44 = _variant(44, "basic", False, "ResNet-44 (n=7, 0.66M parameters).")
cifar_resnet56 = _variant(56, "basic", False, "ResNet-56 (n=9, 0.85M parameters).")
cifar_resnet110 = _variant(110, "basic", False, "ResNet-110 (n=18, 1.7M parameters).")
cifar_resnet1202 = _variant(1202, "basic", False, "ResNet-1202 (n=200, 19.4M).")
# Post-activation bottleneck (arXiv 1603.05027, table 3 baseline).
cifar_resnet164 = _variant(164, "bottleneck", False, "ResNet-164 (n=18, 1.7M).")
# Pre-activation (arXiv 1603.05027, tables 3 and 4).
cifar_preact_resnet110 = _variant(110, "basic", True, "Pre-act ResNet-110 (1.7M).")
cifar_preact_resnet164 = _variant(164, "bottleneck", True, "Pre-act ResNet-164 (1.7M).")
cifar_preact_resnet1001 = _variant(1001, "bottleneck", True, "Pre-act ResNet-1001.")
cifar_preact_resnet_tiny = _CIFAR.replace(
    build=_preact_tiny, options=(BLOCK, SHORTCUT)
).variant(
    "cifar_preact_resnet_tiny",
    "Tiny pre-activation ResNet (n=1: depth 11 bottleneck or 8 basic).",
    {"block": "bottleneck"},
)
