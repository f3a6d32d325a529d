"""Wide residual networks for CIFAR.

Zagoruyko, Komodakis, "Wide Residual Networks", 2016, arXiv 1605.07146.
WRN-d-k: a 3x3 conv with 16 filters, three stages of n = (d - 4) / 6
pre-activation basic blocks with 16k, 32k and 64k filters (strides 1, 2, 2),
optional dropout between the two convs of a block, BN-ReLU, global average
pooling and a Dense classifier. A block that changes shape has a bias-free
1x1 conv shortcut on the pre-activated input.

Where EraseReLU erases (the default plan, one ReLU per block): the ReLU in
front of the last conv of the residual branch, `<block>_relu2` (before the
dropout, when there is one); the block ends at the Add, `<block>_out`. The
stem and the head keep their ReLUs.

Layer names follow `keras_eraserelu.models.cifar_resnets`: `stem_conv`,
`stage{s}_block{b}_bn{k}` / `_relu{k}` / `_conv{k}`, `..._dropout`,
`..._shortcut_conv`, `..._out`, `head_bn`, `head_relu`, `head_pool`,
`head_fc`.

Example:

```python
model = wrn28_10(dropout_rate=0.3, erase="last")
model = wide_resnet(depth=22, width=4)   # any 6n+4 depth
```
"""

from __future__ import annotations

from keras_eraserelu.core import check_int, check_number
from keras_eraserelu.models.builders import CIFAR_INPUT, Family, Option
from keras_eraserelu.models.cifar_blocks import (
    apply_preact_basic_block,
    apply_stage,
    batch_norm,
    conv,
    relu,
)

STAGE_FILTERS = (16, 32, 64)
STAGE_STRIDES = (1, 2, 2)

DEPTH = Option("depth", doc="int. `6n + 4` with n >= 1 blocks per stage.")
WIDTH = Option(
    "width", doc="int. Widening factor k: the stages have 16k, 32k, 64k filters."
)
DROPOUT_RATE = Option(
    "dropout_rate",
    0.0,
    "float in [0, 1). Dropout between the two convs of each block; 0 leaves "
    "the Dropout layers out. Defaults to {default}.",
)


def _wide_resnet(app, depth, width, dropout_rate=0.0):
    check_int("depth", depth)
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(
            "`depth` must be 6n + 4 with n >= 1 (e.g. 10, 16, 22, 28, 40). "
            f"Received: depth={depth!r}."
        )
    check_int("width", width, minimum=1)
    check_number("dropout_rate", dropout_rate, 0, 1, open_high=True)

    inputs, x = app.inputs()
    x = conv(x, STAGE_FILTERS[0], 3, 1, "stem_conv")
    for stage, (filters, strides) in enumerate(zip(STAGE_FILTERS, STAGE_STRIDES)):
        x = apply_stage(
            x,
            filters * width,
            (depth - 4) // 6,
            strides,
            apply_preact_basic_block,
            name=f"stage{stage + 1}",
            shortcut="B",
            dropout_rate=dropout_rate,
        )
    x = relu(batch_norm(x, "head_bn"), "head_relu")
    return app.finish(inputs, app.head(x), f"wrn{depth}_{width}")


_WRN = Family(
    build=_wide_resnet,
    **CIFAR_INPUT,
    options=(DROPOUT_RATE,),
    example='model = create_model("{key}", dropout_rate=0.3, erase="last")',
)

wide_resnet = _WRN.replace(
    options=(),
    example="model = wide_resnet(depth=16, width=4, dropout_rate=0.3, classes=100)",
).generic(
    "wide_resnet",
    "A WRN-`depth`-`width` (not registered; for depth and width sweeps).",
    leading=(DEPTH, WIDTH, DROPOUT_RATE),
    name_doc="str or None. Model name. Defaults to None: `wrn{{depth}}_{{width}}`.",
)


def _variant(depth, width, summary):
    return _WRN.variant(f"wrn{depth}_{width}", summary, depth=depth, width=width)


# One line each: depth d and widening factor k (arXiv 1605.07146).
wrn10_1 = _variant(10, 1, "Tiny WRN-10-1 (n=1, 78K parameters) for tests.")
wrn16_8 = _variant(16, 8, "WRN-16-8 (n=2, 11.0M parameters).")
wrn28_10 = _variant(28, 10, "WRN-28-10 (n=4, 36.5M parameters).")
wrn40_4 = _variant(40, 4, "WRN-40-4 (n=6, 8.9M parameters).")
