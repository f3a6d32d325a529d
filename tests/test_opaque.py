"""Layers the graph walker cannot see into: blocks ending in them are left
alone and say why, activation sub-layers they keep are nested sites erased
through their config, names survive any get_config, and "no module" says why.
"""

import keras
import numpy as np
import pytest
from keras import layers, ops

import keras_eraserelu as ker
from keras_eraserelu.core.nested import nested_changes


@keras.saving.register_keras_serializable(package="test_opaque")
class ReluInside(layers.Layer):
    """A custom layer that applies a ReLU the graph cannot see."""

    def call(self, inputs):
        return ops.relu(inputs)


@keras.saving.register_keras_serializable(package="test_opaque")
class Scale(layers.Layer):
    """A custom linear layer (the walker cannot know it is linear)."""

    def call(self, inputs):
        return 0.5 * inputs


@keras.saving.register_keras_serializable(package="test_opaque")
class ConvBlock(layers.Layer):
    """A block keeping its activations as attributes: `act` is set by the
    `activation` argument, `post` and `pre` together by `post_activation`,
    `fixed` by nothing."""

    def __init__(self, filters, activation="relu", post_activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.activation = activation
        self.post_activation = post_activation
        self.conv = layers.Conv2D(filters, 3, padding="same", name=f"{self.name}_conv")
        self.act = layers.Activation(activation)
        self.pre = layers.Activation(post_activation)
        self.post = layers.Activation(post_activation)
        self.fixed = layers.ReLU()

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, inputs):
        x = self.pre(self.act(self.conv(inputs)))
        return self.fixed(self.post(x)) + inputs

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "activation": self.activation,
            "post_activation": self.post_activation,
        }


