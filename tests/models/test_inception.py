"""Tests of the Inception builders: counts, names, modules, and equivalence
with keras.applications.InceptionV3."""

import re

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from keras_eraserelu.models import create_model, list_models
from keras_eraserelu.models.inception import (
    BN_INCEPTION_CONFIG,
    bn_inception,
    inception_tiny,
    inception_v3,
)

SMALL_V3 = (75, 75, 3)
# keras.applications.InceptionV3(weights=None): (trainable, total).
KERAS_V3_TOP = (23_817_352, 23_851_784)
KERAS_V3_NOTOP = (21_768_352, 21_802_784)
BN_INCEPTION_TOP = 11_228_840
BN_INCEPTION_NOTOP = 10_203_840
TINY_TOP = 13_618
COUNTER_NAME = re.compile(
    r"(.*_\d+|conv2d|batch_normalization|re_lu|activation|concatenate"
    r"|max_pooling2d|average_pooling2d|dense|input_layer)(_\d+)?"
)


def counts(model):
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    return trainable, model.count_params()


@pytest.fixture(scope="module")
def keras_v3_small():
    return keras.applications.InceptionV3(
        weights=None, include_top=False, input_shape=SMALL_V3
    )


@pytest.fixture(scope="module")
def v3_small():
    return inception_v3(include_top=False, input_shape=SMALL_V3)


def test_registry_names():
    assert {"inception_v3", "bn_inception", "inception_tiny"} <= set(
        list_models("*inception*")
    )
    model = create_model("inception_tiny", classes=3)
    assert model.name == "inception_tiny"
    assert model.output_shape == (None, 3)


def test_inception_v3_counts_match_keras_applications(v3_small, keras_v3_small):
    assert counts(v3_small) == KERAS_V3_NOTOP == counts(keras_v3_small)
    top = inception_v3()
    assert top.input_shape == (None, 299, 299, 3)
    assert top.output_shape == (None, 1000)
    reference = keras.applications.InceptionV3(weights=None)
    assert counts(top) == KERAS_V3_TOP == counts(reference)


def test_inception_v3_same_layers_and_shapes(v3_small, keras_v3_small):
    def signature(model):
        # keras uses Activation("relu") where we use the ReLU layer, and
        # BatchNormalization where we use its fused subclass.
        def kind(layer):
            name = type(layer).__name__.replace("Activation", "ReLU")
            return name.replace("FusedBatchNormalization", "BatchNormalization")

        return [(kind(layer), layer.output.shape) for layer in model.layers]

    assert signature(v3_small) == signature(keras_v3_small)
    assert v3_small.output_shape == (None, 1, 1, 2048)


def test_inception_v3_matches_keras_numerically(v3_small, keras_v3_small):
    rng = np.random.default_rng(0)
    for layer in keras_v3_small.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 1.5, variance.shape),
                ]
            )
    source = [layer for layer in keras_v3_small.layers if layer.weights]
    target = [layer for layer in v3_small.layers if layer.weights]
    assert len(source) == len(target) == 188
    for src, dst in zip(source, target, strict=True):
        assert isinstance(dst, type(src))  # our batch norm is a subclass
        dst.set_weights(src.get_weights())
    x = rng.uniform(-1, 1, (2, *SMALL_V3)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras_v3_small(x))
    np.testing.assert_allclose(v3_small(x), expected, atol=1e-4)

    # The erased networks agree too: the same ReLUs are made linear.
    erased_keras = ker.erase_relu(keras_v3_small, share_weights=True)
    erased_ours = ker.erase_relu(v3_small, share_weights=True)
    expected = keras.ops.convert_to_numpy(erased_keras(x))
    np.testing.assert_allclose(erased_ours(x), expected, atol=1e-4)
    assert not np.allclose(expected, v3_small(x), atol=1e-3)


def test_inception_v3_plan_matches_keras_applications(v3_small, keras_v3_small):
    ours, theirs = ker.plan_erasure(v3_small), ker.plan_erasure(keras_v3_small)
    assert (len(ours.sites), len(ours.erased)) == (94, 44)
    assert (len(theirs.sites), len(theirs.erased)) == (94, 44)
    assert [m.site_count for m in ours.modules] == [
        m.site_count for m in theirs.modules
    ]

    def per_module(plan):
        result = {}
        for site in plan.erased:
            result[site.module] = result.get(site.module, 0) + 1
        return result

    assert per_module(ours) == per_module(theirs)
    assert per_module(ours) == {
        **{k: 4 for k in (0, 1, 2, 4, 5, 6, 7)},
        3: 2,
        8: 2,
        9: 6,
        10: 6,
    }
    # One-to-one: same module, same position, same decision.
    assert [(s.module, s.position, s.decision) for s in ours.sites] == [
        (s.module, s.position, s.decision) for s in theirs.sites
    ]
    erased = {site.name for site in ours.erased}
    assert {"mixed9_branch3x3_2a_relu", "mixed9_branch3x3dbl_3b_relu"} <= erased
    assert "mixed8_branch7x7x3_3_relu" not in erased
    assert all(name.startswith("mixed") for name in erased)


