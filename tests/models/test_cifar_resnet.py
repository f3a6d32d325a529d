"""Tests of the CIFAR ResNet builders (post- and pre-activation) and of the
option-A shortcut layer: counts, names, modules, erasure, options."""

import os
import re

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from keras_eraserelu.models import create_model, list_models
from keras_eraserelu.models.cifar_resnets import cifar_resnet
from keras_eraserelu.models.layers import ZeroPadShortcut

# Trainable parameters with 10 classes.
COUNTS = {
    "cifar_resnet20": 269_722,
    "cifar_resnet56": 853_018,
    "cifar_resnet110": 1_727_962,
    "cifar_resnet164": 1_704_154,
    "cifar_preact_resnet164": 1_703_258,
}
# 5-15 s each to build here: checked through the count formula below, and
# built only when KERAS_ERASERELU_BIG=1.
BIG_COUNTS = {
    "cifar_resnet1202": (1202, "basic", False, 19_421_274),
    "cifar_preact_resnet1001": (1001, "bottleneck", True, 10_327_706),
}


def trainable_count(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def formula_count(depth, block, preact, classes=10):
    """Parameters of the default variant, counted by hand: bias-free convs,
    BN (2 per channel), option-A basic blocks, projections (post-activation:
    conv + BN; pre-activation: bias-free conv) in the first bottleneck of
    every stage, stem BN only in post-activation nets, head BN only in
    pre-activation ones."""
    per_n = 6 if block == "basic" else 9
    n = (depth - 2) // per_n
    total = 27 * 16 + (0 if preact else 32)
    channels = 16
    for width in (16, 32, 64):
        for index in range(n):
            if block == "basic":
                convs = [(3, channels, width), (3, width, width)]
                out = width
            else:
                out = 4 * width
                convs = [(1, channels, width), (3, width, width), (1, width, out)]
            for k, c_in, c_out in convs:
                total += k * k * c_in * c_out
                total += 2 * (c_in if preact else c_out)
            if block == "bottleneck" and index == 0:
                total += channels * out + (0 if preact else 2 * out)
            channels = out
    return total + (2 * channels if preact else 0) + channels * classes + classes


def names(model):
    return [layer.name for layer in model.layers]


def check_module_rule(model):
    """Modules end at the `<block>_out` layers, in order, every site of a
    module is named after its block, and one ReLU per block is erased."""
    ends = [name for name in names(model) if name.endswith("_out")]
    plan = ker.plan_erasure(model)
    assert [m.name for m in plan.modules] == ends
    for site in plan.sites:
        if site.module is not None:
            assert site.name.startswith(ends[site.module][: -len("_out")] + "_")
    assert len(plan.erased) == len(ends)
    return plan


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts(name):
    assert trainable_count(create_model(name)) == COUNTS[name]


@pytest.mark.parametrize(
    "depth, block, preact",
    [
        (8, "basic", False),
        (20, "basic", False),
        (11, "bottleneck", False),
        (8, "basic", True),
        (20, "basic", True),
        (11, "bottleneck", True),
        (20, "bottleneck", True),
    ],
)
def test_count_formula_matches_built_models(depth, block, preact):
    model = cifar_resnet(depth, block, preact)
    assert trainable_count(model) == formula_count(depth, block, preact)


def test_count_formula_gives_the_table_for_the_big_models():
    for depth, block, preact, count in BIG_COUNTS.values():
        assert formula_count(depth, block, preact) == count
    assert formula_count(164, "bottleneck", True) == COUNTS["cifar_preact_resnet164"]
    assert formula_count(110, "basic", False) == COUNTS["cifar_resnet110"]


@pytest.mark.skipif(
    os.environ.get("KERAS_ERASERELU_BIG") != "1",
    reason="5-15 s per build; set KERAS_ERASERELU_BIG=1",
)
@pytest.mark.parametrize("name", sorted(BIG_COUNTS))
def test_big_parameter_counts(name):
    assert trainable_count(create_model(name)) == BIG_COUNTS[name][-1]


def test_registry_names():
    assert list_models("cifar_resnet*") == [
        "cifar_resnet110",
        "cifar_resnet1202",
        "cifar_resnet164",
        "cifar_resnet20",
        "cifar_resnet32",
        "cifar_resnet44",
        "cifar_resnet56",
        "cifar_resnet8",
    ]
    assert list_models("cifar_preact_*") == [
        "cifar_preact_resnet1001",
        "cifar_preact_resnet110",
        "cifar_preact_resnet164",
        "cifar_preact_resnet_tiny",
    ]


SMALLEST = {
    "post_basic": (lambda **kw: create_model("cifar_resnet8", **kw), "out"),
    "post_basic_B": (lambda **kw: cifar_resnet(8, shortcut="B", **kw), "out"),
    "post_bottleneck": (lambda **kw: cifar_resnet(11, "bottleneck", **kw), "out"),
    "preact_basic": (lambda **kw: cifar_resnet(8, preact=True, **kw), "relu2"),
    "preact_bottleneck": (
        lambda **kw: create_model("cifar_preact_resnet_tiny", **kw),
        "relu3",
    ),
}


@pytest.mark.parametrize("family", sorted(SMALLEST))
def test_names_modules_and_erased_sites(family):
    build, erased_suffix = SMALLEST[family]
    model = build()
    layer_names = names(model)
    assert len(layer_names) == len(set(layer_names))
    assert not [n for n in layer_names if re.search(r"_\d+$", n)]
    plan = check_module_rule(model)
    assert [site.name for site in plan.erased] == [
        f"stage{s}_block1_{erased_suffix}" for s in (1, 2, 3)
    ]
    erased = build(erase="last")
    assert [s.name for s in ker.plan_erasure(erased).erased_before] == [
        s.name for s in plan.erased
    ]


def test_depth_20_erases_one_relu_per_block():
    plan = check_module_rule(create_model("cifar_resnet20"))
    assert len(plan.modules) == 9
    assert [s.name for s in plan.erased][:4] == [
        "stage1_block1_out",
        "stage1_block2_out",
        "stage1_block3_out",
        "stage2_block1_out",
    ]


def test_preact_shortcut_takes_the_preactivated_input():
    model = create_model("cifar_preact_resnet_tiny")
    shortcut = model.get_layer("stage2_block1_shortcut_conv")
    assert shortcut.input is model.get_layer("stage2_block1_relu1").output
    basic = cifar_resnet(14, preact=True)  # identity shortcut in block 2
    add = basic.get_layer("stage1_block2_out")
    assert any(t is basic.get_layer("stage1_block1_out").output for t in add.input)


@pytest.mark.parametrize("preact", [False, True])
def test_forward_under_mixed_precision(preact, images):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = cifar_resnet(8, preact=preact, classes=5)
        outputs = model(images)
        assert outputs.shape == (2, 5)
        assert outputs.dtype == "float32"
        np.testing.assert_allclose(np.asarray(outputs).sum(axis=1), 1.0, rtol=1e-3)
    finally:
        keras.config.set_dtype_policy("float32")


def test_feature_outputs_and_odd_input_sizes():
    model = create_model("cifar_resnet8", include_top=False)
    assert model.output.shape == (None, 8, 8, 64)
    pooled = create_model("cifar_preact_resnet_tiny", include_top=False, pooling="max")
    assert pooled.output.shape == (None, 256)
    for shortcut in ("A", "B"):
        for preact in (False, True):
            odd = cifar_resnet(
                8, preact=preact, shortcut=shortcut, input_shape=(33, 33, 3)
            )
            assert odd.output.shape == (None, 10)


def test_shortcut_b_adds_projections():
    model = create_model("cifar_resnet8", shortcut="B")
    assert "stage2_block1_shortcut_conv" in names(model)
    assert "stage2_block1_shortcut_bn" in names(model)
    # 16->32 and 32->64 1x1 convs with BN.
    extra = 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
    assert trainable_count(model) == formula_count(8, "basic", False) + extra


def test_zero_pad_shortcut_values_and_config():
    layer = ZeroPadShortcut(5, strides=2, name="shortcut")
    inputs = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape((2, 4, 4, 3))
    outputs = np.asarray(layer(inputs))
    assert outputs.shape == (2, 2, 2, 5)
    np.testing.assert_array_equal(outputs[..., :3], inputs[:, ::2, ::2, :])
    np.testing.assert_array_equal(outputs[..., 3:], 0.0)
    assert not layer.weights
    clone = ZeroPadShortcut.from_config(layer.get_config())
    assert (clone.filters, clone.strides, clone.name) == (5, 2, "shortcut")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("size, strides", [((4, 4), 2), ((5, 7), 2), ((7, 5), 3)])
def test_zero_pad_shortcut_and_its_gradient_match_numpy(size, strides, dtype):
    """Odd sizes keep the first row/column (ceil(size / strides) outputs);
    the gradient goes to the kept positions only, bit for bit."""
    import tensorflow as tf

    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, *size, 3)).astype("float32")
    layer = ZeroPadShortcut(5, strides=strides, dtype=dtype)
    expected = np.pad(x[:, ::strides, ::strides], [(0, 0)] * 3 + [(0, 2)])
    cotangent = rng.normal(size=expected.shape).astype("float32")
    expected_grad = np.zeros_like(x)
    expected_grad[:, ::strides, ::strides] = cotangent[..., :3]
    inputs = tf.cast(x, dtype)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
        loss = tf.reduce_sum(tf.cast(outputs, "float32") * cotangent)
    grad = tape.gradient(loss, inputs)
    assert outputs.dtype == dtype
    # bfloat16 keeps 8 bits: compare with the inputs rounded the same way.
    rounded = np.asarray(tf.cast(tf.cast(expected, dtype), "float32"))
    np.testing.assert_array_equal(np.asarray(tf.cast(outputs, "float32")), rounded)
    rounded_grad = np.asarray(tf.cast(tf.cast(expected_grad, dtype), "float32"))
    np.testing.assert_array_equal(np.asarray(tf.cast(grad, "float32")), rounded_grad)


