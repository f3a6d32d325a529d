"""Tests of the ResNeXt builders: counts, widths, names, modules."""

import re

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from keras_eraserelu.models import create_model, list_models

# Trainable parameters with 10 classes (34.4M and 68.2M in the paper).
COUNTS = {"resnext29_8x64d": 34_426_698, "resnext29_16x64d": 68_155_210}
COUNTER_NAME = re.compile(
    r"(.*_\d+|conv2d|batch_normalization|re_lu|activation|add|dense"
    r"|global_average_pooling2d|input_layer)(_\d+)?"
)


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def resnext_arithmetic(cardinality, width, classes=10):
    """The count of the width convention, independent of the builder: stage s
    has grouped width C * d * 2^s and output 256 * 2^s."""

    def conv(k, c_in, c_out, groups=1):
        return k * k * (c_in // groups) * c_out + 2 * c_out  # + BN beta, gamma

    total, channels = conv(3, 3, 64), 64
    for stage in range(3):
        inner, out = cardinality * width * 2**stage, 256 * 2**stage
        for _ in range(3):
            total += conv(1, channels, inner) + conv(3, inner, inner, cardinality)
            total += conv(1, inner, out)
            if channels != out:
                total += conv(1, channels, out)
            channels = out
    return total + channels * classes + classes


def check_module_rule(model):
    """Modules end at the `<block>_out` layers, in order, and every site of a
    module is named after its block."""
    ends = [layer.name for layer in model.layers if layer.name.endswith("_out")]
    plan = ker.plan_erasure(model)
    assert [m.name for m in plan.modules] == ends
    for site in plan.sites:
        if site.module is None:
            assert site.module_name in ("stem", "head")
            assert site.name.startswith(site.module_name + "_")
        else:
            prefix = ends[site.module][: -len("_out")]
            assert site.name.startswith(prefix + "_"), site.name
    assert [site.name for site in plan.erased] == ends
    return plan


def test_registry_names():
    assert set(COUNTS) | {"resnext_tiny"} <= set(list_models("resnext*"))


def test_width_convention_gives_the_table():
    assert resnext_arithmetic(8, 64) == COUNTS["resnext29_8x64d"]
    assert resnext_arithmetic(16, 64) == COUNTS["resnext29_16x64d"]


def test_resnext29_8x64d_counts_widths_and_plan():
    model = create_model("resnext29_8x64d", input_shape=(16, 16, 3))
    assert trainable_count(model) == COUNTS["resnext29_8x64d"]
    grouped = model.get_layer("stage2_block1_conv2")
    assert (grouped.filters, grouped.groups, grouped.strides) == (1024, 8, (2, 2))
    assert model.get_layer("stage3_block3_conv3").filters == 1024
    assert model.get_layer("stage1_block1_shortcut_conv").filters == 256
    names = {layer.name for layer in model.layers}
    assert "stage1_block2_shortcut_conv" not in names
    plan = check_module_rule(model)
    assert (len(plan.sites), len(plan.erased)) == (28, 9)


def test_resnext29_16x64d_counts():
    model = create_model("resnext29_16x64d", input_shape=(16, 16, 3), classes=100)
    assert trainable_count(model) == resnext_arithmetic(16, 64, classes=100)
    assert model.get_layer("stage1_block1_conv2").groups == 16


def test_tiny_forward_names_and_erase(images):
    model = create_model("resnext_tiny")
    assert model.input_shape == (None, 32, 32, 3)
    assert model(images).shape == (2, 10)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert not [n for n in names if COUNTER_NAME.fullmatch(n)]
    assert model.get_layer("stage3_block1_out").output.shape == (None, 8, 8, 128)
    plan = check_module_rule(model)
    assert len(plan.erased) == 3

    erased = create_model("resnext_tiny", erase="last")
    kinds = [site.kind for site in ker.find_relus(erased)]
    assert kinds.count("relu") == len(plan.sites) - 3
    # Erasing changes the function, not the weights.
    erased.set_weights(model.get_weights())
    assert not np.allclose(erased(images), model(images))


def test_stride_on_and_zero_init_residual():
    model = create_model(
        "resnext_tiny", stride_on="conv1", zero_init_residual=True, classes=3
    )
    assert model.get_layer("stage2_block1_conv1").strides == (2, 2)
    assert model.get_layer("stage2_block1_conv2").strides == (1, 1)
    assert not np.any(model.get_layer("stage2_block1_bn3").gamma.numpy())
    assert model.output_shape == (None, 3)


def test_mixed_precision_output_is_float32(images):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = create_model("resnext_tiny")
        assert model.get_layer("stage1_block1_conv2").compute_dtype == "float16"
        assert keras.backend.standardize_dtype(model(images).dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bad_options():
    with pytest.raises(ValueError, match="stride_on='3x3'.*'conv1', 'conv2'"):
        create_model("resnext29_8x64d", stride_on="3x3")
    with pytest.raises(TypeError, match="zero_init_residual=1"):
        create_model("resnext29_16x64d", zero_init_residual=1)
    with pytest.raises(ValueError, match="at least 8"):
        create_model("resnext_tiny", input_shape=(4, 4, 3))
    with pytest.raises(ValueError, match="Unknown erase="):
        create_model("resnext_tiny", erase=1.5)