@keras.saving.register_keras_serializable(package="test_opaque")
class RenamingBlock(layers.Layer):
    """Appends "_0" to its name, and names its sub-layer after it, as
    KerasHub's DepthwiseConvBlock does: each rebuild from config renames it."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.name = f"{self.name}_0"
        self.conv = layers.Conv2D(filters, 1, name=f"{self.name}_conv")

    def call(self, inputs):
        return self.conv(inputs)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def residual_blocks(last, blocks=2):
    """conv-relu-conv + shortcut -> add -> `last(name)` per block."""
    inputs = keras.Input((8, 8, 4), name="image")
    x = inputs
    for b in range(1, blocks + 1):
        y = layers.Conv2D(4, 3, padding="same", name=f"b{b}_conv1")(x)
        y = layers.ReLU(name=f"b{b}_relu1")(y)
        y = layers.Conv2D(4, 3, padding="same", name=f"b{b}_conv2")(y)
        x = last(f"b{b}_out")(layers.Add(name=f"b{b}_add")([x, y]))
    return keras.Model(inputs, x, name="blocks")


def names(plan):
    return [site.name for site in plan.erased]


def all_layer_names(model):
    return [layer.name for layer in model._flatten_layers(include_self=False)]


@pytest.mark.parametrize(
    "last, label",
    [
        (lambda name: layers.Lambda(ops.relu, name=name), "Lambda"),
        (lambda name: ReluInside(name=name), "ReluInside"),
    ],
)
def test_block_ending_in_an_opaque_layer_erases_nothing_and_says_why(last, label):
    model = residual_blocks(last)
    plan = ker.plan_erasure(model)
    assert [m.name for m in plan.modules] == ["b1_out", "b2_out"]
    assert [m.hidden_by for m in plan.modules] == [("b1_out",), ("b2_out",)]
    assert names(plan) == []  # b1_relu1 is not the last ReLU: it is not erased
    reason = plan.sites[0].reason
    assert f"module 0 ends in 'b1_out' ({label})" in reason
    assert "cannot see into" in reason and "select=" in reason
    (warning,) = plan.warnings
    assert "In 2 modules of 'blocks' the last ReLU cannot be told" in warning
    assert f"module 1 ends in 'b2_out' ({label})" in warning
    for where in ("first", "all", 0):
        assert names(ker.plan_erasure(model, where)) == []
    assert names(ker.plan_erasure(model, select="b1_relu1")) == ["b1_relu1"]
    with pytest.warns(UserWarning, match="the last ReLU cannot be told"):
        same = ker.erase_relu(model)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")
    np.testing.assert_array_equal(same(x), model(x))


def test_opaque_layer_between_the_last_relu_and_the_end_hides_it():
    inputs = keras.Input((8, 8, 4))
    x = inputs
    for b in (1, 2):
        y = layers.ReLU(name=f"b{b}_relu1")(
            layers.Conv2D(4, 3, padding="same", name=f"b{b}_conv1")(x)
        )
        y = Scale(name=f"b{b}_scale")(
            layers.Conv2D(4, 3, padding="same", name=f"b{b}_conv2")(y)
        )
        x = layers.Add(name=f"b{b}_add")([x, y])
    plan = ker.plan_erasure(keras.Model(inputs, x))
    assert [m.hidden_by for m in plan.modules] == [("b1_scale",), ("b2_scale",)]
    assert names(plan) == []
    assert "module 0 passes through 'b1_scale' (Scale)" in plan.sites[0].reason


def test_opaque_layer_on_the_shortcut_does_not_hide_the_last_relu():
    inputs = keras.Input((8, 8, 4))
    x = inputs
    for b in (1, 2):
        y = layers.ReLU(name=f"b{b}_relu1")(
            layers.Conv2D(4, 3, padding="same", name=f"b{b}_conv1")(x)
        )
        y = layers.Conv2D(4, 3, padding="same", name=f"b{b}_conv2")(y)
        x = layers.Add(name=f"b{b}_add")([Scale(name=f"b{b}_shortcut")(x), y])
    plan = ker.plan_erasure(keras.Model(inputs, x))
    assert [m.hidden_by for m in plan.modules] == [(), ()]
    assert names(plan) == ["b1_relu1", "b2_relu1"]
    assert plan.warnings == ()


@pytest.fixture(scope="module")
def block_model():
    inputs = keras.Input((8, 8, 4), name="image")
    x = ConvBlock(4, name="blk")(inputs)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(3, name="logits")(x), name="net")


def test_activation_sub_layers_are_nested_sites(block_model):
    sites = ker.find_relus(block_model)
    assert [(s.name, s.form, s.kind, s.layer_class) for s in sites] == [
        ("blk/act", "nested", "relu", "Activation"),
        ("blk/pre", "nested", "relu", "Activation"),
        ("blk/post", "nested", "relu", "Activation"),
        ("blk/fixed", "nested", "relu", "ReLU"),
    ]
    plan = ker.plan_erasure(block_model)
    assert plan.erased == []
    assert plan.sites[0].reason == (
        "inside 'blk' (ConvBlock), which the graph walker sees as one layer: "
        "choose it with select="
    )


def test_nested_site_is_erased_through_its_layer_config(block_model, tmp_path):
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 4)).astype("float32")
    plan = ker.plan_erasure(block_model, select=["blk/act", "blk/pre", "blk/post"])
    assert names(plan) == ["blk/act", "blk/pre", "blk/post"]
    erased = ker.erase_relu(block_model, plan=plan)
    config = erased.get_layer("blk").get_config()
    assert (config["activation"], config["post_activation"]) == ("linear", "linear")
    assert block_model.get_layer("blk").get_config()["activation"] == "relu"
    source = block_model.get_layer("blk")
    reference = ConvBlock(4, activation="linear", post_activation="linear")
    reference(x)  # builds its convolution
    reference.set_weights(source.get_weights())
    np.testing.assert_allclose(
        erased.get_layer("blk")(x), reference(x), rtol=1e-6, atol=1e-6
    )
    path = tmp_path / "nested.keras"
    erased.save(path)
    reloaded = keras.models.load_model(path)  # safe mode
    np.testing.assert_array_equal(reloaded(x), erased(x))
    assert [s.name for s in ker.find_relus(reloaded)] == ["blk/fixed"]


@pytest.mark.parametrize(
    "select, match",
    [
        ("blk/post", r"'blk/post' cannot be erased alone: the config of 'blk' "
         r"\(ConvBlock\) sets it together with \['blk/pre'\] through "
         r"`post_activation`"),
        ("blk/fixed", r"'blk/fixed' cannot be erased safely: no argument of the "
         r"config of 'blk' \(ConvBlock\) sets it"),
    ],
)  # fmt: skip
def test_nested_site_its_config_cannot_erase_is_kept_with_the_reason(
    block_model, select, match
):
    plan = ker.plan_erasure(block_model, select=select)
    assert plan.erased == []
    kept = next(s for s in plan.sites if s.name == select)
    assert kept.decision == "keep"
    assert any(select in w and "Kept" in w for w in plan.warnings)
    with pytest.raises(ValueError, match=match):
        nested_changes(block_model.get_layer("blk"), [select.split("/")[1]])


def test_make_erasable_refuses_nested_sites(block_model):
    with pytest.raises(ValueError, match="cannot make nested sites erasable"):
        ker.make_erasable(block_model, select="blk/act")


def test_every_layer_keeps_its_name_whatever_its_get_config_does():
    inputs = keras.Input((8, 8, 4), name="image")
    y = RenamingBlock(4, name="block")(inputs)  # named "block_0"
    x = layers.ReLU(name="b1_out")(layers.Add(name="b1_add")([inputs, y]))
    y = layers.Conv2D(4, 1, name="b2_conv")(x)
    x = layers.ReLU(name="b2_out")(layers.Add(name="b2_add")([x, y]))
    model = keras.Model(inputs, x)
    assert all_layer_names(model)[:3] == ["image", "block_0", "block_0_conv"]
    erasable = ker.make_erasable(model)
    for alpha_model in ker.core.erasable_layers(erasable):
        alpha_model.alpha.assign(1.0)
    rewrites = {
        "erase_relu": ker.erase_relu(model),
        "erase_relu(share)": ker.erase_relu(model, share_weights=True),
        "make_erasable": erasable,
        "finalize_erasure": ker.finalize_erasure(erasable),
    }
    for label, rewritten in rewrites.items():
        assert all_layer_names(rewritten) == all_layer_names(model), label


def cross_wired_cells():
    """Cells each fed by the two cells before (as in NASNet): one cut point."""
    inputs = keras.Input((8, 8, 4))
    previous, current = inputs, layers.ReLU(name="stem")(inputs)
    for c in range(3):
        branch = layers.ReLU(name=f"c{c}_relu")(
            layers.Conv2D(4, 1, name=f"c{c}_conv")(previous)
        )
        previous, current = current, layers.Add(name=f"c{c}_add")([branch, current])
    return keras.Model(inputs, current, name="cells")


def test_no_module_warnings_say_why_and_what_to_pass():
    (warning,) = ker.plan_erasure(cross_wired_cells()).warnings
    assert "its cells are cross-wired" in warning and "4 relu" in warning
    inputs = keras.Input((8, 8, 4))
    x = inputs
    for b in (1, 2):
        y = layers.Conv2D(4, 1, activation="silu", name=f"b{b}_conv1")(x)
        y = layers.Conv2D(4, 1, name=f"b{b}_conv2")(y)
        x = layers.Add(name=f"b{b}_add")([x, y])
    swish = keras.Model(inputs, x, name="swish_net")
    (warning,) = ker.plan_erasure(swish).warnings
    assert warning.startswith(
        "No module of 'swish_net' holds a site of kinds ['relu']. Its 2 "
        "activation sites are 2 silu; kinds=('silu',) finds 2 modules."
    )
    assert names(ker.plan_erasure(swish, kinds="silu")) == ["b1_conv1", "b2_conv1"]


def test_mobilenet_v2_warning_points_to_relu6():
    model = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.35
    )
    (warning,) = ker.plan_erasure(model).warnings
    assert (
        "Its 35 activation sites are 35 relu6; kinds=('relu6',) finds 10 modules"
        in (warning)
    )
    assert "no merging or pooling cut points" not in warning
    assert len(ker.plan_erasure(model, kinds="relu6").modules) == 10
