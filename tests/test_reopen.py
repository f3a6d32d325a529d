"""Every file the package writes reopens in a new process (issue 13, item 2).

Each test writes one kind of `.keras` file, with a fixed input and the
original model's outputs next to it (`<name>.input.npy`,
`<name>.expected.npy`), then opens the files in a new Python process: first
with Keras alone (a package file must fail with an error naming
`keras_eraserelu`; a file of `export_plain` must open and give the same
outputs), then after `import keras_eraserelu` alone, in safe mode, compiled
and not, with the same outputs. Then `export_plain` against the originals.
"""

import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from keras_eraserelu.core.erasable_relu import ErasableReLU
from keras_eraserelu.models import FusedBatchNormalization, create_model
from keras_eraserelu.models.layers import ZeroPadShortcut

# The smallest model of every family of the registry, with an input it takes.
FAMILIES = {
    "cifar_resnet8": (32, 32, 3),
    "cifar_preact_resnet_tiny": (32, 32, 3),
    "wrn10_1": (32, 32, 3),
    "resnext_tiny": (32, 32, 3),
    "cifar_vgg_tiny": (32, 32, 3),
    "resnet_tiny": (64, 64, 3),
    "inception_tiny": (75, 75, 3),
}
DIGITS = (8, 8, 1)
FAST = {"epochs": 1, "steps_per_epoch": 2, "validation_steps": 1, "verbose": 0}
# Same classes, same kernels: a reopened file gives the very same numbers.
SAME = 1e-6
# Keras' BatchNormalization against the fused kernel: float rounding only.
CLOSE = {"rtol": 1e-5, "atol": 1e-5}

CHILD = r"""
import json, sys
import numpy as np
import keras

paths = json.loads(sys.argv[1])
loaded = set(sys.modules)  # Keras itself imports matplotlib here


def difference(path, model):
    stem = path[: -len(".keras")]
    outputs = keras.ops.convert_to_numpy(model(np.load(stem + ".input.npy")))
    return float(np.max(np.abs(outputs - np.load(stem + ".expected.npy"))))


report = {"without": {}, "with": {}, "uncompiled": {}, "optimizer": {}}
for path in paths:
    try:
        model = keras.models.load_model(path)
        report["without"][path] = {"diff": difference(path, model)}
    except Exception as error:
        report["without"][path] = {"error": f"{type(error).__name__}: {error}"}

import keras_eraserelu  # noqa: E402  (alone: no tuner, no data sets)

report["heavy"] = [
    name
    for name in ("keras_eraserelu.tuning", "keras_eraserelu.experiments",
                 "keras_tuner", "tensorflow_datasets", "matplotlib")
    if name in sys.modules and name not in loaded
]
for path in paths:
    model = keras.models.load_model(path, safe_mode=True)
    report["with"][path] = difference(path, model)
    optimizer = getattr(model, "optimizer", None)
    report["optimizer"][path] = optimizer and type(optimizer).__name__
    if optimizer is not None:  # compile=False failed before the optimizer
        uncompiled = keras.models.load_model(path, compile=False, safe_mode=True)
        report["uncompiled"][path] = difference(path, uncompiled)
print(json.dumps(report))
"""


@pytest.fixture(autouse=True)
def fresh_session():
    yield
    keras.backend.clear_session()


def save(model, path, x):
    """Saves `model` with a fixed input and its outputs next to it."""
    path = str(path)
    model.save(path)
    stem = path[: -len(".keras")]
    np.save(stem + ".input.npy", x)
    np.save(stem + ".expected.npy", outputs(model, x))
    return path


def outputs(model, x):
    """Inference outputs, computed as the child computes them."""
    return keras.ops.convert_to_numpy(model(x))


def reopen(expect):
    """Opens the files in a new process; `expect`: path -> opens without the
    package (True for standard-Keras files). Returns the child's report."""
    paths = list(expect)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(paths)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    for path, plain in expect.items():
        name = os.path.basename(path)
        assert report["with"][path] <= SAME, name
        assert report["uncompiled"].get(path, 0.0) <= SAME, name
        without = report["without"][path]
        if plain:
            assert without.get("diff", 1.0) <= SAME, (name, without)
        else:
            assert "keras_eraserelu" in without.get("error", ""), (name, without)
    return report


