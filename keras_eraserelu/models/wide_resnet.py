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

from keras_eraserelu.models.cifar_blocks import (
    apply_preact_basic_block,
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

STAGE_FILTERS = (16, 32, 64)
STAGE_STRIDES = (1, 2, 2)


def wide_resnet(
    depth,
    width,
    dropout_rate=0.0,
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
    """A WRN-`depth`-`width` (not registered; for depth and width sweeps).

    Args:
        depth: int. `6n + 4` with n >= 1 blocks per stage.
        width: int. Widening factor k: the stages have 16k, 32k, 64k filters.
        dropout_rate: float in [0, 1). Dropout between the two convs of each
            block; 0 leaves the Dropout layers out. Defaults to 0.0.
        include_top, weights, input_tensor, input_shape, pooling, classes,
            classifier_activation: as in `keras.applications`; `weights` is
            None or a local weights file. `input_shape` defaults to
            (32, 32, 3), `classes` to 10.
        name: str or None. Model name. Defaults to `wrn{depth}_{width}`.
        erase: None, `"last"`, `"first"`, `"all"`, an int or a list of site
            names: which ReLUs to erase (see `keras_eraserelu.erase_relu`).

    Returns:
        A `keras.Model`.

    Example:

    ```python
    model = wide_resnet(depth=16, width=4, dropout_rate=0.3, classes=100)
    ```
    """
    check_builder_args(include_top, weights, pooling, classes, classifier_activation)
    if (
        isinstance(depth, bool)
        or not isinstance(depth, int)
        or depth < 10
        or (depth - 4) % 6
    ):
        raise ValueError(
            "`depth` must be 6n + 4 with n >= 1 (e.g. 10, 16, 22, 28, 40). "
            f"Received: depth={depth!r}."
        )
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(
            f"`width` must be a positive int (the widening factor k). "
            f"Received: width={width!r}."
        )
    if (
        isinstance(dropout_rate, bool)
        or not isinstance(dropout_rate, (int, float))
        or not 0 <= dropout_rate < 1
    ):
        raise ValueError(
            "`dropout_rate` must be a number in [0, 1). "
            f"Received: dropout_rate={dropout_rate!r}."
        )
    if name is None:
        name = f"wrn{depth}_{width}"

    inputs, x = model_input(input_tensor, input_shape, default=(32, 32, 3), min_size=8)
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
    outputs = classifier_head(x, include_top, pooling, classes, classifier_activation)
    return finish_model(inputs, outputs, name, weights=weights, erase=erase)


# The registered builders pass their own arguments on: `**locals()` holds
# exactly the builder's keyword arguments when it is the first statement.


@register_model
def wrn10_1(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="wrn10_1",
    erase=None,
    dropout_rate=0.0,
):
    """Tiny WRN-10-1 (n=1, 78K parameters) for tests; see `wide_resnet`."""
    return wide_resnet(10, 1, **locals())


@register_model
def wrn16_8(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="wrn16_8",
    erase=None,
    dropout_rate=0.0,
):
    """WRN-16-8 (n=2, 11.0M parameters); see `wide_resnet`."""
    return wide_resnet(16, 8, **locals())


@register_model
def wrn28_10(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="wrn28_10",
    erase=None,
    dropout_rate=0.0,
):
    """WRN-28-10 (n=4, 36.5M parameters); see `wide_resnet`."""
    return wide_resnet(28, 10, **locals())


@register_model
def wrn40_4(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="wrn40_4",
    erase=None,
    dropout_rate=0.0,
):
    """WRN-40-4 (n=6, 8.9M parameters); see `wide_resnet`."""
    return wide_resnet(40, 4, **locals())
