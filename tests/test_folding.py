"""fold_linear: every fold against a NumPy reference and against the unfolded
model in inference mode (float32 outputs within 1e-5 of the output scale),
on hand-built models and on ResNet50, MobileNetV2 and cifar_resnet56."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from keras_eraserelu.folding import FoldReport, SpatialBias, fold_linear
from keras_eraserelu.folding.affine import affine_of
from keras_eraserelu.folding.compose import apply, compose
from keras_eraserelu.models import FusedBatchNormalization, create_model

L = keras.layers
RTOL = 1e-5  # of the largest absolute output


def randomize_batch_norms(model, seed=0):
    """Inference statistics and affine parameters far from the identity."""
    rng = np.random.default_rng(seed)
    for layer in _layers(model):
        if isinstance(layer, L.BatchNormalization):
            channels = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.3, channels))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.6, 1.4, channels))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.3, channels))
    return model


def randomize_biases(model, seed=1):
    rng = np.random.default_rng(seed)
    for layer in _layers(model):
        if getattr(layer, "use_bias", False) and not isinstance(
            layer, L.BatchNormalization
        ):
            layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape))
    return model


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def outputs(model, x):
    return [
        np.asarray(y, np.float64) for y in keras.tree.flatten(model(x, training=False))
    ]


def assert_same(model, folded, x, rtol=RTOL):
    expected, got = outputs(model, x), outputs(folded, x)
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        scale = np.max(np.abs(e))
        assert np.max(np.abs(e - g)) <= rtol * scale, (np.max(np.abs(e - g)), scale)


def kinds(model):
    return [type(layer).__name__ for layer in model.layers[1:]]


def images(shape, seed=3):
    return np.random.default_rng(seed).standard_normal((2, *shape)).astype("float32")


def conv2d_reference(x, kernel, bias=None, stride=1, pad=((0, 0), (0, 0))):
    """A 2D convolution written out position by position (cross-correlation)."""
    x = np.pad(x, ((0, 0), *pad, (0, 0)))
    kh, kw = kernel.shape[:2]
    rows = (x.shape[1] - kh) // stride + 1
    cols = (x.shape[2] - kw) // stride + 1
    y = np.zeros((x.shape[0], rows, cols, kernel.shape[-1]))
    for i in range(rows):
        for j in range(cols):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            y[:, i, j] = np.einsum("nhwc,hwcd->nd", patch, kernel)
    return y if bias is None else y + bias


def fold(model, **kwargs):
    kwargs.setdefault("tolerance", RTOL)
    return fold_linear(model, **kwargs)


# --- the NumPy side: layers as affine maps -----------------------------------

LAYERS = [
    (lambda: L.Conv2D(5, 3, padding="same", strides=2), (9, 9, 4)),
    (lambda: L.Conv2D(6, 3, padding="valid", dilation_rate=2, groups=2), (9, 9, 4)),
    (lambda: L.Conv1D(5, 3, padding="causal", dilation_rate=2), (11, 3)),
    (lambda: L.Conv3D(4, 3, padding="same", strides=(1, 2, 2)), (5, 6, 6, 2)),
    (
        lambda: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", strides=2),
        (8, 8, 3),
    ),
    (lambda: L.DepthwiseConv1D(3, padding="valid"), (9, 3)),
    (lambda: L.SeparableConv2D(5, 3, padding="same", depth_multiplier=2), (7, 7, 3)),
    (lambda: L.Dense(4), (6,)),
    (lambda: L.ZeroPadding2D(((1, 2), (0, 1))), (5, 5, 3)),
]


@pytest.mark.parametrize("make, shape", LAYERS)
def test_affine_maps_compute_what_the_layers_compute(make, shape):
    layer = make()
    x = images(shape)
    y = layer(x)
    if layer.weights:
        randomize_biases(keras.Sequential([keras.Input(shape), layer]))
        y = layer(x)
    affines = affine_of(layer, (None, *shape), (None, *y.shape[1:]))
    z = x
    for affine in affines:
        z = apply(affine, z)
    np.testing.assert_allclose(z, y, rtol=1e-5, atol=1e-5)


def test_composed_kernels_equal_the_hand_computed_ones():
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(1, 1, 3, 4)), rng.normal(size=(3, 3, 4, 2))
    one = affine_of(
        _built(L.Conv2D(4, 1, use_bias=False), (6, 6, 3), [w1]),
        (None, 6, 6, 3),
        (None, 6, 6, 4),
    )[0]
    three = affine_of(
        _built(L.Conv2D(2, 3, use_bias=False), (6, 6, 4), [w2]),
        (None, 6, 6, 4),
        (None, 4, 4, 2),
    )[0]
    merged = compose(one, three)
    np.testing.assert_allclose(
        merged.kernel, np.einsum("abcm,ijmd->ijcd", w1, w2), 1e-5
    )
    # 3x3 stride 2 then 3x3: a 7x7 stride-2 kernel, tap (2a + i) gets w[a] @ v[i]
    v = rng.normal(size=(3, 3, 2, 2))
    first = affine_of(
        _built(L.Conv2D(2, 3, strides=2, use_bias=False), (15, 15, 2), [v]),
        (None, 15, 15, 2),
        (None, 7, 7, 2),
    )[0]
    merged = compose(
        first,
        affine_of(
            _built(L.Conv2D(2, 3, use_bias=False), (7, 7, 2), [v]),
            (None, 7, 7, 2),
            (None, 5, 5, 2),
        )[0],
    )
    expected = np.zeros((7, 7, 2, 2))
    for a in np.ndindex(3, 3):
        for i in np.ndindex(3, 3):
            expected[2 * i[0] + a[0], 2 * i[1] + a[1]] += v[a] @ v[i]
    np.testing.assert_allclose(merged.kernel, expected, rtol=1e-5, atol=1e-6)
    assert merged.strides == (2, 2)


def _built(layer, shape, weights):
    layer.build((None, *shape))
    layer.set_weights(weights)
    return layer


# --- batch norm --------------------------------------------------------------


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False)])
def test_batch_norm_folds_into_the_convolution_before_it(center, scale):
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = L.BatchNormalization(center=center, scale=scale, epsilon=1e-3, name="bn")(x)
    model = randomize_batch_norms(keras.Model(inputs, L.ReLU(name="relu")(x)))
    folded, report = fold(model)
    assert kinds(folded) == ["Conv2D", "ReLU"]
    assert [(f.kind, f.into, f.layers) for f in report.folds] == [
        ("batch_norm", "conv", ("bn",))
    ]
    bn = model.get_layer("bn")
    s = 1 / np.sqrt(np.asarray(bn.moving_variance) + 1e-3)
    s = s * (np.asarray(bn.gamma) if scale else 1)
    t = (np.asarray(bn.beta) if center else 0) - np.asarray(bn.moving_mean) * s
    kernel, bias = folded.get_layer("conv").get_weights()
    np.testing.assert_allclose(
        kernel, model.get_layer("conv").get_weights()[0] * s, 1e-6
    )
    np.testing.assert_allclose(bias, t, rtol=1e-6, atol=1e-7)
    x = images((8, 8, 3))
    reference = np.maximum(conv2d_reference(x, kernel, bias, pad=((1, 1), (1, 1))), 0)
    np.testing.assert_allclose(outputs(folded, x)[0], reference, rtol=1e-5, atol=1e-5)
    assert_same(model, folded, x)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: L.Dense(5, name="next"), (6,)),
        (lambda: L.Conv2D(6, 3, padding="valid", groups=3, name="next"), (7, 7, 6)),
        (lambda: L.Conv2D(5, 1, strides=2, padding="same", name="next"), (7, 7, 6)),
        (lambda: L.DepthwiseConv2D(3, depth_multiplier=2, name="next"), (7, 7, 6)),
        (lambda: L.SeparableConv2D(5, 3, depth_multiplier=2, name="next"), (7, 7, 6)),
    ],
    ids=["dense", "grouped-valid", "1x1-same", "depthwise", "separable"],
)
def test_batch_norm_folds_into_the_layer_after_it(make, shape):
    inputs = keras.Input(shape)
    x = FusedBatchNormalization(name="bn")(L.ReLU(name="relu")(inputs))
    model = randomize_biases(randomize_batch_norms(keras.Model(inputs, make()(x))))
    folded, report = fold(model)
    assert [f.into for f in report.folds] == ["next"]
    assert "BatchNormalization" not in str(kinds(folded))
    assert_same(model, folded, images(shape))


def test_dense_reference_of_a_batch_norm_folded_forward():
    inputs = keras.Input((3,))
    bn = L.BatchNormalization(name="bn")
    model = randomize_batch_norms(
        keras.Model(inputs, L.Dense(2, name="fc")(bn(inputs)))
    )
    folded, _ = fold(model)
    s, t = _scale_shift(bn)
    w, b = model.get_layer("fc").get_weights()
    kernel, bias = folded.get_layer("fc").get_weights()
    np.testing.assert_allclose(kernel, s[:, None] * w, rtol=1e-6)
    np.testing.assert_allclose(bias, t @ w + b, rtol=1e-5, atol=1e-6)


def _scale_shift(bn):
    s = np.asarray(bn.gamma) / np.sqrt(np.asarray(bn.moving_variance) + bn.epsilon)
    return s, np.asarray(bn.beta) - np.asarray(bn.moving_mean) * s


def test_batch_norms_that_cannot_fold_are_reported_with_the_reason():
    inputs = keras.Input((8, 8, 3))
    shared = L.Conv2D(3, 3, padding="same", name="shared")
    a = L.BatchNormalization(name="bn_after_shared")(shared(inputs))
    b = shared(a)
    c = L.Conv2D(3, 3, padding="same", activation="relu", name="fused_relu")(b)
    c = L.BatchNormalization(name="bn_after_relu")(c)  # the next conv pads: no
    d = L.Conv2D(3, 3, padding="same", activation="relu", name="padded")(c)
    branch = L.Conv2D(3, 1, name="branch")(d)
    e = L.BatchNormalization(name="bn_branching")(branch)
    model = randomize_batch_norms(keras.Model(inputs, [e, L.ReLU()(branch)]))
    folded, report = fold(model)
    reasons = {
        skip.layers[0]: skip.reason
        for skip in report.skipped
        if skip.kind == "batch_norm"
    }
    assert "'shared' is shared: called more than once" in reasons["bn_after_shared"]
    assert "'fused_relu' has activation 'relu'" in reasons["bn_after_relu"]
    assert "'padded' zero-pads its input (padding='same')" in reasons["bn_after_relu"]
    assert "output of 'branch' is used elsewhere" in reasons["bn_branching"]
    assert "is a model output" in reasons["bn_branching"]
    (copy,) = [layer for layer in folded.layers if layer.name == "shared"]
    assert len(copy._inbound_nodes) == 2  # still one layer called twice
    assert_same(model, folded, images((8, 8, 3)))


# --- chains ------------------------------------------------------------------


def test_dense_chain_merges_and_keeps_the_last_activation():
    inputs = keras.Input((6,))
    x = L.Dense(8, name="fc1")(inputs)
    x = L.Dense(7, name="fc2")(x)
    x = L.Dense(3, activation="tanh", name="fc3")(x)
    model = randomize_biases(keras.Model(inputs, x))
    folded, report = fold(model, chains="always")
    assert kinds(folded) == ["Dense"] and folded.layers[1].name == "fc3"
    assert folded.layers[1].get_config()["activation"] == "tanh"
    (w1, b1), (w2, b2), (w3, b3) = (
        model.get_layer(n).get_weights() for n in ("fc1", "fc2", "fc3")
    )
    kernel, bias = folded.layers[1].get_weights()
    np.testing.assert_allclose(kernel, w1 @ w2 @ w3, rtol=1e-5)
    np.testing.assert_allclose(bias, (b1 @ w2 + b2) @ w3 + b3, rtol=1e-5, atol=1e-6)
    assert report.folds[0].layers == ("fc1", "fc2")
    assert_same(model, folded, images((6,)))
    # cheaper: 6*8 + 8*7 + 7*3 = 125 > 6*3 multiply-adds, so merged as well
    assert kinds(fold(model)[0]) == ["Dense"]


def test_inverted_residual_chain_is_one_convolution_with_a_bias_map():
    """1x1 expand (bias from BN) -> 3x3 depthwise "same" -> 1x1 project: one
    3x3 convolution; the expand bias cut off by the depthwise padding makes a
    SpatialBias, checked against the NumPy reference of the three layers."""
    inputs = keras.Input((7, 7, 8))
    x = L.Conv2D(48, 1, use_bias=False, name="expand")(inputs)
    x = L.BatchNormalization(name="expand_bn")(x)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = L.BatchNormalization(name="dw_bn")(x)
    x = L.Conv2D(8, 1, use_bias=False, name="project")(x)
    x = L.BatchNormalization(name="project_bn")(x)
    model = randomize_batch_norms(keras.Model(inputs, x))
    folded, report = fold(model)
    assert kinds(folded) == ["Conv2D", "SpatialBias"]
    assert report.count("chain") == 1 and report.count("batch_norm") == 3
    conv, bias_map = folded.layers[1], folded.layers[2]
    assert conv.kernel_size == (3, 3) and conv.padding == "same" and not conv.use_bias
    xs = images((7, 7, 8))
    reference = xs
    for name in ("expand", "expand_bn", "dw", "dw_bn", "project", "project_bn"):
        layer = model.get_layer(name)
        if isinstance(layer, L.BatchNormalization):
            s, t = _scale_shift(layer)
            reference = reference * s + t
        elif isinstance(layer, L.DepthwiseConv2D):
            kernel = layer.get_weights()[0]  # (3, 3, c, 1): a diagonal full kernel
            full = np.einsum("hwc,cd->hwcd", kernel[..., 0], np.eye(kernel.shape[2]))
            reference = conv2d_reference(reference, full, pad=((1, 1), (1, 1)))
        else:
            reference = conv2d_reference(reference, layer.get_weights()[0])
    np.testing.assert_allclose(outputs(folded, xs)[0], reference, rtol=1e-5, atol=1e-5)
    bias = bias_map.get_weights()[0]
    assert not np.allclose(bias[0, 0], bias[3, 3])  # the corner differs
    assert_same(model, folded, xs)


@pytest.mark.parametrize(
    "chains, expected",
    [
        ("cheaper", ["Conv2D", "Conv2D"]),
        ("always", ["Conv2D"]),
        (False, ["Conv2D", "Conv2D"]),
    ],
)
def test_chains_cheaper_always_or_none(chains, expected):
    """3x3 then 3x3 (valid, 8 channels): 5x5 needs 25/18 of the FLOPs."""
    inputs = keras.Input((9, 9, 8))
    x = L.Conv2D(8, 3, name="a")(inputs)
    x = L.Conv2D(8, 3, activation="relu", name="b")(x)
    model = randomize_biases(keras.Model(inputs, x))
    folded, report = fold(model, chains=chains)
    assert kinds(folded) == expected
    if chains == "always":
        assert folded.layers[1].kernel_size == (5, 5)
        assert folded.layers[1].get_config()["activation"] == "relu"
    elif chains == "cheaper":
        (skip,) = report.skipped
        assert "the merged layer would need more FLOPs (merged 1600, apart 1152" in (
            skip.reason
        )
    assert_same(model, folded, images((9, 9, 8)))


@pytest.mark.parametrize(
    "layers, shape, expected",
    [
        (
            [L.Conv2D(6, 3, strides=2), L.Conv2D(4, 3)],
            (13, 13, 3),
            ("Conv2D", (7, 7), (2, 2)),
        ),
        (
            [L.Conv2D(6, 3, dilation_rate=2), L.Conv2D(4, 1)],
            (11, 11, 3),
            ("Conv2D", (3, 3), (1, 1)),
        ),
        ([L.ZeroPadding2D(1), L.Conv2D(4, 3)], (6, 6, 3), ("Conv2D", (3, 3), (1, 1))),
        (
            [L.Conv2D(4, 3, groups=2), L.Conv2D(6, 3, groups=2)],
            (9, 9, 4),
            ("Conv2D", (5, 5), (1, 1)),
        ),
        (
            [L.DepthwiseConv2D(3), L.DepthwiseConv2D(3, depth_multiplier=2)],
            (9, 9, 3),
            ("DepthwiseConv2D", (5, 5), (1, 1)),
        ),
        (
            [L.Conv2D(8, 1), L.Conv2D(2, 3, padding="same")],
            (6, 6, 2),
            ("Conv2D", (3, 3), (1, 1)),
        ),
        (
            [L.Conv1D(5, 3, padding="causal"), L.Conv1D(4, 1)],
            (10, 3),
            ("Conv1D", (3,), (1,)),
        ),
        (
            [L.Conv3D(4, 1), L.Conv3D(3, 3, padding="same")],
            (4, 5, 5, 2),
            ("Conv3D", (3, 3, 3), (1, 1, 1)),
        ),
    ],
    ids=[
        "stride",
        "dilation",
        "padding",
        "groups",
        "depthwise",
        "bias-map",
        "conv1d",
        "conv3d",
    ],
)
def test_chains_merge_exactly_with_strides_dilation_padding_groups(
    layers, shape, expected
):
    inputs = keras.Input(shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    model = randomize_biases(keras.Model(inputs, x))
    folded, report = fold(model, chains="always")
    (merged,) = [layer for layer in folded.layers[1:] if type(layer) is not SpatialBias]
    assert (type(merged).__name__, merged.kernel_size, merged.strides) == expected
    assert report.count("chain") == 1 and merged.name == report.folds[0].into
    if isinstance(layers[0], L.Conv2D) and layers[0].groups == 2:
        assert merged.groups == 2
    assert_same(model, folded, images(shape))


@pytest.mark.parametrize(
    "first, second, branch, reason",
    [
        (
            L.Conv2D(4, 3, padding="same"),
            L.Conv2D(4, 3, padding="same"),
            False,
            "zero-pads the output of a layer with a spatial extent",
        ),
        (
            L.Conv2D(4, 1, strides=2),
            L.Conv2D(4, 3, dilation_rate=2),
            False,
            "strides=(2, 2) and dilation_rate=(4, 4), which Keras convolutions refuse",
        ),
        (
            L.Conv2D(4, 1),
            L.Conv2D(4, 1),
            True,
            "the tensor between them feeds other layers too",
        ),
    ],
    ids=["padding", "strides-and-dilation", "branching"],
)
def test_chains_that_cannot_merge_say_why(first, second, branch, reason):
    inputs = keras.Input((12, 12, 4))
    a = first(inputs)
    b = second(a)
    model = keras.Model(inputs, [b, L.ReLU()(a)] if branch else b)
    folded, report = fold(randomize_biases(model), chains="always")
    assert [(s.layers, s.reason) for s in report.skipped] == [
        ((first.name, second.name), pytest.approx(reason))
    ] or reason in report.skipped[0].reason
    assert report.folds == () and len(folded.layers) == len(model.layers)
    assert_same(model, folded, images((12, 12, 4)))


# --- residuals and identities -----------------------------------------------


def test_residual_branches_and_identity_become_one_kernel():
    """RepVGG: Add(conv3x3(x), conv1x1(x), bn(x), x) is one 3x3 convolution."""
    inputs = keras.Input((6, 6, 4))
    x = L.Conv2D(4, 3, padding="same", name="stem")(inputs)
    three = L.BatchNormalization(name="bn3")(
        L.Conv2D(4, 3, padding="same", name="c3")(x)
    )
    one = L.BatchNormalization(name="bn1")(L.Conv2D(4, 1, name="c1")(x))
    y = L.Add(name="add")([three, one, L.BatchNormalization(name="bn_id")(x), x])
    model = randomize_biases(randomize_batch_norms(keras.Model(inputs, L.ReLU()(y))))
    folded, report = fold(model, residuals=True)
    assert kinds(folded) == ["Conv2D", "Conv2D", "ReLU"]
    (residual,) = [f for f in report.folds if f.kind == "residual"]
    assert residual.into == "c3" and set(residual.layers) == {"c1", "bn_id", "add"}
    assert "identity at the centre tap" in residual.detail
    c3, c1 = model.get_layer("c3").get_weights(), model.get_layer("c1").get_weights()
    s3, t3 = _scale_shift(model.get_layer("bn3"))
    s1, t1 = _scale_shift(model.get_layer("bn1"))
    si, ti = _scale_shift(model.get_layer("bn_id"))
    kernel = c3[0] * s3
    kernel[1, 1] += c1[0][0, 0] * s1 + np.diag(si) + np.eye(4)
    bias = c3[1] * s3 + t3 + c1[1] * s1 + t1 + ti
    got_kernel, got_bias = folded.get_layer("c3").get_weights()
    np.testing.assert_allclose(got_kernel, kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_bias, bias, rtol=1e-5, atol=1e-6)
    assert_same(model, folded, images((6, 6, 4)))
    assert kinds(fold(model)[0]).count("Add") == 1  # residuals=False keeps it


def test_folds_build_on_each_other_until_none_applies():
    """The chain 1x1 -> "same" depthwise becomes a convolution and a bias map;
    the residual Add around it one kernel; the batch norm after the Add then
    folds into that kernel and its bias map."""
    inputs = keras.Input((6, 6, 4))
    x = L.Conv2D(4, 1, name="expand")(inputs)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.Add(name="add")([x, inputs])
    x = L.BatchNormalization(name="bn")(x)
    model = randomize_biases(randomize_batch_norms(keras.Model(inputs, L.ReLU()(x))))
    folded, report = fold(model, chains="always", residuals=True)
    assert [fold.kind for fold in report.folds] == ["chain", "residual", "batch_norm"]
    assert kinds(folded) == ["Conv2D", "SpatialBias", "ReLU"]
    assert_same(model, folded, images((6, 6, 4)))


def test_several_inputs_and_a_dict_of_outputs_keep_their_structure():
    left, right = keras.Input((5,), name="left"), keras.Input((3,), name="right")
    a = L.BatchNormalization(name="bn")(L.Dense(4, name="fc_left")(left))
    b = L.Dense(4, name="fc_right")(right)
    model = randomize_batch_norms(
        keras.Model([left, right], {"sum": L.Add()([a, b]), "right": b})
    )
    folded, report = fold(model)
    assert [t.name for t in folded.inputs] == ["left", "right"]
    assert set(folded.output) == {"sum", "right"}
    x = [images((5,)), images((3,))]
    for key in ("sum", "right"):
        expected = np.asarray(model(x, training=False)[key])
        np.testing.assert_allclose(folded(x)[key], expected, rtol=1e-5, atol=1e-6)


def test_identity_layers_go_and_an_input_to_output_identity_stays():
    inputs = keras.Input((5,))
    x = L.Identity(name="id1")(L.Dense(3, name="fc")(L.Identity(name="id0")(inputs)))
    model = keras.Model(
        inputs, [L.Activation("linear", name="lin")(x), L.Identity(name="id2")(inputs)]
    )
    folded, report = fold(model)
    assert sorted(kinds(folded)) == ["Dense", "Identity"]
    assert [(f.layers, f.into) for f in report.folds if f.kind == "identity"] == [
        (("id0",), "the model input"),
        (("id1",), "fc"),
        (("lin",), "fc"),
    ]
    assert report.skipped[0].reason == "it maps a model input to an output"
    assert_same(model, folded, images((5,)))


# --- models: nested, Sequential, mixed precision, saving ---------------------


def test_nested_and_sequential_models_are_inlined_and_the_source_untouched():
    inner = keras.Sequential(
        [keras.Input((8, 8, 3)), L.Conv2D(4, 3, name="inner_conv")], name="inner"
    )
    inputs = keras.Input((8, 8, 3))
    x = L.BatchNormalization(name="outer_bn")(inner(inputs))
    model = randomize_batch_norms(keras.Model(inputs, L.Dense(2, name="fc")(x)))
    before = [w.copy() for w in model.get_weights()]
    folded, report = fold(model)
    assert kinds(folded) == ["Conv2D", "Dense"]
    assert report.folds[0].into == "inner_conv"
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert len(model.layers) == 4 and len(inner.layers) == 1
    assert_same(model, folded, images((8, 8, 3)))
    sequential = keras.Sequential(
        [keras.Input((6,)), L.Dense(4), L.BatchNormalization()]
    )
    folded, _ = fold(randomize_batch_norms(sequential))
    assert isinstance(folded, keras.Model) and kinds(folded) == ["Dense"]


def test_mixed_precision_keeps_policies_with_a_looser_default_tolerance():
    keras.config.set_dtype_policy("mixed_bfloat16")
    inputs = keras.Input((8, 8, 3))
    x = L.BatchNormalization()(L.Conv2D(8, 3, padding="same", use_bias=False)(inputs))
    x = L.Conv2D(8, 1)(L.ReLU()(x))
    model = randomize_batch_norms(keras.Model(inputs, L.Dense(4, dtype="float32")(x)))
    folded, report = fold_linear(model)
    assert [layer.dtype_policy.name for layer in folded.layers[1:]] == [
        "mixed_bfloat16",
        "mixed_bfloat16",
        "mixed_bfloat16",
        "float32",
    ]
    assert report.tolerance == ker.folding.LOW_PRECISION_TOLERANCE
    assert report.relative_difference < 2e-2


def test_folded_model_saves_and_reloads_in_safe_mode_in_a_new_process(tmp_path):
    inputs = keras.Input((6, 6, 4))
    x = L.Conv2D(24, 1, name="expand")(inputs)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu6", name="dw")(x)
    model = randomize_biases(keras.Model(inputs, x))
    folded, _ = fold(model, chains="always")  # not cheaper: a full 3x3 kernel
    assert kinds(folded) == ["Conv2D", "SpatialBias"]
    assert folded.layers[2].get_config()["activation"] == "relu6"
    path = tmp_path / "folded.keras"
    folded.save(path)
    x = images((6, 6, 4))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", outputs(folded, x)[0])
    code = textwrap.dedent(f"""
        import numpy as np, keras, keras_eraserelu
        model = keras.models.load_model({str(path)!r}, safe_mode=True)
        y = model(np.load({str(tmp_path / "x.npy")!r}), training=False)
        np.testing.assert_allclose(y, np.load({str(tmp_path / "y.npy")!r}), rtol=1e-6)
        print([type(layer).__name__ for layer in model.layers])
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "['InputLayer', 'Conv2D', 'SpatialBias']" in result.stdout
    assert isinstance(folded.layers[2], SpatialBias)