def test_zero_pad_shortcut_subsamples_without_strided_slices():
    """StridedSlice and its gradient cost 3-4x a 1x1 pooling's kernels
    (benchmarks/bench_shortcut.py): keep them out of the traced step."""
    import tensorflow as tf

    layer = ZeroPadShortcut(32, strides=2)
    x = tf.ones((2, 8, 8, 16))

    def step(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            outputs = layer(t)
        return tape.gradient(outputs, t)

    graph = tf.function(step).get_concrete_function(x).graph
    types = {op.type for op in graph.get_operations()}
    assert "AvgPool" in types and "AvgPoolGrad" in types
    assert not types & {"StridedSlice", "StridedSliceGrad"}


def test_model_with_option_a_saves_and_loads(tmp_path, images):
    model = create_model("cifar_resnet8", erase="last")
    path = str(tmp_path / "resnet8.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("stage2_block1_shortcut"), ZeroPadShortcut)
    np.testing.assert_allclose(loaded(images), model(images), rtol=1e-5, atol=1e-6)


def test_zero_pad_shortcut_errors():
    with pytest.raises(ValueError, match="`filters` must be an int >= 1. Received"):
        ZeroPadShortcut(0)
    with pytest.raises(TypeError, match="`strides` must be an int >= 1. Received"):
        ZeroPadShortcut(8, strides=True)
    with pytest.raises(ValueError, match="must be at least the"):
        ZeroPadShortcut(2)(keras.Input((4, 4, 3)))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"depth": 21}, ValueError, r"6n \+ 2 .* Received: depth=21"),
        ({"depth": 32, "block": "bottleneck"}, ValueError, r"9n \+ 2"),
        ({"depth": 2}, ValueError, "n >= 1"),
        ({"depth": 20.0}, TypeError, "`depth` must be an int. Received: depth=20.0"),
        ({"depth": 20, "block": "bottle"}, ValueError, "Did you mean 'bottleneck'"),
        ({"depth": 20, "shortcut": "C"}, ValueError, r"Unknown shortcut='C'"),
        ({"depth": 20, "preact": "yes"}, TypeError, "`preact` must be a bool"),
        ({"depth": 20, "pooling": "sum"}, ValueError, "pooling"),
        ({"depth": 20, "input_shape": (4, 4, 3)}, ValueError, "at least 8"),
    ],
)
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        cifar_resnet(**kwargs)


def test_registered_builders_check_their_options():
    with pytest.raises(ValueError, match="Unknown shortcut='a'"):
        create_model("cifar_resnet20", shortcut="a")
    with pytest.raises(ValueError, match="Unknown block='wide'"):
        create_model("cifar_preact_resnet_tiny", block="wide")
    with pytest.raises(TypeError, match="unexpected keyword argument 'depth'"):
        create_model("cifar_resnet20", depth=32)
