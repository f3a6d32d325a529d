"""Every kind of `dataset=`: arrays, .npz, folders, tf.data and PyDataset
pairs, "tfds:NAME", registered names; checked against NumPy, and each bad
input refused with a message that names it."""

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from keras_eraserelu.data import (
    DataSource,
    dataset_source,
    distributed_dataset,
    load_dataset,
    register_dataset,
    registered_names,
)


def arrays(count=120, size=6, channels=3, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (count, size, size, channels), dtype="uint8")
    y = np.arange(count) % classes  # sorted by class in blocks: must be shuffled
    return x, np.sort(y)


def every_example(dataset):
    """(images, labels) of a whole batched pipeline, as NumPy."""
    pairs = list(dataset.as_numpy_iterator())
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def test_arrays_are_split_stratified_normalized_by_their_own_statistics():
    x, y = arrays()
    source = dataset_source((x, y), validation_split=0.25)
    assert source.kind == "arrays" and source.per_worker
    assert source.record["sizes"] == {"train": 90, "test": 30}
    assert source.spec.num_classes == 4 and source.spec.image_shape == (6, 6, 3)
    train_x, train_y = every_example(load_dataset(source, "train", 16, shuffle=False))
    test_x, test_y = every_example(load_dataset(source, "test", 16))
    assert sorted(np.bincount(test_y)) == [7, 7, 8, 8]  # stratified
    train_rows, test_rows = _indices(x, train_x, source), _indices(x, test_x, source)
    assert sorted(train_rows + test_rows) == list(range(120))  # disjoint, complete
    np.testing.assert_array_equal(train_y, y[train_rows])
    # The reference: NumPy's per-channel statistics of the training pixels.
    pixels = x[train_rows].astype("float64") / 255
    np.testing.assert_allclose(source.spec.mean, pixels.mean((0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(source.spec.std, pixels.std((0, 1, 2)), rtol=1e-6)
    # Slices are random parts, not the first classes of the sorted labels.
    _, first = every_example(load_dataset(source, "train[:10%]", 16, shuffle=False))
    assert len(first) == 9 and len(set(first)) > 1


def _indices(x, normalized, source):
    """Which rows of `x` the normalized images came from."""
    mean, std = np.array(source.spec.mean), np.array(source.spec.std)
    restored = np.rint((normalized * std + mean) * 255).astype("uint8")
    rows = {image.tobytes(): i for i, image in enumerate(x)}
    return [rows[image.tobytes()] for image in restored]


def test_validation_arrays_npz_and_the_same_arrays_have_one_content_hash(tmp_path):
    x, y = arrays()
    pair = dataset_source(((x[:100], y[:100]), (x[100:], y[100:])))
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x[:100], y_train=y[:100], x_test=x[100:], y_test=y[100:])
    npz = dataset_source(str(path))
    assert pair.record["sizes"] == npz.record["sizes"] == {"train": 100, "test": 20}
    assert pair.record["sha256"] == npz.record["sha256"]
    assert npz.identity.startswith("npz:") and npz.record["path"] == str(path)
    assert dataset_source(str(path)).identity == npz.identity  # stable
    other = dataset_source(((x[:100], (y[:100] + 1) % 4), (x[100:], y[100:])))
    assert other.identity != pair.identity
    test_x, test_y = every_example(load_dataset(npz, "test", 8))
    np.testing.assert_array_equal(test_y, y[100:])
    expected = (x[100:] / 255 - np.array(npz.spec.mean)) / np.array(npz.spec.std)
    np.testing.assert_allclose(test_x, expected, atol=1e-5)


def _write_folder(root, classes, count, size=(7, 5), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    written = {}
    for name in classes:
        os.makedirs(root / name, exist_ok=True)
        for index in range(count):
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            pixels = rng.integers(0, 256, shape, dtype="uint8")
            Image.fromarray(pixels, mode).save(root / name / f"{index}.png")
            written[(name, index)] = pixels
    return written


def test_a_folder_of_class_folders_keeps_its_pixels_and_class_names(tmp_path):
    written = _write_folder(tmp_path / "photos", ["cat", "dog", "owl"], 6)
    source = dataset_source(str(tmp_path / "photos"), validation_split=0.5)
    assert source.kind == "folder" and source.spec.image_shape == (5, 7, 3)
    assert source.record["class_names"] == ["cat", "dog", "owl"]
    assert source.record["sizes"] == {"train": 9, "test": 9}
    x, y = every_example(
        load_dataset(source, "train+test", 32, augment=False, shuffle=False)
    )
    mean, std = np.array(source.spec.mean), np.array(source.spec.std)
    restored = np.rint((x * std + mean) * 255).astype("uint8")
    by_class = {name: {p.tobytes() for (c, _), p in written.items() if c == name}
                for name in ("cat", "dog", "owl")}  # fmt: skip
    for image, label in zip(restored, y):  # every image, under its own class
        assert image.tobytes() in by_class[source.record["class_names"][label]]


def test_train_and_test_folders_and_grayscale_images(tmp_path):
    _write_folder(tmp_path / "d" / "train", ["a", "b"], 4, mode="L")
    _write_folder(tmp_path / "d" / "test", ["a", "b"], 2, mode="L", seed=1)
    source = dataset_source(str(tmp_path / "d"))
    assert source.spec.image_shape == (5, 7, 1)
    assert source.record["sizes"] == {"train": 8, "test": 4}
    assert source.record["layout"] == "train/ and test/"


def test_a_folder_of_mixed_sizes_needs_an_image_size(tmp_path):
    _write_folder(tmp_path / "mixed", ["a"], 2, size=(7, 5))
    _write_folder(tmp_path / "mixed", ["b"], 2, size=(9, 9), seed=1)
    with pytest.raises(ValueError, match=r"2 different sizes.*5x7.*9x9.*image_size="):
        dataset_source(str(tmp_path / "mixed"))
    source = dataset_source(str(tmp_path / "mixed"), image_size=(6, 6))
    assert source.spec.image_shape == (6, 6, 3)
    images, _ = next(iter(load_dataset(source, "train", 4)))
    assert images.shape[1:] == (6, 6, 3)


@pytest.mark.parametrize("batched", [True, False])
def test_a_tf_data_pair_batched_or_not_is_rebatched_and_distributed_by_data(batched):
    x, y = arrays(count=40)
    train = tf.data.Dataset.from_tensor_slices((x[:30], y[:30]))
    test = tf.data.Dataset.from_tensor_slices((x[30:], y[30:]))
    if batched:
        train, test = train.batch(7), test.batch(3)
    source = dataset_source((train, test))
    assert source.kind == "tf.data" and not source.per_worker
    assert source.record["sizes"] == {"train": 30, "test": 10}
    assert source.record["batch_size"] == (7 if batched else None)
    got_x, got_y = every_example(load_dataset(source, "train", 8, shuffle=False))
    np.testing.assert_array_equal(got_y, y[:30])
    expected = (x[:30] / 255 - np.array(source.spec.mean)) / np.array(source.spec.std)
    np.testing.assert_allclose(got_x, expected, atol=1e-5)
    strategy = tf.distribute.get_strategy()
    distributed = distributed_dataset(strategy, source, "test", 4)
    assert sum(int(b[1].shape[0]) for b in distributed) == 10


def test_a_py_dataset_pair_is_read_through_a_generator():
    class Batches(keras.utils.PyDataset):
        def __init__(self, count, seed):
            super().__init__()
            self.count, self.seed = count, seed

        def __len__(self):
            return self.count

        def __getitem__(self, index):
            rng = np.random.default_rng(self.seed + index)
            return rng.random((4, 5, 5, 1)).astype("float32"), rng.integers(0, 3, 4)

    source = dataset_source((Batches(5, 0), Batches(2, 100)))
    assert source.record["sizes"] == {"train": 20, "test": 8}
    expected = np.concatenate([Batches(5, 0)[i][0] for i in range(5)])
    np.testing.assert_allclose(source.spec.mean, [expected.mean()], rtol=1e-5)
    images, _ = next(iter(load_dataset(source, "train", 6, shuffle=False)))
    np.testing.assert_allclose(
        images, (expected[:6] - expected.mean()) / expected.std(), atol=1e-4
    )


def test_any_tfds_name_under_mock_data():
    with tfds.testing.mock_data(num_examples=24):
        source = dataset_source("tfds:cmaterdb")
        assert source.kind == "tfds" and source.identity == "tfds:cmaterdb"
        assert source.spec.num_classes == 10 and source.spec.image_shape == (32, 32, 3)
        assert source.record["class_names"][:2] == ["0", "1"]
        images, labels = next(iter(load_dataset(source, "train", 24, shuffle=False)))
        # Normalized by the mean and std of the (mock) training images.
        assert abs(float(np.mean(images))) < 1e-4
        assert abs(float(np.std(images)) - 1) < 1e-3
        assert labels.dtype == tf.int32
        resized = dataset_source("tfds:cmaterdb", image_size=16)
        assert next(iter(load_dataset(resized, "test", 4)))[0].shape == (4, 16, 16, 3)
    with pytest.raises(ValueError, match="vary in size.*image_size="):
        dataset_source("tfds:tf_flowers")


@pytest.mark.parametrize(
    "dataset, match",
    [
        ("tfds:cmaterdbb", "no data set 'cmaterdbb'.*Did you mean 'cmaterdb'"),
        ("tfds:glue", "one image feature.*one label feature.*'sentence': 'Text'"),
        ("cifar11", "Unknown data set name='cifar11'.*Did you mean 'cifar10'"),
        (42, "`dataset` must be a data set name.*Received: dataset=42"),
    ],
)
def test_unknown_or_unusable_data_sets_are_named(dataset, match):
    error = TypeError if dataset == 42 else ValueError
    with pytest.raises(error, match=match):
        dataset_source(dataset)


def test_bad_arrays_are_refused_with_what_is_wrong(tmp_path):
    x, y = arrays()
    cases = [
        ((x, y[:-1]), {}, "same length.*120 images and 119 labels"),
        ((x, y.astype("float32") + 0.5), {}, "integer class labels.*float32"),
        ((x, y.astype("float32")), {}, r"whole: pass y.astype\('int64'\)"),
        ((x, np.eye(4)[y]), {}, r"looks one-hot: pass y.argmax\(-1\)"),
        ((x, y), {"num_classes": 3}, r"must lie in \[0, 3\).*such as 3"),
        ((x, y - 1), {}, r"must lie in \[0, 3\).*such as -1"),
        ((x[:, :, :, 0, None, None], y), {}, r"shape \(N, H, W, C\)"),
        ((x, y), {"validation_split": 1.5}, "validation_split"),
        ((x, y), {"normalize": (0.5, 0)}, "std of `normalize` must be > 0"),
    ]
    for dataset, options, match in cases:
        with pytest.raises(ValueError, match=match):
            dataset_source(dataset, **options)
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=y)
    with pytest.raises(ValueError, match=r"lacks \['x_test', 'y_test'\]"):
        dataset_source(str(tmp_path / "bad.npz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no class folders of images"):
        dataset_source(str(tmp_path / "empty"))
    wide = tf.data.Dataset.from_tensor_slices((x, y * 2)).batch(8)
    with pytest.raises(ValueError, match=r"train labels must lie in \[0, 4\)"):
        dataset_source((wide, wide), num_classes=4)


def test_a_registered_name_works_like_a_catalogue_one():
    x, y = arrays()
    calls = []

    def load():
        calls.append(1)
        return x, y

    name = register_dataset("test_registered", load, augmentation="crop_flip",
                            validation_split=0.5)  # fmt: skip
    assert name in registered_names() and not calls  # nothing loaded yet
    source = dataset_source(name)
    assert source.spec.name == name and source.spec.augmentation == "crop_flip"
    assert (
        source.identity.startswith(f"{name}:") and source.record["sizes"]["test"] == 60
    )
    assert dataset_source(name) is source and calls == [1]  # resolved once
    with pytest.raises(ValueError, match="registered already.*overwrite=True"):
        register_dataset(name, load)
    with pytest.raises(ValueError, match="'cifar10' is a catalogue data set"):
        register_dataset("cifar10", load)
    with pytest.raises(ValueError, match="letters, digits"):
        register_dataset("a b", load)
    register_dataset(name, (x[:40], y[:40]), overwrite=True)
    assert dataset_source(name).record["sizes"] == {"train": 36, "test": 4}


def test_an_installed_entry_point_registers_a_data_set(tmp_path, monkeypatch):
    """A package that declares `keras_eraserelu.datasets` entry points."""
    (tmp_path / "leafdata.py").write_text(
        "import numpy as np\n"
        "def load():\n"
        "    rng = np.random.default_rng(0)\n"
        "    return rng.integers(0, 256, (50, 4, 4, 3), 'uint8'), np.arange(50) % 5\n"
    )
    info = tmp_path / "leafdata-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: leafdata\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[keras_eraserelu.datasets]\nleaves = leafdata:load\n"
    )
    assert "leaves" not in registered_names()
    monkeypatch.syspath_prepend(str(tmp_path))  # as if pip-installed
    assert "leaves" in registered_names() and "leafdata" not in sys.modules
    source = dataset_source("leaves")
    assert source.record["sizes"] == {"train": 45, "test": 5}
    assert source.spec.num_classes == 5 and source.record["registered_as"] == "leaves"


def test_a_data_source_passes_through_and_describes_itself():
    x, y = arrays()
    source = dataset_source((x, y))
    assert dataset_source(source) is source and isinstance(source, DataSource)
    record = json.loads(json.dumps(source.record))  # JSON-ready
    assert record["kind"] == "arrays" and len(record["sha256"]) == 64
    assert record["image_shape"] == [6, 6, 3] and record["num_classes"] == 4
