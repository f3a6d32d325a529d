"""find_relus: every form of activation Keras 3 has, at any nesting depth."""

import keras
import pytest
from keras import layers, ops

import keras_eraserelu as ker


def _chain(*blocks, shape=(8,)):
    inputs = keras.Input(shape)
    x = inputs
    for block in blocks:
        x = block(x)
    return keras.Model(inputs, x, name="chain")


@pytest.mark.parametrize(
    "layer, form, kind",
    [
        (layers.Activation("relu", name="s"), "layer", "relu"),
        (layers.Activation(keras.activations.relu, name="s"), "layer", "relu"),
        (layers.ReLU(name="s"), "layer", "relu"),
        (layers.ReLU(max_value=6.0, name="s"), "layer", "relu6"),
        (layers.ReLU(negative_slope=0.1, name="s"), "layer", "leaky"),
        (layers.ReLU(threshold=0.5, name="s"), "layer", "thresholded"),
        (layers.LeakyReLU(name="s"), "layer", "leaky"),
        (layers.Activation("relu6", name="s"), "layer", "relu6"),
        (layers.Dense(4, activation="relu", name="s"), "fused", "relu"),
        (
            layers.EinsumDense("ab,bc->ac", (4,), activation="relu", name="s"),
            "fused",
            "relu",
        ),
    ],
)
def test_every_standalone_and_dense_form_is_found(layer, form, kind):
    site = ker.find_relus(_chain(layer))[0]
    assert (site.name, site.path, site.form, site.kind) == ("s", "s", form, kind)
    assert site.layer_class == type(layer).__name__


@pytest.mark.parametrize(
    "layer, shape",
    [
        (layers.Conv1D(2, 3, activation="relu", name="s"), (8, 3)),
        (layers.Conv2D(2, 3, activation="relu", name="s"), (8, 8, 3)),
        (layers.Conv3D(2, 3, activation="relu", name="s"), (6, 6, 6, 3)),
        (layers.DepthwiseConv2D(3, activation="relu", name="s"), (8, 8, 3)),
        (layers.SeparableConv2D(2, 3, activation="relu", name="s"), (8, 8, 3)),
        (layers.Conv2DTranspose(2, 3, activation="relu", name="s"), (8, 8, 3)),
        (layers.Conv1DTranspose(2, 3, activation="relu", name="s"), (8, 3)),
    ],
)
def test_fused_activations_of_every_conv_family_are_found(layer, shape):
    (site,) = ker.find_relus(_chain(layer, shape=shape))
    assert (site.name, site.form, site.kind) == ("s", "fused", "relu")


def test_raw_ops_are_found_with_their_kind():
    inputs = keras.Input((8,))
    x = ops.relu(layers.Dense(8, name="d1")(inputs))
    y = ops.relu6(layers.Dense(8, name="d2")(x))
    model = keras.Model(inputs, y)
    sites = ker.find_relus(model)
    assert [(s.form, s.kind) for s in sites] == [("op", "relu"), ("op", "relu6")]


def test_other_activations_are_listed_only_when_asked():
    model = _chain(
        layers.Dense(4, activation="gelu", name="g"),
        layers.Activation("tanh", name="t"),
        layers.ReLU(name="r"),
        layers.Dense(3, activation="softmax", name="out"),
    )
    assert [s.name for s in ker.find_relus(model)] == ["r"]
    assert [s.name for s in ker.find_relus(model, kinds="gelu")] == ["g", "r"]
    assert [s.kind for s in ker.find_relus(model, kinds="any")] == [
        "gelu",
        "tanh",
        "relu",
    ]


def test_sites_are_in_topological_order_through_nested_models_two_levels_deep():
    inner_in = keras.Input((4,))
    inner = keras.Model(
        inner_in, layers.ReLU(name="inner_relu")(inner_in), name="inner"
    )
    middle_in = keras.Input((4,))
    x = layers.Dense(4, activation="relu", name="mid_fc")(middle_in)
    middle = keras.Model(middle_in, inner(x), name="middle")
    top_in = keras.Input((4,))
    x = layers.ReLU(name="top_relu")(top_in)
    model = keras.Model(top_in, layers.ReLU(name="last")(middle(x)), name="top")
    paths = [s.path for s in ker.find_relus(model)]
    assert paths == ["top_relu", "middle/mid_fc", "middle/inner/inner_relu", "last"]
    assert [s.index for s in ker.find_relus(model)] == [0, 1, 2, 3]


def test_nested_sequential_is_searched():
    block = keras.Sequential(
        [keras.Input((4,)), layers.Dense(4, name="fc"), layers.ReLU(name="act")],
        name="block",
    )
    inputs = keras.Input((4,))
    model = keras.Model(inputs, block(inputs))
    assert [s.path for s in ker.find_relus(model)] == ["block/fc", "block/act"][1:]


def test_shared_layer_is_one_site_with_its_call_count():
    shared = layers.ReLU(name="shared")
    inputs = keras.Input((4,))
    a = shared(layers.Dense(4, name="a")(inputs))
    b = shared(layers.Dense(4, name="b")(a))
    (site,) = ker.find_relus(keras.Model(inputs, b))
    assert site.calls == 2