# --- the report, the check, the errors ---------------------------------------


def test_report_prints_and_turns_into_json():
    inputs = keras.Input((8, 8, 3))
    x = L.BatchNormalization(name="bn")(L.Conv2D(4, 3, name="conv")(inputs))
    folded, report = fold(randomize_batch_norms(keras.Model(inputs, x, name="tiny")))
    assert isinstance(report, FoldReport)
    text = str(report)
    assert text.startswith(
        "fold_linear('tiny'): 0 identities removed, 1 batch norms folded"
    )
    assert "layer calls 2 -> 1, params 128 -> 112" in text
    assert "batch_norm bn -> conv" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["folds"] == [
        {"kind": "batch_norm", "into": "conv", "layers": ["bn"], "detail": ""}
    ]
    assert data["flops"][0] == 2 * 36 * 27 * 4 + 36 * 4 + 2 * 36 * 4
    assert data["flops"][1] == 2 * 36 * 27 * 4 + 36 * 4
    assert data["relative_difference"] <= RTOL and data["probe_shape"] == [2, 8, 8, 3]


class _ShiftedBatchNorm(L.BatchNormalization):
    """Adds 1 after normalizing: not what its weights say."""

    def call(self, inputs, training=None):
        return super().call(inputs, training=training) + 1.0


