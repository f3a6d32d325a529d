"""erase_relu: the clone is the erased network, weights kept, input untouched."""

import json

import keras
import numpy as np
import pytest
from keras import layers, ops

import keras_eraserelu as ker


def residual_net(erased=(), blocks=2, fused_stem=False):
    """A small post-activation residual net built by hand.

    Names in `erased` are built as linear (Identity / activation=None), which
    gives the reference for what `erase_relu` must produce.
    """

    def act(name):
        return layers.Identity(name=name) if name in erased else layers.ReLU(name=name)

    inputs = keras.Input((16, 16, 3), name="image")
    stem_activation = None if "stem_conv" in erased else "relu"
    x = layers.Conv2D(
        8,
        3,
        padding="same",
        name="stem_conv",
        activation=stem_activation if fused_stem else None,
    )(inputs)
    if not fused_stem:
        x = act("stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    for b in range(1, blocks + 1):
        y = layers.Conv2D(8, 3, padding="same", use_bias=False, name=f"b{b}_conv1")(x)
        y = act(f"b{b}_relu1")(layers.BatchNormalization(name=f"b{b}_bn1")(y))
        y = layers.Conv2D(8, 3, padding="same", use_bias=False, name=f"b{b}_conv2")(y)
        y = layers.BatchNormalization(name=f"b{b}_bn2")(y)
        x = act(f"b{b}_out")(layers.Add(name=f"b{b}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(8, activation=None if "fc" in erased else "relu", name="fc")(x)
    return keras.Model(inputs, layers.Dense(3, name="logits")(x), name="resnet")


def _randomize_bn(model):
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_mean.assign(np.random.rand(*layer.moving_mean.shape) - 0.5)
            layer.moving_variance.assign(
                np.random.rand(*layer.moving_variance.shape) + 0.5
            )


@pytest.fixture
def x16():
    return np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")


def test_erased_model_equals_a_linear_model_built_by_hand(x16):
    model = residual_net()
    _randomize_bn(model)
    erased = ker.erase_relu(model)
    reference = residual_net(erased=("b1_out", "b2_out"))
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(erased(x16), reference(x16), rtol=0, atol=1e-6)
    assert not np.allclose(model(x16), erased(x16))
    assert isinstance(erased.get_layer("b1_out"), layers.Identity)
    assert [layer.name for layer in erased.layers] == [
        layer.name for layer in model.layers
    ]


def test_fused_erasure_equals_hand_built_linear_layer(x16):
    model = residual_net(fused_stem=True)
    erased = ker.erase_relu(model, select=["stem_conv", "fc"])
    reference = residual_net(erased=("stem_conv", "fc"), fused_stem=True)
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(erased(x16), reference(x16), rtol=0, atol=1e-6)
    assert erased.get_layer("fc").get_config()["activation"] == "linear"


def test_erasing_nothing_is_bit_identical(x16):
    model = residual_net()
    _randomize_bn(model)
    same = ker.erase_relu(model, exclude="*")
    assert np.array_equal(model(x16), same(x16))


def test_every_weight_is_copied_and_the_input_model_is_untouched(x16):
    model = residual_net()
    _randomize_bn(model)
    model.get_layer("b1_conv1").trainable = False
    config = json.dumps(model.get_config(), sort_keys=True, default=str)
    weights = [w.copy() for w in model.get_weights()]
    operations = list(model.operations)
    before = model(x16)

    erased = ker.erase_relu(model)

    assert json.dumps(model.get_config(), sort_keys=True, default=str) == config
    assert list(model.operations) == operations
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert np.array_equal(before, model(x16))
    assert [v.path for v in erased.weights] == [v.path for v in model.weights]
    assert all(np.array_equal(a, b) for a, b in zip(weights, erased.get_weights()))
    assert not any(a is b for a, b in zip(model.weights, erased.weights))
    assert erased.get_layer("b1_conv1").trainable is False
    assert len(erased.trainable_weights) == len(model.trainable_weights)
    assert len(erased.non_trainable_weights) == len(model.non_trainable_weights)


def test_share_weights_reuses_the_same_variables(x16):
    model = residual_net(fused_stem=True)
    shared = ker.erase_relu(model, share_weights=True, select=["stem_conv", "b1_out"])
    assert all(a is b for a, b in zip(model.weights, shared.weights))
    copied = ker.erase_relu(model, select=["stem_conv", "b1_out"])
    np.testing.assert_array_equal(shared(x16), copied(x16))
    kernel = model.get_layer("stem_conv").kernel
    kernel.assign(kernel * 2.0)
    assert np.array_equal(shared.get_layer("stem_conv").kernel, kernel)


def test_compile_state_and_dtype_policy_are_kept():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = residual_net()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    erased = ker.erase_relu(model)
    assert erased.compiled
    assert isinstance(erased.optimizer, keras.optimizers.SGD)
    assert erased.get_layer("b1_out").dtype_policy.name == "mixed_bfloat16"
    assert erased.get_layer("b1_conv1").dtype_policy.name == "mixed_bfloat16"
    assert erased.get_layer("b1_conv1").kernel.dtype == "float32"


def test_sequential_stays_sequential():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            layers.Dense(8, activation="relu", name="fc1"),
            layers.ReLU(name="act"),
            layers.Dense(2, name="out"),
        ],
        name="seq",
    )
    erased = ker.erase_relu(model, select=["fc1", "act"])
    assert isinstance(erased, keras.Sequential)
    assert [layer.name for layer in erased.layers] == ["fc1", "act", "out"]
    x = np.ones((1, 6), "float32")
    w = model.get_weights()
    np.testing.assert_allclose(erased(x), (x @ w[0] + w[1]) @ w[2] + w[3], atol=1e-5)


def _nested_model():
    inner_in = keras.Input((4,))
    inner = keras.Model(
        inner_in,
        layers.Dense(4, activation="relu", name="inner_fc")(inner_in),
        name="inner",
    )
    middle_in = keras.Input((4,))
    middle = keras.Model(
        middle_in, layers.ReLU(name="mid_relu")(inner(middle_in)), name="middle"
    )
    inputs = keras.Input((4,))
    return keras.Model(
        inputs, layers.Dense(2, name="out")(middle(inputs)), name="outer"
    )


def test_nested_two_levels_is_rewritten_in_place():
    model = _nested_model()
    erased = ker.erase_relu(model, select="middle/inner/inner_fc")
    inner = erased.get_layer("middle").get_layer("inner")
    assert inner.get_layer("inner_fc").get_config()["activation"] == "linear"
    assert model.get_layer("middle").get_layer("inner").get_layer(
        "inner_fc"
    ).activation is (keras.activations.relu)
    x = -np.ones((1, 4), "float32")
    w = model.get_weights()
    np.testing.assert_allclose(
        erased(x), np.maximum(x @ w[0] + w[1], 0) @ w[2] + w[3], atol=1e-5
    )


def test_multi_input_multi_output_and_relu_as_output():
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    h = layers.ReLU(name="h")(layers.Add(name="merge")([a, b]))
    out1 = layers.Dense(2, name="head1")(h)
    out2 = layers.ReLU(name="out_relu")(layers.Dense(2, name="head2")(h))
    model = keras.Model([a, b], [out1, out2])
    erased = ker.erase_relu(model, select=["h", "out_relu"])
    xa, xb = -np.ones((1, 4), "float32"), np.zeros((1, 4), "float32")
    y1, y2 = erased([xa, xb])
    k1, b1 = model.get_layer("head1").get_weights()
    k2, b2 = model.get_layer("head2").get_weights()
    np.testing.assert_allclose(y1, xa @ k1 + b1, atol=1e-5)
    np.testing.assert_allclose(y2, xa @ k2 + b2, atol=1e-5)


def test_relu_with_two_consumers_and_shared_relu_layer():
    shared = layers.ReLU(name="shared")
    inputs = keras.Input((4,))
    a = shared(layers.Dense(4, name="fa")(inputs))
    b = shared(layers.Dense(4, name="fb")(a))
    both = layers.Add(name="sum")([a, b])
    model = keras.Model(inputs, both)
    plan = ker.plan_erasure(model, select="shared")
    assert "all 2 calls" in plan.erased[0].reason
    assert any("Shared layers" in w for w in plan.warnings)
    with pytest.warns(UserWarning, match="Shared layers"):
        erased = ker.erase_relu(model, plan=plan)
    x = -np.ones((1, 4), "float32")
    w = model.get_weights()
    ya = x @ w[0] + w[1]
    np.testing.assert_allclose(erased(x), ya + (ya @ w[2] + w[3]), atol=1e-5)


def test_raw_op_relu_is_erased_and_lambda_layers_survive(x16):
    inputs = keras.Input((4,))
    x = layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = ops.relu(layers.Dense(4, name="fc")(x))
    model = keras.Model(inputs, x)
    erased = ker.erase_relu(model, select=0)
    assert erased.get_layer("double") is model.get_layer("double")
    v = -np.ones((1, 4), "float32")
    w = model.get_weights()
    np.testing.assert_allclose(erased(v), (2 * v) @ w[0] + w[1], atol=1e-5)


def test_planning_an_erased_model_again_erases_nothing_more():
    model = residual_net(fused_stem=True)
    once = ker.erase_relu(model, select=["stem_conv", "b1_out", "b2_out"])
    plan = ker.plan_erasure(once)
    assert plan.erased == []
    assert {s.name for s in plan.erased_before} == {"stem_conv", "b1_out", "b2_out"}
    again = ker.plan_erasure(ker.erase_relu(residual_net()))
    assert again.erased == [] and any("erased before" in w for w in again.warnings)


@pytest.mark.parametrize("share_weights", [False, True])
def test_keras_file_round_trip_in_safe_mode(tmp_path, x16, share_weights):
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, activation="relu", name="fused")(inputs)
    x = layers.ReLU(name="standalone")(layers.BatchNormalization(name="bn")(x))
    x = ops.relu(layers.Conv2D(4, 3, name="conv")(x))
    model = keras.Model(inputs, layers.GlobalAveragePooling2D(name="gap")(x))
    erased = ker.erase_relu(model, select="*", share_weights=share_weights)
    path = tmp_path / "erased.keras"
    erased.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert np.array_equal(erased(x16), loaded(x16))
    assert isinstance(loaded.get_layer("standalone"), layers.Identity)