def bn_inception_arithmetic(classes=1000):
    """Trainable count from the paper's table, independent of the builder:
    each conv is k*k*c_in*c_out weights plus BN's beta and gamma."""

    def conv(k, c_in, c_out):
        return k * k * c_in * c_out + 2 * c_out

    total = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    channels = 192
    table = [
        # 1x1, 3x3 reduce, 3x3, dbl reduce, dbl 3x3, pool proj (0: pass-through)
        (64, 64, 64, 64, 96, 32),
        (64, 64, 96, 64, 96, 64),
        (0, 128, 160, 64, 96, 0),
        (224, 64, 96, 96, 128, 128),
        (192, 96, 128, 96, 128, 128),
        (160, 128, 160, 128, 160, 128),
        (96, 128, 192, 160, 192, 96),
        (0, 128, 192, 192, 256, 0),
        (352, 192, 320, 160, 224, 128),
        (352, 192, 320, 192, 224, 128),
    ]
    for one, red3, out3, red_d, out_d, proj in table:
        total += conv(1, channels, red3) + conv(3, red3, out3)
        total += conv(1, channels, red_d) + conv(3, red_d, out_d)
        total += conv(3, out_d, out_d)
        if one:
            total += conv(1, channels, one) + conv(1, channels, proj)
            channels = one + out3 + out_d + proj
        else:
            channels = out3 + out_d + channels
    assert channels == 1024
    return total, total + channels * classes + classes


def test_bn_inception_counts():
    notop, top = bn_inception_arithmetic()
    assert (notop, top) == (BN_INCEPTION_NOTOP, BN_INCEPTION_TOP)
    model = bn_inception(input_shape=(64, 64, 3))
    assert counts(model)[0] == BN_INCEPTION_TOP
    assert model.count_params() - BN_INCEPTION_TOP == 19_968  # moving stats
    assert len(BN_INCEPTION_CONFIG) == 10


def test_bn_inception_shapes_and_plan():
    model = bn_inception(include_top=False)
    assert model.output_shape == (None, 7, 7, 1024)
    widths = [
        model.get_layer(f"inception{m}_out").output.shape[-1]
        for m in ("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
    ]
    assert widths == [256, 320, 576, 576, 576, 608, 576, 1024, 1024, 1024]
    plan = ker.plan_erasure(model)
    assert (len(plan.sites), len(plan.erased)) == (69, 36)
    reductions = [s for s in plan.erased if s.module_name == "inception4e_out"]
    assert [s.name for s in reductions] == [
        "inception4e_branch3x3_2_relu",
        "inception4e_branch3x3dbl_3_relu",
    ]


def test_tiny_forward_and_erase():
    model = inception_tiny()
    assert counts(model)[0] == TINY_TOP
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    assert model(x).shape == (2, 10)
    erased = inception_tiny(erase="last")
    plan = ker.plan_erasure(erased)
    assert len(plan.erased_before) == 10
    assert ker.plan_erasure(model).summary().endswith("10 to erase")


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (inception_tiny, {}),
        (bn_inception, {"input_shape": (64, 64, 3)}),
        (inception_v3, {"input_shape": SMALL_V3}),
    ],
)
def test_module_rule_and_names(builder, kwargs):
    model = builder(**kwargs)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert not [name for name in names if COUNTER_NAME.fullmatch(name)]
    plan = ker.plan_erasure(model)
    ends = [name for name in names if name.endswith("_out")]
    assert [module.name for module in plan.modules] == ends
    for site in plan.sites:
        if site.module is not None:
            prefix = ends[site.module][: -len("out")]
            assert site.name.startswith(prefix)
        else:
            assert site.name.startswith("stem_")


def test_mixed_precision_output_is_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = inception_tiny(input_shape=(16, 16, 3), classes=5)
        x = np.zeros((2, 16, 16, 3), "float32")
        output = model(x)
        assert output.shape == (2, 5)
        assert keras.backend.standardize_dtype(output.dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_head_options():
    model = inception_tiny(dropout=0.2, classifier_activation=None)
    assert model.get_layer("head_dropout").rate == 0.2
    assert "head_dropout" not in [layer.name for layer in inception_tiny().layers]
    assert inception_tiny(include_top=False, pooling="max").output_shape == (
        None,
        64,
    )
    tensor = keras.Input((24, 24, 3), name="images")
    assert inception_tiny(input_tensor=tensor).input_shape == (None, 24, 24, 3)


@pytest.mark.parametrize(
    "dropout, error",
    [(1.0, ValueError), (-0.1, ValueError), ("0.5", TypeError), (True, TypeError)],
)
def test_bad_dropout(dropout, error):
    with pytest.raises(error, match=r"`dropout` must be a number in \[0, 1\)"):
        inception_tiny(dropout=dropout)


def test_bad_standard_arguments():
    with pytest.raises(ValueError, match="at least 75"):
        inception_v3(input_shape=(74, 74, 3))
    with pytest.raises(ValueError, match="pooling"):
        bn_inception(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="classes"):
        inception_tiny(classes=0)


def test_weights_file_round_trip(tmp_path):
    path = str(tmp_path / "tiny.weights.h5")
    source = inception_tiny(input_shape=(16, 16, 3))
    source.save_weights(path)
    loaded = inception_tiny(input_shape=(16, 16, 3), weights=path, erase="last")
    for a, b in zip(source.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a, b)
