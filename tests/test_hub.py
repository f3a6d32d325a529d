"""KerasHub backbones and tasks keep what they are through every rewrite and
through saving; presets load offline. Every model is built from its config
(tiny, random weights) and every preset written here: nothing is downloaded.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import keras
import keras_hub
import numpy as np
import pytest

import keras_eraserelu as ker
from eraserelu.cli import main
from keras_eraserelu.core.hub import REWRITES, rewrites_of
from keras_eraserelu.models import (
    HubPreprocessing,
    create_model,
    load_hub_model,
)

ROOT = Path(__file__).parents[1]
HUB = keras_hub.models
SHAPE = (32, 32, 3)
RESNET = {"input_conv_filters": [64], "input_conv_kernel_sizes": [7],
          "image_shape": SHAPE}  # fmt: skip

# family: (class, config, placement, the sites it erases, by hand from the
# layer names the family's code gives).
FAMILIES = {
    "resnet_v1": (
        HUB.ResNetBackbone,
        {**RESNET, "stackwise_num_filters": [64, 64, 64, 64],
         "stackwise_num_blocks": [1, 1, 1, 1],
         "stackwise_num_strides": [1, 2, 2, 2], "block_type": "bottleneck_block"},
        {},
        [f"stack{s}_block0_out" for s in range(4)],
    ),
    "resnet_v2": (
        HUB.ResNetBackbone,
        {**RESNET, "stackwise_num_filters": [64, 64], "stackwise_num_blocks": [2, 2],
         "stackwise_num_strides": [1, 2], "block_type": "basic_block",
         "use_pre_activation": True},
        {},
        [f"stack{s}_block{b}_1_relu" for s in range(2) for b in range(2)],
    ),
    "densenet": (
        HUB.DenseNetBackbone,
        {"stackwise_num_repeats": [2, 2], "growth_rate": 8, "image_shape": SHAPE},
        {},
        [f"stack{s}_block{b}_2_relu" for s in (1, 2) for b in (1, 2)],
    ),
    "vgg": (
        HUB.VGGBackbone,
        {"stackwise_num_repeats": [1, 2], "stackwise_num_filters": [8, 16],
         "image_shape": SHAPE},
        {},
        ["block1_conv1", "block2_conv2"],
    ),
    "mobilenet": (
        HUB.MobileNetBackbone,
        {"stackwise_expansion": [[16, 24], [32]], "stackwise_num_blocks": [2, 1],
         "stackwise_num_filters": [[8, 8], [16]],
         "stackwise_kernel_size": [[3, 3], [3]],
         "stackwise_num_strides": [[2, 1], [2]],
         "stackwise_se_ratio": [[None, None], [0.25]],
         "stackwise_activation": [["relu", "relu"], ["hard_swish"]],
         "stackwise_padding": [[1, 1], [1]], "output_num_filters": 32,
         "depthwise_filters": 8, "depthwise_stride": 2, "depthwise_residual": False,
         "last_layer_filter": 32, "input_num_filters": 8, "image_shape": SHAPE},
        {"select": "block_1_0/activation*"},
        ["block_1_0/activation1", "block_1_0/activation2"],
    ),
    "efficientnet": (
        HUB.EfficientNetBackbone,
        {"stackwise_width_coefficients": [1.0, 1.0],
         "stackwise_depth_coefficients": [1.0, 1.0],
         "stackwise_kernel_sizes": [3, 3], "stackwise_num_repeats": [1, 2],
         "stackwise_input_filters": [8, 8], "stackwise_output_filters": [8, 16],
         "stackwise_expansion_ratios": [1, 4],
         "stackwise_squeeze_and_excite_ratios": [0.0, 0.25],
         "stackwise_strides": [1, 2], "stackwise_block_types": ["v1", "v1"],
         "input_shape": SHAPE},
        {"kinds": "silu"},
        ["block1a_dwconv_activation", "block2b_dwconv_activation"],
    ),
    "cspnet": (
        HUB.CSPNetBackbone,
        {"stem_filters": 8, "stem_kernel_size": 3, "stem_strides": 1,
         "stackwise_depth": [1, 2], "stackwise_strides": 2,
         "stackwise_num_filters": [16, 32], "block_type": "dark_block",
         "stage_type": "csp", "block_ratio": [1.0, 0.5], "bottle_ratio": [1.0, 0.5],
         "expand_ratio": [2.0, 1.0], "stem_padding": "same", "image_shape": SHAPE},
        {"kinds": "leaky"},
        [f"stage_{s}_csp_transition_b_activation" for s in (0, 1)],
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def backbones():
    """Each family's backbone, built once for the module, from its config."""
    keras.utils.set_random_seed(0)
    return {
        name: cls(**config, name=name) for name, (cls, config, _, _) in FAMILIES.items()
    }


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).uniform(0, 1, (2, *SHAPE)).astype("float32")