def random_statistics(model, seed=0):
    """Moving statistics and BN scales away from their initial values."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, w.shape).astype("float32")
                    for w in layer.get_weights()
                ]
            )
    return model


def inputs(shape, batch=2, seed=1):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


def standard_model():
    """A small residual network of standard Keras layers only."""
    x = inputs_ = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem_conv")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", name="b1_conv1")(x)
    y = keras.layers.BatchNormalization(name="b1_bn1")(y)
    y = keras.layers.ReLU(name="b1_relu1")(y)
    y = keras.layers.Conv2D(4, 3, padding="same", name="b1_conv2")(y)
    x = keras.layers.Add(name="b1_add")([x, y])
    x = keras.layers.ReLU(name="b1_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, name="fc")(x)
    return random_statistics(keras.Model(inputs_, outputs, name="standard"))


def classes_of(model):
    """Every class in `model`, nested models included."""
    found = {type(model)}
    members = model.layers if isinstance(model, keras.Sequential) else model.operations
    for operation in members:
        found |= (
            classes_of(operation)
            if isinstance(operation, keras.Model)
            else {type(operation)}
        )
    return found


# -- every kind of file, reopened in a new process -------------------------


def test_builder_models_of_every_family_reopen(tmp_path):
    expect = {}
    for name, shape in FAMILIES.items():
        model = random_statistics(create_model(name, input_shape=shape, classes=5))
        expect[save(model, tmp_path / f"{name}.keras", inputs(shape))] = False
    reopen(expect)


def test_erased_erasable_and_finalized_models_reopen(tmp_path):
    standard = standard_model()
    x = inputs((8, 8, 3))
    erasable = ker.make_erasable(standard, alpha=0.3)
    done = ker.make_erasable(standard)
    for layer in done.layers:
        if isinstance(layer, ErasableReLU):
            layer.alpha.assign(1.0)
    builder = random_statistics(create_model("cifar_resnet8", classes=5))
    reopen(
        {
            # Erasing a standard model leaves standard layers (Identity).
            save(ker.erase_relu(standard), tmp_path / "erased.keras", x): True,
            save(erasable, tmp_path / "erasable.keras", x): False,
            save(ker.finalize_erasure(done), tmp_path / "finalized.keras", x): True,
            save(
                ker.erase_relu(builder),
                tmp_path / "erased_builder.keras",
                inputs((32, 32, 3)),
            ): False,
            save(
                ker.make_erasable(builder, alpha=0.6),
                tmp_path / "erasable_builder.keras",
                inputs((32, 32, 3)),
            ): False,
        }
    )


def test_the_model_file_of_train_reopens_with_its_optimizer(tmp_path):
    from keras_eraserelu.training.trainer import train

    out = tmp_path / "run"
    result = train(
        "cifar_resnet8", "digits", out=str(out), progressive_erase=(0, 1), **FAST
    )
    path = str(out / "model.keras")
    x = inputs(DIGITS, batch=4)
    stem = path[: -len(".keras")]
    np.save(stem + ".input.npy", x)
    np.save(stem + ".expected.npy", outputs(result.model, x))
    plain = save(ker.export_plain(result.model), tmp_path / "plain.keras", x)
    report = reopen({path: False, plain: True})
    assert report["optimizer"][path] == "CoupledSGD"
    assert report["optimizer"][plain] is None  # the export is not compiled


def test_the_model_files_of_compare_reopen(tmp_path):
    from keras_eraserelu.experiments.comparison import compare

    out = tmp_path / "exp"
    compare(
        [("cifar_vgg_tiny", "none"), ("cifar_vgg_tiny", "last")],
        "digits",
        seeds=[0],
        out=str(out),
        gradient_stats=False,
        plots=False,
        **FAST,
    )
    paths = sorted(glob.glob(str(out / "runs" / "*" / "seed0" / "model.keras")))
    assert len(paths) == 2
    x = inputs(DIGITS, batch=4)
    for path in paths:  # this process's outputs stand for the originals
        stem = path[: -len(".keras")]
        np.save(stem + ".input.npy", x)
        np.save(stem + ".expected.npy", outputs(keras.models.load_model(path), x))
    reopen(dict.fromkeys(paths, False))


def test_the_best_model_of_tune_reopens(tmp_path):
    from keras_eraserelu.tuning.search import tune_placements

    result = tune_placements(
        "cifar_vgg_tiny", "digits", tuner="random", max_trials=1, batch_size=32,
        directory=str(tmp_path / "tune"), **FAST,
    )  # fmt: skip
    assert [row["status"] for row in result.trials] == ["COMPLETED"]
    # As `eraserelu tune` writes it (cli_commands.run_tune).
    path = os.path.join(result.project_dir, "best_model.keras")
    save(result.best_model, path, inputs(DIGITS, batch=4))
    reopen({path: False})


# -- export_plain ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_export_plain_gives_the_outputs_of_every_family(name):
    shape = FAMILIES[name]
    model = random_statistics(create_model(name, input_shape=shape, classes=5))
    before = [w.copy() for w in model.get_weights()]
    plain = ker.export_plain(model)
    x = inputs(shape)
    np.testing.assert_allclose(outputs(plain, x), outputs(model, x), **CLOSE)
    assert all(cls.__module__.startswith("keras.") for cls in classes_of(plain))
    assert {layer.name for layer in model.layers} <= {
        layer.name for layer in plain.layers
    }
    # The input model is untouched.
    assert any(type(layer) is FusedBatchNormalization for layer in model.layers)
    for ours, theirs in zip(model.get_weights(), before):
        np.testing.assert_array_equal(ours, theirs)
    count = sum(type(layer) is FusedBatchNormalization for layer in model.layers)
    assert (
        plain.export_report.replaced["FusedBatchNormalization -> BatchNormalization"]
        == count
    )


def test_export_plain_of_erasable_models_mid_anneal():
    model = random_statistics(create_model("cifar_resnet8", classes=5))
    erasable = ker.make_erasable(model, where="all")
    layers = [layer for layer in erasable.layers if isinstance(layer, ErasableReLU)]
    slopes = [0.0, 0.3, 1.0, 0.77, 0.5, 1e-3]
    for index, layer in enumerate(layers):
        layer.alpha.assign(slopes[index % len(slopes)])
    plain = ker.export_plain(erasable)
    x = inputs((32, 32, 3), batch=3)
    np.testing.assert_allclose(outputs(plain, x), outputs(erasable, x), **CLOSE)
    for layer in layers:
        new = plain.get_layer(layer.name)
        alpha = float(layer.alpha.numpy())
        expected = keras.layers.Identity if alpha == 1.0 else keras.layers.ReLU
        assert type(new) is expected, layer.name
        if expected is keras.layers.ReLU:
            assert new.negative_slope == pytest.approx(alpha)
    assert set(plain.export_report.replaced) >= {
        "ErasableReLU -> ReLU",
        "ErasableReLU -> Identity",
        "ErasableReLU -> ReLU(negative_slope)",
    }
    assert "ErasableReLU -> Identity" in str(plain.export_report)


def test_export_plain_is_exact_on_the_layers_that_map_exactly():
    """ZeroPadShortcut and ErasableReLU become standard layers bit for bit."""
    x = inputs_ = keras.Input((None, None, 3))
    a = ZeroPadShortcut(8, strides=2, name="down")(x)
    b = ZeroPadShortcut(3, strides=2, name="subsample_only")(x)
    c = ZeroPadShortcut(5, name="pad_only")(x)
    d = ZeroPadShortcut(3, name="identity")(x)
    e = ErasableReLU(0.37, name="leaky")(x)
    model = keras.Model(inputs_, [a, b, c, d, e])
    plain = ker.export_plain(model)
    data = inputs((7, 9, 3))
    for ours, theirs in zip(plain(data), model(data)):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert type(plain.get_layer("subsample_only")) is keras.layers.AveragePooling2D
    assert type(plain.get_layer("identity")) is keras.layers.Identity
    assert type(plain.get_layer("down")) is keras.layers.Permute


def test_export_plain_keeps_nesting_sharing_and_sequential_models():
    inner = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            ZeroPadShortcut(4, strides=2, name="inner_shortcut"),
            FusedBatchNormalization(name="inner_bn"),
            ErasableReLU(0.5, name="inner_relu"),
        ],
        name="inner",
    )
    random_statistics(inner)
    shared = FusedBatchNormalization(name="shared_bn")
    x = inputs_ = keras.Input((8, 8, 2))
    y = inner(shared(x))
    z = inner(shared(keras.layers.Activation("linear", name="other")(x)))
    model = keras.Model(inputs_, keras.layers.Add(name="add")([y, z]), name="outer")
    random_statistics(model, seed=3)
    model.compile(optimizer=ker.training.CoupledSGD(0.1, l2=1e-4), loss="mse")
    plain = ker.export_plain(model)
    data = inputs((8, 8, 2))
    np.testing.assert_allclose(outputs(plain, data), outputs(model, data), **CLOSE)
    assert not plain.compiled
    assert all(cls.__module__.startswith("keras.") for cls in classes_of(plain))
    assert type(plain.get_layer("inner")) is keras.Sequential
    assert len(plain.get_layer("shared_bn")._inbound_nodes) == 2  # still shared
    config = json.dumps(plain.get_config())
    assert "keras_eraserelu" not in config


def test_export_plain_names_the_layers_it_cannot_express():
    class Scale(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    x = inputs_ = keras.Input((4,))
    y = Scale(name="my_scale")(keras.layers.Dense(4, name="fc")(x))
    with pytest.raises(TypeError, match=r"'my_scale' \(Scale, module .*test_reopen\)"):
        ker.export_plain(keras.Model(inputs_, y))
    z = keras.layers.Lambda(lambda t: t + 1.0, name="shift")(x)
    with pytest.raises(TypeError, match=r"'shift' \(Lambda.*safe-mode"):
        ker.export_plain(keras.Model(inputs_, z))
    with pytest.raises(TypeError, match="Expected a Keras 3 `keras.Model`"):
        ker.export_plain(keras.layers.Dense(3))