def test_check_raises_when_the_outputs_differ():
    inputs = keras.Input((4, 4, 2))
    x = _ShiftedBatchNorm(name="odd_bn")(L.Conv2D(2, 1)(inputs))
    model = keras.Model(inputs, x)
    with pytest.raises(
        ValueError,
        match=r"differ from model .* by up to 1 on the probe"
        r" batch.*more than tolerance=1e-05",
    ):
        fold(model)
    folded, report = fold_linear(model, check=False)
    assert report.max_difference is None and len(folded.layers) == 2


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"chains": "sometimes"},
            ValueError,
            r"Unknown chains='sometimes'. Expected one of "
            r"\('cheaper', 'always', False\)",
        ),
        ({"chains": "cheap"}, ValueError, r"Did you mean 'cheaper'\?"),
        (
            {"chains": None},
            TypeError,
            r"`chains` must be one of .*Received: chains=None",
        ),
        ({"chains": True}, TypeError, r"chains=True of type bool"),
        ({"batch_norm": "yes"}, TypeError, r"`batch_norm` must be a bool"),
        ({"residuals": 1}, TypeError, r"`residuals` must be a bool"),
        ({"check": None}, TypeError, r"`check` must be a bool"),
        ({"tolerance": 0}, ValueError, r"`tolerance` must be a number > 0"),
        ({"tolerance": "small"}, TypeError, r"`tolerance` must be a number"),
        (
            {"probe": np.zeros((2, 5))},
            ValueError,
            r"`probe` must fit the model input of shape \(None, 4\)",
        ),
        (
            {"probe": [np.zeros((2, 4))] * 2},
            ValueError,
            r"one array per model input \(1\). Received 2",
        ),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    with pytest.raises(error, match=match):
        fold_linear(model, **kwargs)