def erase(model, family, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # leaky/clipped notes, no modules
        return ker.erase_relu(model, **FAMILIES[family][2], **kwargs)


def layer_names(model):
    """Every layer's name, at any depth."""
    return [layer.name for layer in model._flatten_layers(include_self=False)]


def layer_classes(model):
    return [type(layer).__name__ for layer in model._flatten_layers(include_self=False)]


def as_json(config):
    """`config` as a saved file holds it (tuples become lists)."""
    return json.loads(json.dumps(config))


def functional_twin(model):
    """The same graph as a plain Functional: erasing it is the reference."""
    return keras.Model(model.input, model.output)


def assert_kept(new, source, rebuilt=False):
    """`new` is `source`'s class, same config, policy, pyramid and names (not
    when `rebuilt` by its constructor from a file: it names unnamed layers,
    such as MobileNet's input activation, from counters)."""
    assert isinstance(new, type(source)) and type(new).__name__ == type(source).__name__
    assert type(new).__module__ == "keras_eraserelu.core.hub"
    config = new.get_config()
    config.pop(REWRITES)
    assert as_json(config) == as_json(source.get_config())
    if not rebuilt:  # make_erasable adds `<fused layer>_erasable` after fused sites
        added = [name for name in layer_names(new) if name.endswith("_erasable")]
        assert [n for n in layer_names(new) if n not in added] == layer_names(source)
    assert new.dtype_policy.name == source.dtype_policy.name
    pyramid = getattr(source, "pyramid_outputs", {})
    assert list(getattr(new, "pyramid_outputs", {})) == list(pyramid)
    for level, tensor in new.pyramid_outputs.items() if pyramid else ():
        layer = tensor._keras_history[0]
        assert layer.name == pyramid[level]._keras_history[0].name
        assert any(layer is other for other in new.layers)  # on the new graph


@pytest.mark.parametrize("share", [False, True], ids=["copy", "share"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_erased_backbone_keeps_its_class_and_what_it_holds(
    backbones, pixels, family, share
):
    source = backbones[family]
    plan = ker.plan_erasure(source, **FAMILIES[family][2])
    assert [site.name for site in plan.erased] == FAMILIES[family][3]
    new = erase(source, family, share_weights=share)
    assert_kept(new, source)
    replaced = dict.fromkeys(name.split("/")[0] for name in FAMILIES[family][3])
    assert [list(names) for names in rewrites_of(new)] == [list(replaced)]
    if share:
        assert {id(v) for v in new.weights} == {id(v) for v in source.weights}
    else:
        assert not {id(v) for v in new.weights} & {id(v) for v in source.weights}
    reference = erase(functional_twin(source), family)
    np.testing.assert_array_equal(new(pixels), reference(pixels))
    if getattr(new, "pyramid_outputs", None):
        features = keras.Model(new.input, new.pyramid_outputs)(pixels)
        assert list(features) == list(source.pyramid_outputs)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_erasing_nothing_is_bit_identical(backbones, pixels, family):
    source = backbones[family]
    for share in (False, True):
        new = erase(source, family, exclude=lambda site: True, share_weights=share)
        assert_kept(new, source)
        assert rewrites_of(new) == ()
        np.testing.assert_array_equal(new(pixels), source(pixels))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_preset_and_keras_file_give_back_the_erased_backbone(
    backbones, pixels, family, tmp_path
):
    source = backbones[family]
    new = erase(source, family)
    expected = new(pixels)
    new.save_to_preset(tmp_path / "preset")
    saved = json.loads((tmp_path / "preset" / "config.json").read_text())
    assert saved["registered_name"] == f"keras_eraserelu.hub>{type(source).__name__}"
    for loader in (HUB.Backbone, type(source)):
        loaded = loader.from_preset(str(tmp_path / "preset"))
        assert_kept(loaded, source, rebuilt=True)
        assert layer_classes(loaded) == layer_classes(new)
        np.testing.assert_array_equal(loaded(pixels), expected)
    new.save(tmp_path / "erased.keras")
    loaded = keras.models.load_model(tmp_path / "erased.keras")  # safe mode
    assert type(loaded) is type(new)
    np.testing.assert_array_equal(loaded(pixels), expected)


def test_export_plain_gives_a_functional_model_of_standard_layers(backbones, pixels):
    erased = ker.erase_relu(backbones["resnet_v1"])
    plain = ker.export_plain(erased)
    assert type(plain).__name__ == "Functional"
    saved = json.dumps(plain.get_config())
    assert "keras_eraserelu" not in saved and "keras_hub" not in saved
    np.testing.assert_array_equal(plain(pixels), erased(pixels))


@pytest.mark.parametrize("family", ["resnet_v1", "vgg"])  # standalone, fused
def test_make_erasable_and_finalize_keep_the_class(backbones, pixels, family, tmp_path):
    source = backbones[family]
    erasable = ker.make_erasable(source)
    assert_kept(erasable, source)
    layers = ker.core.erasable_layers(erasable)
    assert len(layers) == len(FAMILIES[family][3])
    shared = ker.make_erasable(source, share_weights=True)
    assert {id(v) for v in source.weights} <= {id(v) for v in shared.weights}
    for layer in layers:
        layer.alpha.assign(1.0)
    erasable.save(tmp_path / "erasable.keras")
    reloaded = keras.models.load_model(tmp_path / "erasable.keras")
    assert [float(lyr.alpha.numpy()) for lyr in ker.core.erasable_layers(reloaded)] == [
        1.0
    ] * len(layers)
    final = ker.finalize_erasure(reloaded)
    assert_kept(final, source, rebuilt=True)
    assert len(rewrites_of(final)) == 2  # made erasable, then finalized
    np.testing.assert_allclose(final(pixels), erase(source, family)(pixels), atol=1e-6)
    final.save_to_preset(tmp_path / "final")
    again = HUB.Backbone.from_preset(str(tmp_path / "final"))
    np.testing.assert_array_equal(again(pixels), final(pixels))


@pytest.fixture(scope="module")
def task(backbones):
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=SHAPE[:2], scale=1 / 255.0, offset=(-0.5, -0.4, -0.3)
    )
    preprocessor = HUB.ResNetImageClassifierPreprocessor(image_converter=converter)
    return HUB.ResNetImageClassifier(
        backbone=backbones["resnet_v1"], num_classes=3, preprocessor=preprocessor
    )


@pytest.mark.filterwarnings(  # keras-hub's, for its own tasks too
    "ignore:`compile\\(\\)` was not called as part of model loading"
)
def test_task_keeps_its_class_preprocessor_and_head(task, pixels, tmp_path):
    raw = pixels * 255.0
    for share in (True, False):
        new = ker.erase_relu(task, share_weights=share)
        assert isinstance(new, HUB.ResNetImageClassifier)
        assert type(new).backbone_cls is type(new.backbone)
        assert_kept(new.backbone, task.backbone)
        assert new.preprocessor is task.preprocessor
        assert new.num_classes == 3 and new.compiled
        assert (new.output_dense is task.output_dense) == share
        for ours, theirs in zip(new.output_dense.weights, task.output_dense.weights):
            np.testing.assert_array_equal(ours, theirs)
    reference = ker.erase_relu(functional_twin(task))
    np.testing.assert_array_equal(new(pixels), reference(pixels))
    new.save_to_preset(tmp_path / "task")
    expected = new(new.preprocessor(raw))
    for loader in (HUB.ImageClassifier, HUB.ResNetImageClassifier):
        loaded = loader.from_preset(str(tmp_path / "task"))
        assert type(loaded) is type(new)
        np.testing.assert_array_equal(loaded(loaded.preprocessor(raw)), expected)
    converter = keras_hub.layers.ImageConverter.from_preset(str(tmp_path / "task"))
    assert tuple(converter.image_size) == SHAPE[:2]
    new.save(tmp_path / "task.keras")
    loaded = keras.models.load_model(tmp_path / "task.keras")
    np.testing.assert_array_equal(loaded(pixels), new(pixels))


APPLICATIONS = {  # KerasHub config at full depth (narrow) vs keras.applications
    "ResNet50": (
        HUB.ResNetBackbone,
        {**RESNET, "stackwise_num_filters": [64] * 4,
         "stackwise_num_blocks": [3, 4, 6, 3], "stackwise_num_strides": [1, 2, 2, 2],
         "block_type": "bottleneck_block"},
    ),
    "ResNet50V2": (
        HUB.ResNetBackbone,
        {**RESNET, "stackwise_num_filters": [64] * 4,
         "stackwise_num_blocks": [3, 4, 6, 3], "stackwise_num_strides": [1, 2, 2, 2],
         "block_type": "bottleneck_block", "use_pre_activation": True},
    ),
    "DenseNet121": (
        HUB.DenseNetBackbone,
        {"stackwise_num_repeats": [6, 12, 24, 16], "growth_rate": 4,
         "image_shape": SHAPE},
    ),
    "VGG16": (
        HUB.VGGBackbone,
        {"stackwise_num_repeats": [2, 2, 3, 3, 3],
         "stackwise_num_filters": [4] * 5, "image_shape": SHAPE},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_placements_equal_the_keras_applications_counterpart(name):
    """The same architecture from both libraries (KerasHub narrower): the
    same sites, modules, and erased (module, position) pairs."""
    cls, config = APPLICATIONS[name]
    ours = ker.plan_erasure(cls(**config))
    theirs = ker.plan_erasure(
        getattr(keras.applications, name)(
            weights=None, include_top=False, input_shape=SHAPE
        )
    )
    assert (len(ours.sites), len(ours.modules)) == (
        len(theirs.sites),
        len(theirs.modules),
    )

    def placement(plan):
        return [(site.module, site.position, site.form) for site in plan.erased]

    assert placement(ours) == placement(theirs)


@pytest.fixture(scope="module")
def preset(task, tmp_path_factory):
    """The task written with `save_to_preset`: a directory."""
    path = tmp_path_factory.mktemp("hub") / "tiny_resnet"
    task.save_to_preset(str(path))
    return str(path)


def test_create_model_and_load_hub_model_read_a_preset_offline(preset, pixels):
    plain = create_model(f"hub:{preset}")
    assert type(plain) is HUB.ResNetImageClassifier  # the preset's own task
    erased = create_model(f"hub:{preset}", erase="last")
    assert isinstance(erased, HUB.ResNetImageClassifier)
    assert type(erased.backbone.get_layer("stack0_block0_out")).__name__ == "Identity"
    loaded = load_hub_model(preset, classes=5, erase="last", preprocessor=False)
    assert loaded.name == "tiny_resnet"
    assert loaded.model.output_shape == (None, 5) and loaded.model.preprocessor is None
    assert loaded.preprocessing == HubPreprocessing(
        image_size=(32, 32), scale=1 / 255.0, offset=(-0.5, -0.4, -0.3)
    )
    np.testing.assert_allclose(
        loaded.preprocessing.normalize(np.full((1, 1, 3), 255.0)),
        [[[0.5, 0.6, 0.7]]],
        rtol=1e-6,
    )
    backbone = load_hub_model(f"hub:{preset}", erase="last").model.backbone
    np.testing.assert_array_equal(
        backbone(pixels), ker.erase_relu(plain.backbone)(pixels)
    )


@pytest.mark.parametrize(
    "preset, error, match",
    [
        ("resnet_50_imagnet", ValueError, r"Unknown KerasHub preset "
         r"'resnet_50_imagnet': not a preset directory.*Did you mean "
         r"'resnet_50_imagenet'"),
        (3, TypeError, r"`preset` must be a str or path.*Received: preset=3 of "
         r"type int"),
    ],
)  # fmt: skip
def test_load_hub_model_errors_name_the_preset(preset, error, match):
    with pytest.raises(error, match=match):
        load_hub_model(preset)


def test_load_hub_model_refuses_a_directory_without_config_and_bad_classes(
    tmp_path, preset
):
    with pytest.raises(ValueError, match=r"is not a KerasHub preset: it has no "):
        load_hub_model(str(tmp_path))
    with pytest.raises(ValueError, match=r"`classes` must be an int >= 1"):
        load_hub_model(preset, classes=0)


def test_load_hub_model_without_keras_hub_says_what_to_install(preset, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(ImportError, match=r'pip install "keras-eraserelu\[hub\]"'):
        load_hub_model(preset)


def test_inspect_reads_a_preset(preset, capsys):
    assert main(["inspect", f"hub:{preset}"]) == 0
    out = capsys.readouterr().out
    assert "13 sites, 4 modules (ended by merges), 4 to erase" in out
    assert "resnet_v1/stack0_block0_out" in out


def test_a_new_process_opens_erased_presets_and_files(task, tmp_path, pixels):
    """`import keras_eraserelu`, then keras_hub (the order in which the kept
    classes cannot exist yet): they are registered as keras_hub loads, and
    keras-hub and Keras open the files as they are."""
    erased = ker.erase_relu(task.backbone)
    erased.save_to_preset(str(tmp_path / "preset"))
    erased.save(tmp_path / "erased.keras")
    np.save(tmp_path / "pixels.npy", pixels)
    np.save(tmp_path / "expected.npy", erased(pixels))
    code = textwrap.dedent(f"""
        import keras_eraserelu
        import keras, keras_hub, numpy as np
        pixels = np.load({str(tmp_path / "pixels.npy")!r})
        expected = np.load({str(tmp_path / "expected.npy")!r})
        preset = keras_hub.models.Backbone.from_preset({str(tmp_path / "preset")!r})
        archive = keras.models.load_model({str(tmp_path / "erased.keras")!r})
        for model in (preset, archive):
            print(type(model).__module__, np.array_equal(model(pixels), expected))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["keras_eraserelu.core.hub", "True"] * 2
