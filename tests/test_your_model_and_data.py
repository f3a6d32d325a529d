"""A user's own model and data through `train`, `compare`, `tune_placements`
and the command line: every kind of data, re-initialization per seed, and
bad input refused before any training."""

import contextlib
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from keras import layers
from PIL import Image

from eraserelu.cli import main
from keras_eraserelu import plan_erasure
from keras_eraserelu.data import dataset_source
from keras_eraserelu.experiments import compare
from keras_eraserelu.models import model_source
from keras_eraserelu.training import train
from keras_eraserelu.tuning import tune_placements

FAST = {"epochs": 1, "batch_size": 8, "steps_per_epoch": 2}
KINDS = ("arrays", "npz", "folder", "tf.data", "tfds")


def user_net(classes=4, channels=3, name="user_net"):
    """A hand-built residual network ending in logits (no softmax)."""
    inputs = keras.Input((None, None, channels), name="image")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    for index in (1, 2):
        y = layers.Conv2D(4, 3, padding="same", name=f"b{index}_conv1")(x)
        y = layers.ReLU(name=f"b{index}_relu")(y)
        y = layers.Conv2D(4, 3, padding="same", name=f"b{index}_conv2")(y)
        x = layers.ReLU(name=f"b{index}_out")(layers.Add(name=f"b{index}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(classes, name="logits")(x), name=name)


def images(count=48, size=8, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (count, size, size, 3), dtype="uint8")
    return x, np.arange(count) % classes


def write_pngs(root, x, y):
    for index, (image, label) in enumerate(zip(x, y)):
        os.makedirs(root / f"class{label}", exist_ok=True)
        Image.fromarray(image).save(root / f"class{label}" / f"{index}.png")
    return str(root)


@contextlib.contextmanager
def data_of_kind(kind, tmp_path):
    """The `dataset=` of a kind, and its number of classes."""
    x, y = images()
    if kind == "arrays":
        yield (x, y), 4
    elif kind == "npz":
        path = tmp_path / "data.npz"
        np.savez(path, x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
        yield str(path), 4
    elif kind == "folder":
        yield write_pngs(tmp_path / "photos", x, y), 4
    elif kind == "tf.data":
        train = tf.data.Dataset.from_tensor_slices((x[:40], y[:40])).batch(8)
        yield (train, tf.data.Dataset.from_tensor_slices((x[40:], y[40:]))), 4
    else:
        with tfds.testing.mock_data(num_examples=16):
            yield "tfds:cmaterdb", 10


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_data_through_train_compare_and_tune(kind, tmp_path):
    with data_of_kind(kind, tmp_path) as (dataset, classes):
        model = user_net(classes)
        given = [w.copy() for w in model.get_weights()]
        result = train(model, dataset, erase="last", out=str(tmp_path / "run"),
                       verbose=0, **FAST)  # fmt: skip
        record = json.loads((tmp_path / "run" / "history.json").read_text())
        assert record["completed"] and len(record["epochs"]) == 1
        assert record["data"]["kind"] == ("tfds" if kind == "tfds" else kind)
        assert record["config"]["dataset"] == result.config["dataset"]
        assert record["model_source"]["kind"] == "keras.Model"
        assert type(result.model.get_layer("b1_out")) is layers.Identity
        out = str(tmp_path / "exp")
        experiment = compare([(model, "last")], dataset, seeds=2, out=out,
                             plots=False, gradient_stats=False, **FAST)  # fmt: skip
        assert [r["seed"] for r in experiment.runs] == [0, 1]
        assert experiment.config["data"]["num_classes"] == classes
        search = tune_placements(model, dataset, tuner="random", max_trials=2,
                                 directory=str(tmp_path / "tune"), verbose=0,
                                 **FAST)  # fmt: skip
        assert [row["status"] for row in search.trials] == ["COMPLETED"] * 2
    for now, before in zip(model.get_weights(), given):  # the user's model untouched
        np.testing.assert_array_equal(now, before)
    assert plan_erasure(model).erased_before == []


class InitialWeights(keras.callbacks.Callback):
    """Records the weights a run starts from."""

    def on_train_begin(self, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]


def test_each_seed_reinitializes_a_copy_or_keeps_the_given_weights(tmp_path):
    model = user_net()
    given = [w.copy() for w in model.get_weights()]
    data = dataset_source(images())
    starts = {}
    for label, seed, reinitialize in (("a", 0, True), ("b", 1, True),
                                      ("c", 0, True), ("kept", 1, False)):  # fmt: skip
        probe = InitialWeights()
        train(model, data, seed=seed, reinitialize=reinitialize, callbacks=[probe],
              verbose=0, **FAST)  # fmt: skip
        starts[label] = probe.weights
    kernels = {label: weights[0] for label, weights in starts.items()}
    assert not np.array_equal(kernels["a"], kernels["b"])  # two seeds: two starts
    np.testing.assert_array_equal(kernels["a"], kernels["c"])  # one seed: one start
    assert not np.array_equal(kernels["a"], given[0])
    for kept, theirs in zip(starts["kept"], given):  # fine-tuning: the given weights
        np.testing.assert_array_equal(kept, theirs)
    for now, before in zip(model.get_weights(), given):
        np.testing.assert_array_equal(now, before)


def test_a_hand_built_model_compared_with_and_without_erasure(tmp_path):
    model = user_net()
    result = compare([model, (model, "last")], images(), seeds=2,
                     out=str(tmp_path), plots=False, gradient_stats=False,
                     **FAST)  # fmt: skip
    assert [v.name for v in result.variants] == ["user_net-none", "user_net-last"]
    assert result.differences[0]["baseline"] == "user_net-none"
    for variant, kind in (
        ("user_net-none", layers.ReLU),
        ("user_net-last", layers.Identity),
    ):
        path = tmp_path / "runs" / variant / "seed1" / "model.keras"
        saved = keras.models.load_model(path)
        assert type(saved.get_layer("b2_out")) is kind
        assert type(saved.get_layer("b2_relu")) is layers.ReLU  # only the last ReLU
    assert result.config["dataset"].startswith("arrays:")


def test_a_model_that_does_not_fit_the_data_is_refused_before_training(tmp_path):
    five = user_net(classes=5)
    with pytest.raises(ValueError, match=r"predicts 5 classes.*4 classes"):
        train(five, images(), out=str(tmp_path / "run"), verbose=0, **FAST)
    assert not (tmp_path / "run" / "history.json").exists()
    with pytest.raises(ValueError, match=r"predicts 5 classes.*4 classes"):
        compare([five], images(), seeds=2, out=str(tmp_path / "exp"), **FAST)
    assert not (tmp_path / "exp" / "runs").exists()
    gray = user_net(channels=1)
    with pytest.raises(ValueError, match=r"inputs of shape \(None, None, 1\)"):
        tune_placements(gray, images(), directory=str(tmp_path / "t"), **FAST)


def test_a_fixed_input_size_resizes_the_images_and_applications_build():
    inputs = keras.Input((16, 16, 3))
    body = user_net()
    fixed = keras.Model(inputs, body(inputs), name="fixed")
    result = train(fixed, images(size=8), verbose=0, **FAST)
    assert result.config["dataset"].startswith("arrays:")
    source = model_source(fixed)
    assert source.fitted_input((8, 8, 3)) == ((16, 16, 3), (16, 16))
    mobile = model_source("MobileNetV2").build((32, 32, 3), 7)
    assert mobile.output_shape == (None, 7) and source.kind == "keras.Model"


def test_the_command_line_takes_a_folder_a_npz_a_model_file_and_a_module(
    tmp_path, monkeypatch, capsys
):
    x, y = images()
    folder = write_pngs(tmp_path / "photos", x, y)
    model_file = str(tmp_path / "mine.keras")
    user_net().save(model_file)
    fast = ["--epochs", "1", "--batch-size", "8", "--steps-per-epoch", "2"]
    run = str(tmp_path / "run")
    assert main(["train", "--model", model_file, "--dataset", folder, "--erase",
                 "last", "--out", run, "--verbose", "0", *fast]) == 0  # fmt: skip
    record = json.loads(open(os.path.join(run, "history.json")).read())
    assert record["data"]["class_names"] == ["class0", "class1", "class2", "class3"]
    assert record["model_source"]["path"] == model_file
    npz = tmp_path / "d.npz"
    np.savez(npz, x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    assert main(["compare", "--models", model_file, "--erase", "last", "--dataset",
                 str(npz), "--seeds", "1", "--keep-weights", "--out",
                 str(tmp_path / "exp"), *fast]) == 0  # fmt: skip
    (tmp_path / "mydata.py").write_text(
        "import numpy as np\n"
        "from keras_eraserelu.data import register_dataset\n"
        "rng = np.random.default_rng(0)\n"
        "register_dataset('cli_mine', (rng.integers(0, 256, (40, 8, 8, 3), 'uint8'),"
        " np.arange(40) % 4))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["train", "--model", model_file, "--dataset-module", "mydata",
                 "--dataset", "cli_mine", "--out", str(tmp_path / "r2"),
                 "--verbose", "0", *fast]) == 0  # fmt: skip
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--dataset", "nope"], "argument --dataset: expected a catalogue name"),
        (["--dataset", "x.npz"], "argument --dataset: expected an existing .npz"),
        (["--dataset-module", "no_such_module_here", "--dataset", "mine"],
         "cannot import 'no_such_module_here'"),
        (["--model", "missing.keras"], "argument --model: expected an existing .keras"),
        (["--model", "cifar_resnet9"], "Unknown model 'cifar_resnet9'.*cifar_resnet8"),
        (["--dataset", "MIXED"], "different sizes.*--image-size"),
        (["--model", "FIVE", "--dataset", "NPZ"], "predicts 5 classes.*4 classes"),
    ],
)  # fmt: skip
def test_bad_data_or_models_on_the_command_line_exit_2(argv, match, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    write_pngs(mixed, *images(count=4, size=8))
    Image.fromarray(np.zeros((5, 9, 3), "uint8")).save(mixed / "class0" / "odd.png")
    npz = tmp_path / "d.npz"
    x, y = images()
    np.savez(npz, x_train=x, y_train=y, x_test=x, y_test=y)
    five = str(tmp_path / "five.keras")
    if "FIVE" in argv:
        user_net(classes=5).save(five)
    paths = {"MIXED": str(mixed), "NPZ": str(npz), "FIVE": five}
    argv = [paths.get(value, value) for value in argv]
    command = ["train", "--out", str(tmp_path / "run"), "--epochs", "1", *argv]
    if "--dataset" not in argv:
        command += ["--dataset", str(npz)]
    if "--model" not in argv:
        command += ["--model", "cifar_resnet8"]
    assert main(command) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "run" / "history.json").exists()


def test_a_kerashub_preset_is_fine_tuned_with_its_own_image_size_and_normalization(
    tmp_path,
):
    """`train(model="hub:DIR")`: an ImageClassifier of the preset's class for
    the data's classes, its weights kept, the images resized and normalized
    as its image converter says (checked against NumPy)."""
    import keras_hub

    models = keras_hub.models
    backbone = models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=(16, 16, 3),
    )  # fmt: skip
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=(16, 16), scale=1 / 255.0, offset=(-0.5, -0.4, -0.3)
    )
    preprocessor = models.ResNetImageClassifierPreprocessor(image_converter=converter)
    task = models.ResNetImageClassifier(
        backbone=backbone, num_classes=3, preprocessor=preprocessor
    )
    task.save_to_preset(str(tmp_path / "preset"))
    source = model_source(f"hub:{tmp_path / 'preset'}")
    assert source.kind == "hub" and source.input_shape == (16, 16, 3)
    data = dataset_source(images(size=8))  # 8x8 images, resized to 16x16
    result = train(f"hub:{tmp_path / 'preset'}", data, erase="last",
                   out=str(tmp_path / "run"), verbose=0, **FAST)  # fmt: skip
    assert isinstance(result.model, models.ResNetImageClassifier)
    assert result.model.output_shape == (None, 4)
    assert type(result.model.backbone.get_layer("stack0_block0_out")) is layers.Identity
    record = json.loads((tmp_path / "run" / "history.json").read_text())
    assert record["data"]["normalized_for_the_model"]
    assert record["model_source"]["preprocessing"]["image_size"] == [16, 16]
    # The images the model sees: the converter's pixels / 255 + offset.
    from keras_eraserelu.data import load_dataset
    from keras_eraserelu.training import fit_data_to_model

    fitted = fit_data_to_model(source, data)
    x, _ = next(iter(load_dataset(fitted.data, "test", 5, image_size=(16, 16))))
    raw = tf.image.resize(tf.cast(images(size=8)[0], tf.float32) / 255, (16, 16),
                          antialias=True).numpy() * 255  # fmt: skip
    expected = raw / 255 + np.array([-0.5, -0.4, -0.3])
    for image in x.numpy():  # each one of the raw images, as the converter maps it
        assert np.abs(expected - image).max(axis=(1, 2, 3)).min() < 1e-4