def test_models_it_cannot_read_are_refused():
    with pytest.raises(TypeError, match="Expected a Keras 3 `keras.Model`"):
        fold_linear("resnet50.keras")

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="is a subclassed model"):
        fold_linear(Subclassed())


# --- real networks -----------------------------------------------------------


@pytest.fixture(scope="module")
def resnet50():
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    return randomize_batch_norms(model)


@pytest.mark.slow
def test_resnet50_every_batch_norm_folds(resnet50):
    folded, report = fold(resnet50)
    assert report.count("batch_norm") == 53 and report.layer_calls == (174, 121)
    assert "BatchNormalization" not in kinds(folded)
    assert_same(resnet50, folded, images((64, 64, 3)))


@pytest.fixture(scope="module")
def erased_mobilenet_v2():
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # relu6 loses its clip
        return ker.erase_relu(
            randomize_batch_norms(model),
            kinds=("relu6",),
            select=["block_*_relu", "expanded_conv_*relu"],
        )


@pytest.mark.slow
def test_erased_mobilenet_v2_blocks_become_single_convolutions(erased_mobilenet_v2):
    folded, report = fold(erased_mobilenet_v2, residuals=True)
    assert (report.count("identity"), report.count("batch_norm")) == (33, 52)
    assert (report.count("chain"), report.count("residual")) == (16, 10)
    assert "Add" not in kinds(folded) and "DepthwiseConv2D" in kinds(folded)[:3]
    flops_before, flops_after = report.flops
    assert flops_after < 0.7 * flops_before
    assert_same(erased_mobilenet_v2, folded, images((64, 64, 3)))


@pytest.mark.slow
def test_cifar_resnet56_erased_first_folds_its_conv_bn_conv_chains():
    model = create_model("cifar_resnet56", classifier_activation=None)
    erased = ker.erase_relu(randomize_batch_norms(model), where="first")
    folded, report = fold(erased, chains="always", residuals=True)
    assert (report.count("identity"), report.count("batch_norm")) == (27, 55)
    pads = [s for s in report.skipped if s.kind == "chain" and "zero-pads" in s.reason]
    assert len(pads) == 27  # 3x3 "same" after 3x3: not one convolution exactly
    assert_same(erased, folded, images((32, 32, 3)))
