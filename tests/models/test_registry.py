"""One loop over the whole registry: every builder builds, runs, names every
layer predictably, detects its own blocks as modules, and erases like
`erase_relu`."""

import importlib
import inspect
import re

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from keras_eraserelu.models import create_model, get_builder, list_models

# Same code paths as a smaller sibling in the loop, but 5-60 s to build here:
# their parameter counts are tested in the family test files.
SLOW = {
    "cifar_preact_resnet1001": "cifar_preact_resnet164",
    "cifar_resnet1202": "cifar_resnet110",
    "resnet101": "resnet50",
    "resnet152": "resnet50",
    "resnext29_16x64d": "resnext29_8x64d",
    "wrn28_10": "wrn16_8",
}


def small_shape(name):
    if name.startswith(("resnet", "vgg1", "bn_inception")):
        return (64, 64, 3)
    if name == "inception_v3":
        return (75, 75, 3)
    return (32, 32, 3)


def _snake(class_name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()


def _is_counter_name(layer):
    """Keras' automatic names: the class name in snake case, maybe `_N`."""
    base = _snake(type(layer).__name__)
    return re.fullmatch(rf"{base}(_\d+)?", layer.name) is not None


def _module_end_names(model):
    plain = all(
        not isinstance(layer, (keras.layers.Add, keras.layers.Concatenate))
        for layer in model.layers
    )
    suffix = "_pool" if plain else "_out"
    ends = [layer.name for layer in model.layers if layer.name.endswith(suffix)]
    return [n for n in ends if not n.startswith(("stem", "head"))]


@pytest.mark.parametrize("name", [n for n in list_models() if n not in SLOW])
def test_every_registered_model(name):
    shape = small_shape(name)
    model = create_model(name, input_shape=shape, classes=7)

    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert not [layer.name for layer in model.layers if _is_counter_name(layer)]

    plan = ker.plan_erasure(model)
    assert [m.name for m in plan.modules] == _module_end_names(model)
    for site in plan.sites:
        if site.module is not None:
            block = site.module_name.rsplit("_", 1)[0]
            assert site.name.startswith(block + "_"), (site.name, site.module_name)
    assert len(plan.erased) >= len(plan.modules) > 0

    erased = create_model(name, input_shape=shape, classes=7, erase="last")
    by_rewriter = ker.erase_relu(model)
    remaining = lambda m: [(s.path, s.kind) for s in ker.find_relus(m)]  # noqa: E731
    assert remaining(erased) == remaining(by_rewriter)
    assert [s.name for s in ker.plan_erasure(erased).erased_before] == [
        s.name for s in plan.erased
    ]

    images = np.random.default_rng(0).random((2, *shape)).astype("float32")
    outputs = np.asarray(erased(images))
    assert outputs.shape == (2, 7)
    np.testing.assert_allclose(outputs.sum(axis=1), 1.0, rtol=1e-5)


def test_slow_models_are_registered_and_have_a_sibling_in_the_loop():
    assert set(SLOW) <= set(list_models())
    assert set(SLOW.values()) <= set(list_models()) - set(SLOW)


def test_registry_errors_name_the_problem(tmp_path):
    with pytest.raises(
        ValueError, match="Unknown model name 'cifar_resnet21'.*'cifar_resnet20'"
    ):
        create_model("cifar_resnet21")
    with pytest.raises(
        FileNotFoundError, match="Weights file not found.*nowhere.weights.h5"
    ):
        create_model("cifar_resnet8", weights=str(tmp_path / "nowhere.weights.h5"))
    with pytest.raises(IndexError, match="where=5 is out of range for module 0"):
        create_model("cifar_resnet8", erase=5)
    with pytest.raises(ValueError, match="Unknown erase=2.5"):
        create_model("cifar_resnet8", erase=2.5)
    with pytest.raises(ValueError, match="`classes` must be an int >= 1. Received"):
        create_model("cifar_vgg_tiny", classes=0)


APPLICATION_ARGS = [
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "name",
    "erase",
]


@pytest.mark.parametrize("name", list_models())
def test_builder_signature_and_docstring(name):
    """keras.applications' arguments first, `name` defaulting to the key; the
    builder is its module's attribute of that name; `help()` lists every
    argument under Args."""
    builder = get_builder(name)
    assert builder.__name__ == name
    assert getattr(importlib.import_module(builder.__module__), name) is builder
    parameters = inspect.signature(builder).parameters
    assert list(parameters)[: len(APPLICATION_ARGS)] == APPLICATION_ARGS
    assert parameters["include_top"].default is True
    assert parameters["name"].default == name
    doc = inspect.getdoc(builder)
    args = doc[doc.index("Args:") : doc.index("Returns:")]
    documented = re.findall(r"^    (\w+): ", args, flags=re.MULTILINE)
    assert documented == list(parameters)


def test_builder_arguments_bind_like_a_function():
    builder = get_builder("cifar_resnet8")
    assert builder(False).output.shape == (None, 8, 8, 64)  # include_top
    with pytest.raises(
        TypeError,
        match="cifar_resnet8\\(\\) got an unexpected keyword argument 'width'",
    ):
        builder(width=2)
    with pytest.raises(TypeError, match="multiple values for argument 'include_top'"):
        builder(True, include_top=False)
    with pytest.raises(TypeError, match="`classes` must be an int >= 1.*float"):
        builder(classes=2.5)


def test_weights_file_round_trip(tmp_path):
    model = create_model("cifar_resnet8", erase="last")
    path = tmp_path / "r8.weights.h5"
    model.save_weights(path)
    again = create_model("cifar_resnet8", erase="last", weights=str(path))
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(model(images), again(images))


def test_cli_lists_models_with_parameter_counts(capsys):
    from eraserelu.cli import main

    assert main(["models", "cifar_resnet2*"]) == 0
    assert "cifar_resnet20        269,722 trainable params" in capsys.readouterr().out
