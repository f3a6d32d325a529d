"""Tests of the Wide ResNet builders: counts, names, modules, dropout,
erasure, options."""

import re

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from keras_eraserelu.models import create_model, list_models
from keras_eraserelu.models.wide_resnet import wide_resnet

# Trainable parameters with 10 classes.
COUNTS = {
    "wrn16_8": 10_961_370,
    "wrn28_10": 36_479_194,
    "wrn40_4": 8_949_210,
}


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def formula_count(depth, width, classes=10):
    """Bias-free convs, a BN in front of every block conv and of the head, a
    bias-free 1x1 shortcut conv where the channels change."""
    total, channels = 27 * 16, 16
    for filters in (16 * width, 32 * width, 64 * width):
        for _ in range((depth - 4) // 6):
            total += 2 * channels + 9 * channels * filters
            total += 2 * filters + 9 * filters * filters
            if channels != filters:
                total += channels * filters
            channels = filters
    return total + 2 * channels + channels * classes + classes


def names(model):
    return [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts(name):
    depth, width = (int(part) for part in name[3:].split("_"))
    assert formula_count(depth, width) == COUNTS[name]
    assert trainable_count(create_model(name)) == COUNTS[name]


@pytest.mark.parametrize("depth, width", [(10, 1), (10, 2), (16, 1)])
def test_count_formula_matches_small_models(depth, width):
    model = wide_resnet(depth, width)
    assert model.name == f"wrn{depth}_{width}"
    assert trainable_count(model) == formula_count(depth, width)


def test_registry_names():
    assert list_models("wrn*") == ["wrn10_1", "wrn16_8", "wrn28_10", "wrn40_4"]


@pytest.mark.parametrize("dropout_rate", [0.0, 0.3])
def test_names_modules_and_erased_sites(dropout_rate):
    model = create_model("wrn10_1", dropout_rate=dropout_rate)
    layer_names = names(model)
    assert len(layer_names) == len(set(layer_names))
    assert not [n for n in layer_names if re.search(r"_\d+$", n)]
    assert ("stage1_block1_dropout" in layer_names) == (dropout_rate > 0)

    ends = [n for n in layer_names if n.endswith("_out")]
    assert ends == [f"stage{s}_block1_out" for s in (1, 2, 3)]
    plan = ker.plan_erasure(model)
    assert [m.name for m in plan.modules] == ends
    for site in plan.sites:
        if site.module is not None:
            assert site.name.startswith(ends[site.module][: -len("_out")] + "_")
    assert [s.name for s in plan.erased] == [
        f"stage{s}_block1_relu2" for s in (1, 2, 3)
    ]
    assert [s.name for s in plan.kept][-1] == "head_relu"

    erased = create_model("wrn10_1", dropout_rate=dropout_rate, erase="last")
    assert [s.name for s in ker.plan_erasure(erased).erased_before] == [
        s.name for s in plan.erased
    ]


def test_wide_first_stage_projects_the_preactivated_input():
    model = wide_resnet(10, 2)
    shortcut = model.get_layer("stage1_block1_shortcut_conv")
    assert shortcut.input is model.get_layer("stage1_block1_relu1").output
    assert shortcut.use_bias is False
    plan = ker.plan_erasure(model)
    assert len(plan.erased) == len(plan.modules) == 3


def test_forward_under_mixed_precision(images):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = create_model("wrn10_1", dropout_rate=0.3, classes=4)
        outputs = model(images, training=True)
        assert outputs.shape == (2, 4)
        assert outputs.dtype == "float32"
        np.testing.assert_allclose(np.asarray(outputs).sum(axis=1), 1.0, rtol=1e-3)
    finally:
        keras.config.set_dtype_policy("float32")


def test_feature_output():
    model = create_model("wrn10_1", include_top=False, input_shape=(16, 16, 3))
    assert model.output.shape == (None, 4, 4, 64)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"depth": 12, "width": 2}, ValueError, r"6n \+ 4 .* Received: depth=12"),
        ({"depth": 4, "width": 2}, ValueError, "n >= 1"),
        ({"depth": 10, "width": 0}, ValueError, "Received: width=0"),
        ({"depth": 10, "width": 2.5}, TypeError, "`width` must be an int >= 1"),
        (
            {"depth": 10, "width": 1, "dropout_rate": 1.0},
            ValueError,
            r"\[0, 1\). Received: dropout_rate=1.0",
        ),
        (
            {"depth": 10, "width": 1, "dropout_rate": "0.3"},
            TypeError,
            "`dropout_rate` must be a number in",
        ),
        ({"depth": 10, "width": 1, "classes": 0}, ValueError, "classes"),
    ],
)
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        wide_resnet(**kwargs)


def test_registered_builder_checks_dropout():
    with pytest.raises(ValueError, match="dropout_rate=-0.1"):
        create_model("wrn16_8", dropout_rate=-0.1)
