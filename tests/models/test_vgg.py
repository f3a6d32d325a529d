"""Tests of the VGG builders: counts, equivalence with keras.applications,
names, modules."""

import re

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from keras_eraserelu.models import create_model, list_models
from keras_eraserelu.models.vgg import CONFIGS

# Trainable parameters, default classes (ImageNet ones: keras.applications).
COUNTS = {
    "cifar_vgg11_bn": 9_228_362,
    "cifar_vgg13_bn": 9_413_066,
    "cifar_vgg16_bn": 14_724_042,
    "cifar_vgg19_bn": 20_035_018,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
}
SMALL = (32, 32, 3)
# At 32x32 the flattened features are 1x1x512 instead of 7x7x512: fc1 has
# 48 * 512 * 4096 weights fewer than at 224x224.
FC1_DIFFERENCE = 48 * 512 * 4096
COUNTER_NAME = re.compile(
    r"(.*_\d+|conv2d|batch_normalization|re_lu|activation|dense|flatten"
    r"|max_pooling2d|global_average_pooling2d|input_layer)(_\d+)?"
)


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def cifar_arithmetic(config, classes=10):
    """conv3x3 without bias + BN beta and gamma per conv, then a Dense."""
    total, channels = 0, 3
    for stage in config:
        for filters in stage:
            total += 9 * channels * filters + 2 * filters
            channels = filters
    return total + channels * classes + classes


def check_module_rule(model):
    """Modules end at the `stage{s}_pool` layers, in order; every site of a
    module is named after its stage; the fc ReLUs are head."""
    ends = [
        layer.name
        for layer in model.layers
        if re.fullmatch(r"stage\d+_pool", layer.name)
    ]
    plan = ker.plan_erasure(model)
    assert [m.name for m in plan.modules] == ends
    for site in plan.sites:
        if site.module is None:
            assert site.module_name == "head"
            assert site.name.startswith("head_fc")
        else:
            prefix = ends[site.module][: -len("_pool")]
            assert site.name.startswith(prefix + "_"), site.name
    last_relus = []  # the ReLU right before each pooling
    for end in ends:
        prefix = end[: -len("pool")]
        relus = [
            layer.name
            for layer in model.layers
            if isinstance(layer, keras.layers.ReLU) and layer.name.startswith(prefix)
        ]
        last_relus.append(relus[-1])
    assert [site.name for site in plan.erased] == last_relus
    return plan


def test_registry_names():
    assert set(COUNTS) | {"cifar_vgg_tiny"} <= set(list_models("*vgg*"))


@pytest.mark.parametrize(
    "name, config",
    [("cifar_vgg11_bn", "A"), ("cifar_vgg13_bn", "B"), ("cifar_vgg19_bn", "E")],
)
def test_cifar_counts(name, config):
    assert cifar_arithmetic(CONFIGS[config]) == COUNTS[name]
    model = create_model(name)
    assert trainable_count(model) == COUNTS[name]
    assert model.output_shape == (None, 10)


def test_cifar_vgg16_bn_counts_and_plan():
    assert cifar_arithmetic(CONFIGS["D"]) == COUNTS["cifar_vgg16_bn"]
    model = create_model("cifar_vgg16_bn", classes=100)
    assert trainable_count(model) == cifar_arithmetic(CONFIGS["D"], classes=100)
    assert model.get_layer("stage5_pool").output.shape == (None, 1, 1, 512)
    plan = check_module_rule(model)
    assert (len(plan.sites), len(plan.erased)) == (13, 5)


def test_cifar_vgg11_bn_module_rule():
    plan = check_module_rule(create_model("cifar_vgg11_bn"))
    assert [site.name for site in plan.erased] == [
        "stage1_conv1_relu",
        "stage2_conv1_relu",
        "stage3_conv2_relu",
        "stage4_conv2_relu",
        "stage5_conv2_relu",
    ]


@pytest.mark.parametrize("name, reference", [("vgg16", "VGG16"), ("vgg19", "VGG19")])
def test_imagenet_vgg_matches_keras_applications(name, reference):
    # Built at 32x32: the same layers, only fc1 is smaller (see FC1_DIFFERENCE).
    ours = create_model(name, input_shape=SMALL, classifier_activation=None)
    theirs = getattr(keras.applications, reference)(
        weights=None, input_shape=SMALL, classifier_activation=None
    )
    assert trainable_count(ours) + FC1_DIFFERENCE == COUNTS[name]
    assert trainable_count(theirs) == trainable_count(ours)
    source = [layer for layer in theirs.layers if layer.weights]
    target = [layer for layer in ours.layers if layer.weights]
    assert len(source) == len(target)
    for src, dst in zip(source, target, strict=True):
        dst.set_weights(src.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2, *SMALL)).astype("float32")
    expected = keras.ops.convert_to_numpy(theirs(x))
    np.testing.assert_allclose(ours(x), expected, rtol=1e-4, atol=1e-3)

    # The same ReLUs are erased: the last conv of every stage, not the fc ones.
    plan = check_module_rule(ours)
    theirs_plan = ker.plan_erasure(theirs)
    assert [(s.module, s.position, s.decision) for s in plan.sites] == [
        (s.module, s.position, s.decision) for s in theirs_plan.sites
    ]
    assert len(plan.erased) == 5


def test_vgg16_default_input_and_dropout():
    model = create_model("vgg16", include_top=False, pooling="max", dropout=0.5)
    assert model.input_shape == (None, 224, 224, 3)
    assert model.output_shape == (None, 512)
    model = create_model("vgg16", input_shape=SMALL, dropout=0.5, classes=7)
    assert model.get_layer("head_fc1_dropout").rate == 0.5
    assert model.output_shape == (None, 7)
    assert "head_fc1_dropout" not in [
        layer.name for layer in create_model("vgg19", input_shape=SMALL).layers
    ]


def test_tiny_forward_names_and_erase(images):
    model = create_model("cifar_vgg_tiny")
    assert model(images).shape == (2, 10)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert not [n for n in names if COUNTER_NAME.fullmatch(n)]
    assert not model.get_layer("stage3_conv2").use_bias
    plan = check_module_rule(model)
    assert len(plan.erased) == 3
    erased = create_model("cifar_vgg_tiny", erase="last")
    kinds = [site.kind for site in ker.find_relus(erased)]
    assert kinds.count("relu") == 1
    assert create_model("cifar_vgg_tiny", input_shape=(8, 8, 3)).output_shape == (
        None,
        10,
    )


def test_mixed_precision_output_is_float32(images):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = create_model("cifar_vgg_tiny")
        assert model.get_layer("stage1_conv1").compute_dtype == "float16"
        assert keras.backend.standardize_dtype(model(images).dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bad_options():
    with pytest.raises(ValueError, match=r"dropout=1\.0"):
        create_model("vgg16", dropout=1.0)
    with pytest.raises(TypeError, match="dropout='0.5'"):
        create_model("vgg19", dropout="0.5")
    with pytest.raises(TypeError, match="unexpected keyword argument 'dropout'"):
        create_model("cifar_vgg16_bn", dropout=0.5)
    with pytest.raises(ValueError, match="at least 32"):
        create_model("cifar_vgg11_bn", input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="pooling='sum'"):
        create_model("vgg16", include_top=False, pooling="sum")
