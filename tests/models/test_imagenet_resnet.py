"""Tests of the ImageNet ResNet builders: counts, structure, names, modules."""

import re

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from keras_eraserelu.models import create_model, list_models

# Trainable parameters with 1000 classes (torchvision's counts).
COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}
SMALL = (32, 32, 3)  # the counts do not depend on the input size
COUNTER_NAME = re.compile(
    r"(.*_\d+|conv2d|batch_normalization|re_lu|activation|add|dense"
    r"|max_pooling2d|global_average_pooling2d|input_layer)(_\d+)?"
)


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


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


@pytest.fixture(scope="module")
def resnet50_small():
    return create_model("resnet50", input_shape=(64, 64, 3))


def test_registry_names():
    assert set(COUNTS) | {"resnet_tiny"} <= set(list_models("resnet*"))


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet101", "resnet152"])
def test_counts(name):
    model = create_model(name, input_shape=SMALL)
    assert trainable_count(model) == COUNTS[name]
    assert model.output_shape == (None, 1000)


def test_resnet50_counts_and_plan(resnet50_small):
    assert trainable_count(resnet50_small) == COUNTS["resnet50"]
    plan = check_module_rule(resnet50_small)
    assert (len(plan.sites), len(plan.erased)) == (49, 16)
    assert plan.erased[0].name == "stage1_block1_out"
    assert plan.erased[-1].name == "stage4_block3_out"


def test_resnet50_structure_matches_keras_applications(resnet50_small):
    # keras.applications.ResNet50 (stride on the first 1x1, like ours by
    # default) has the same stages, blocks and shapes; its convs have biases.
    reference = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    for stage, blocks in enumerate((3, 4, 6, 3), start=1):
        for block in range(1, blocks + 1):
            ours = resnet50_small.get_layer(f"stage{stage}_block{block}_out")
            theirs = reference.get_layer(f"conv{stage + 1}_block{block}_out")
            assert ours.output.shape == theirs.output.shape
    conv_biases = sum(
        layer.filters
        for layer in reference.layers
        if isinstance(layer, keras.layers.Conv2D)
    )
    top = 2048 * 1000 + 1000
    assert trainable_count(reference) == COUNTS["resnet50"] - top + conv_biases
    assert len(ker.plan_erasure(reference).erased) == 16


def test_resnet18_module_rule():
    plan = check_module_rule(create_model("resnet18", input_shape=SMALL))
    assert (len(plan.sites), len(plan.erased)) == (17, 8)


def test_stride_on_and_zero_init_residual(resnet50_small):
    v1 = resnet50_small
    assert v1.get_layer("stage2_block1_conv1").strides == (2, 2)
    assert v1.get_layer("stage2_block1_conv2").strides == (1, 1)
    v15 = create_model(
        "resnet50",
        input_shape=(64, 64, 3),
        stride_on="conv2",
        zero_init_residual=True,
    )
    assert v15.get_layer("stage2_block1_conv1").strides == (1, 1)
    assert v15.get_layer("stage2_block1_conv2").strides == (2, 2)
    assert v15.get_layer("stage4_block3_out").output.shape == (None, 2, 2, 2048)
    assert trainable_count(v15) == trainable_count(v1)
    assert not np.any(v15.get_layer("stage3_block2_bn3").gamma.numpy())
    assert np.all(v15.get_layer("stage3_block2_bn2").gamma.numpy() == 1)


def test_tiny_forward_names_and_erase():
    model = create_model("resnet_tiny")
    assert model.input_shape == (None, 64, 64, 3)
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype("float32")
    assert model(x).shape == (2, 10)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert not [n for n in names if COUNTER_NAME.fullmatch(n)]
    assert model.get_layer("stem_pool").pool_size == (3, 3)
    assert not model.get_layer("stem_conv").use_bias
    plan = check_module_rule(model)
    assert len(plan.erased) == 4

    erased = create_model("resnet_tiny", erase="last")
    kinds = [site.kind for site in ker.find_relus(erased)]
    assert (kinds.count("relu"), len(kinds)) == (len(plan.sites) - 4, len(plan.sites))
    features = create_model("resnet_tiny", include_top=False, pooling="avg")
    assert features.output_shape == (None, 64)


def test_mixed_precision_output_is_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = create_model("resnet_tiny", input_shape=SMALL, classes=3)
        x = np.zeros((2, *SMALL), "float32")
        assert model.get_layer("stage1_block1_conv1").compute_dtype == "float16"
        assert keras.backend.standardize_dtype(model(x).dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bad_options():
    with pytest.raises(ValueError, match="stride_on='conv3'.*'conv1', 'conv2'"):
        create_model("resnet50", stride_on="conv3")
    with pytest.raises(TypeError, match="zero_init_residual='yes'"):
        create_model("resnet18", zero_init_residual="yes")
    with pytest.raises(ValueError, match="classes=0"):
        create_model("resnet_tiny", classes=0)
    with pytest.raises(ValueError, match="at least 32"):
        create_model("resnet18", input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="pooling='mean'"):
        create_model("resnet18", include_top=False, pooling="mean")
