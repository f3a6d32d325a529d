"""Gates (a tensor times its own function) neither end modules nor hold sites."""

import keras
import numpy as np
import pytest
from keras import layers

import keras_eraserelu as ker


def se_resnet(blocks=2, filters=8):
    """Residual blocks with squeeze-and-excitation before the Add, no ReLU after it.

    Block b: conv-BN-ReLU (b{b}_relu1), conv-BN-ReLU (b{b}_relu2), then
    y * sigmoid(conv(ReLU (b{b}_se_relu)(conv(pool(y))))), added to the input.
    """
    inputs = keras.Input((8, 8, filters))
    x = inputs
    for b in range(blocks):
        y = x
        for k in (1, 2):
            y = layers.Conv2D(filters, 3, padding="same", name=f"b{b}_conv{k}")(y)
            y = layers.BatchNormalization(name=f"b{b}_bn{k}")(y)
            y = layers.ReLU(name=f"b{b}_relu{k}")(y)
        gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"b{b}_se_pool")(y)
        gate = layers.Conv2D(2, 1, name=f"b{b}_se_reduce")(gate)
        gate = layers.ReLU(name=f"b{b}_se_relu")(gate)
        gate = layers.Conv2D(filters, 1, activation="sigmoid", name=f"b{b}_se_expand")(
            gate
        )
        y = layers.Multiply(name=f"b{b}_se_mul")([y, gate])
        x = layers.Add(name=f"b{b}_add")([x, y])
    return keras.Model(inputs, x, name="se_resnet")


def erased(plan):
    return [site.name for site in plan.erased]


def test_squeeze_excitation_is_not_a_module_and_its_relu_never_the_last():
    plan = ker.plan_erasure(se_resnet())
    assert [module.name for module in plan.modules] == ["b0_add", "b1_add"]
    assert erased(plan) == ["b0_relu2", "b1_relu2"]
    assert erased(ker.plan_erasure(se_resnet(), "first")) == ["b0_relu1", "b1_relu1"]
    assert erased(ker.plan_erasure(se_resnet(), "all")) == [
        "b0_relu1",
        "b0_relu2",
        "b1_relu1",
        "b1_relu2",
    ]
    assert erased(ker.plan_erasure(se_resnet(), -1)) == erased(plan)
    with pytest.raises(IndexError, match="which has 2 ReLU sites"):
        ker.plan_erasure(se_resnet(), 2)


def test_gating_sites_say_which_gate_and_can_still_be_selected():
    model = se_resnet()
    by_name = {site.name: site for site in ker.plan_erasure(model).sites}
    assert by_name["b1_se_relu"].decision == "keep"
    assert by_name["b1_se_relu"].reason == "on the gating branch of 'b1_se_mul'"
    chosen = ker.plan_erasure(model, select="*_se_relu")
    assert erased(chosen) == ["b0_se_relu", "b1_se_relu"]


def test_erasing_the_feature_path_leaves_the_gates_working():
    model = se_resnet(blocks=1)
    erased_model = ker.erase_relu(model)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 8)).astype("float32")

    # The same network built by hand without b0_relu2.
    def by_hand(t):
        get = model.get_layer
        y = t
        for k in (1, 2):
            y = get(f"b0_bn{k}")(get(f"b0_conv{k}")(y), training=False)
            y = keras.ops.relu(y) if k == 1 else y
        pooled = keras.ops.mean(y, axis=(1, 2), keepdims=True)
        gate = get("b0_se_expand")(keras.ops.relu(get("b0_se_reduce")(pooled)))
        return t + y * gate

    np.testing.assert_allclose(
        erased_model.predict(x, verbose=0), by_hand(x), rtol=1e-5, atol=1e-5
    )


def test_mobilenet_v3_gates_are_left_alone():
    model = keras.applications.MobileNetV3Small(
        weights=None,
        include_top=False,
        input_shape=(96, 96, 3),
        include_preprocessing=False,
    )
    for where in ("last", "first", "all"):
        plan = ker.plan_erasure(model, where, kinds=("relu", "relu6"))
        assert plan.erased, where
        assert all(module.name.endswith("_add") for module in plan.modules)
        gating = [s for s in plan.sites if s.reason.startswith("on the gating branch")]
        # Every squeeze-excitation ReLU and hard-sigmoid ReLU6 (two per block).
        assert len(gating) == 2 * sum(
            layer.name.endswith("squeeze_excite_mul") for layer in model.layers
        )
        assert not {s.name for s in gating} & set(erased(plan))
