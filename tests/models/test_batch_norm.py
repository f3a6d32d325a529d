"""FusedBatchNormalization: the same numbers as Keras' layer, on the fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eraserelu.models import FusedBatchNormalization, create_model

SHAPE = (8, 5, 5, 6)


def random_weights(layer, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(1.0, 0.5, v.shape).astype("float32") for v in layer.weights]
    weights[-1] = np.abs(weights[-1])  # the moving variance
    return weights


def training_step(layer, x, cotangent):
    """Outputs, d(outputs . cotangent)/d(x, trainables), moving stats, inference."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(outputs, "float32") * cotangent)
    gradients = tape.gradient(loss, [x, *layer.trainable_weights])
    moving = [v.numpy() for v in layer.non_trainable_weights]
    inference = layer(x, training=False)
    return [
        np.asarray(tf.cast(t, "float32"))
        for t in (outputs, *gradients, *moving, inference)
    ]


def paired_layers(shape=SHAPE, **kwargs):
    reference = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    fused = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    for layer in (reference, fused):
        layer.build(shape)
    weights = random_weights(reference)
    reference.set_weights(weights)
    fused.set_weights(weights)
    return reference, fused


@pytest.fixture
def policy(request):
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize(
    "options",
    [{}, {"scale": False, "center": False}, {"axis": 3}],
    ids=["default", "no-scale-no-center", "axis3"],
)
def test_matches_keras_batch_norm(policy, options):
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, SHAPE).astype("float32")
    cotangent = rng.normal(size=SHAPE).astype("float32")
    reference, fused = paired_layers(**options)
    expected = training_step(reference, x, cotangent)
    received = training_step(fused, x, cotangent)
    names = ["outputs", "d/dx", *[f"d/d{w.name}" for w in reference.trainable_weights]]
    names += [w.name for w in reference.non_trainable_weights] + ["inference"]
    assert len(expected) == len(received) == len(names)
    for name, want, got in zip(names, expected, received):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5, err_msg=name)


def test_one_value_per_channel_keeps_zero_variance():
    # N*H*W == 1: the biased batch variance is 0, as in Keras.
    reference, fused = paired_layers(shape=(1, 1, 1, 6))
    x = np.random.default_rng(2).normal(size=(1, 1, 1, 6)).astype("float32")
    cotangent = np.ones((1, 1, 1, 6), "float32")
    for want, got in zip(
        training_step(reference, x, cotangent), training_step(fused, x, cotangent)
    ):
        assert np.all(np.isfinite(got))
        # x - mean is a rounding error here, amplified by 1/sqrt(epsilon).
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def op_types(layer, x, training):
    function = tf.function(lambda t: layer(t, training=training))
    graph = function.get_concrete_function(tf.constant(x)).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("training", [True, False])
def test_runs_the_fused_kernel(training):
    _, fused = paired_layers()
    types = op_types(fused, np.ones(SHAPE, "float32"), training)
    assert "FusedBatchNormV3" in types


@pytest.mark.parametrize(
    "shape, options",
    [((8, 6), {}), ((8, 6, 5, 5), {"axis": 1}), (SHAPE, {"renorm": True})],
    ids=["2d", "channels-first", "renorm"],
)
def test_falls_back_to_keras_where_the_kernel_does_not_apply(shape, options):
    reference, fused = paired_layers(shape=shape, **options)
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape).astype("float32")
    cotangent = rng.normal(size=shape).astype("float32")
    assert "FusedBatchNormV3" not in op_types(fused, x, True)
    for want, got in zip(
        training_step(reference, x, cotangent), training_step(fused, x, cotangent)
    ):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_config_is_keras_config():
    reference, fused = paired_layers(gamma_initializer="zeros")
    expected = reference.get_config()
    received = fused.get_config()
    for config in (expected, received):
        config.pop("name")
    assert received == expected


def test_saved_model_loads_in_safe_mode_with_its_statistics(tmp_path):
    inputs = keras.Input(SHAPE[1:])
    outputs = FusedBatchNormalization(momentum=0.9, name="bn")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("bn").set_weights(random_weights(model.get_layer("bn"), seed=4))
    path = tmp_path / "bn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.get_layer("bn")) is FusedBatchNormalization
    x = np.random.default_rng(5).normal(size=SHAPE).astype("float32")
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected)


@pytest.mark.parametrize(
    "name, shape",
    [
        ("cifar_resnet8", (32, 32, 3)),
        ("cifar_preact_resnet_tiny", (32, 32, 3)),
        ("wrn10_1", (32, 32, 3)),
        ("resnext_tiny", (32, 32, 3)),
        ("cifar_vgg_tiny", (32, 32, 3)),
        ("resnet_tiny", (64, 64, 3)),
        ("inception_tiny", (75, 75, 3)),
    ],
)
def test_every_family_uses_the_fused_layer(name, shape):
    model = create_model(name, input_shape=shape, classes=10)
    norms = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms, f"{name} has no batch normalization"
    assert all(type(layer) is FusedBatchNormalization for layer in norms)
