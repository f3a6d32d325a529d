"""The default policy on keras.applications models gives the notes' table.

Each expectation is written out from the models' own layer names (see
`shared/notes/eraserelu.md`), not computed by the package.
"""

import re

import keras
import pytest

import keras_eraserelu as ker

apps = keras.applications


def _blocks(stages):
    """`conv{s}_block{k}` names for ResNet-style stage sizes {s: n}."""
    return [f"conv{s}_block{k}" for s, n in stages.items() for k in range(1, n + 1)]


RESNET50_STAGES = {2: 3, 3: 4, 4: 6, 5: 3}
RESNET101_STAGES = {2: 3, 3: 4, 4: 23, 5: 3}
DENSENET121_STAGES = {2: 6, 3: 12, 4: 24, 5: 16}

CASES = {
    "ResNet50": (
        lambda: apps.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3)),
        49,
        [f"{b}_out" for b in _blocks(RESNET50_STAGES)],
    ),
    "ResNet101": (
        lambda: apps.ResNet101(
            weights=None, include_top=False, input_shape=(32, 32, 3)
        ),
        100,
        [f"{b}_out" for b in _blocks(RESNET101_STAGES)],
    ),
    "ResNet50V2": (
        lambda: apps.ResNet50V2(
            weights=None, include_top=False, input_shape=(32, 32, 3)
        ),
        49,
        [f"{b}_2_relu" for b in _blocks(RESNET50_STAGES)],
    ),
    "VGG16": (
        lambda: apps.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)),
        13,
        [
            "block1_conv2",
            "block2_conv2",
            "block3_conv3",
            "block4_conv3",
            "block5_conv3",
        ],
    ),
    "VGG19": (
        lambda: apps.VGG19(weights=None, include_top=False, input_shape=(32, 32, 3)),
        16,
        [
            "block1_conv2",
            "block2_conv2",
            "block3_conv4",
            "block4_conv4",
            "block5_conv4",
        ],
    ),
    "DenseNet121": (
        lambda: apps.DenseNet121(
            weights=None, include_top=False, input_shape=(32, 32, 3)
        ),
        121,
        [f"{b}_1_relu" for b in _blocks(DENSENET121_STAGES)],
    ),
    "Xception": (
        lambda: apps.Xception(weights=None, include_top=False, input_shape=(71, 71, 3)),
        35,
        [f"block{b}_sepconv2_act" for b in (2, 3, 4)]
        + [f"block{b}_sepconv3_act" for b in range(5, 13)]
        + ["block13_sepconv2_act"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_default_plan_matches_the_table(name):
    build, site_count, expected = CASES[name]
    plan = ker.plan_erasure(build())
    assert len(plan.sites) == site_count
    assert [site.name for site in plan.erased] == expected


def test_vgg16_with_top_keeps_the_fully_connected_relus():
    plan = ker.plan_erasure(apps.VGG16(weights=None))
    assert len(plan.sites) == 15
    assert len(plan.erased) == 5
    head = [s for s in plan.sites if s.module_name == "head"]
    assert [s.name for s in head] == ["fc1", "fc2"]
    assert all(s.form == "fused" for s in plan.erased)


def _branch_ends(model, concat_name):
    """Independent reference: the first Activation met walking back each input
    of a concatenation through BN, conv and inner concatenations."""
    found = []
    stack = [t._keras_history[0] for t in model.get_layer(concat_name).input]
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.Activation):
            found.append(layer.name)
        elif isinstance(
            layer,
            (
                keras.layers.BatchNormalization,
                keras.layers.Conv2D,
                keras.layers.Concatenate,
            ),
        ):
            inputs = layer.input if isinstance(layer.input, list) else [layer.input]
            stack.extend(t._keras_history[0] for t in inputs)
    return found


def test_inception_v3_erases_the_last_relu_of_every_branch():
    model = apps.InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3))
    plan = ker.plan_erasure(model)
    assert (len(plan.sites), len(plan.erased)) == (94, 44)
    assert [m.name for m in plan.modules] == [f"mixed{k}" for k in range(11)]
    for module in plan.modules:
        erased = {s.name for s in plan.erased if s.module == module.index}
        assert erased == set(_branch_ends(model, module.name)), module.name
    inner = {s.name for s in plan.erased if s.module in (9, 10)}
    assert (
        len(inner) == 12
    )  # each: 1x1, 3x3 split in two, double 3x3 split in two, pool


def test_nasnet_has_no_detectable_modules_and_says_so():
    model = apps.NASNetMobile(weights=None, input_shape=(32, 32, 3), include_top=False)
    plan = ker.plan_erasure(model)
    assert plan.erased == []
    assert any("No basic modules detected" in w for w in plan.warnings)
    assert all(re.search("select=", s.reason) for s in plan.sites)
