"""Input pipelines: tfds data sets under mock data, sklearn's digits for real.

`tfds.testing.mock_data` invents examples and ignores split slicing, so split
logic is tested on digits only. Expected pixel values are NumPy arithmetic of
the published constants; expected augmentations are NumPy pads and slices.
"""

import ast
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_eraserelu.data import catalogue as datasets
from keras_eraserelu.data.catalogue import DATASETS, dataset_spec
from keras_eraserelu.data.pipelines import (
    distributed_dataset,
    load_dataset,
    numpy_dataset,
)

TFDS_NAMES = [name for name in DATASETS if name != "digits"]


def _kwargs(name, tmp_path):
    # ImageNet cannot be downloaded: tfds needs the folder of its tar files.
    return {"manual_dir": str(tmp_path)} if name == "imagenet2012" else {}


def _batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def _constant_images(value, count=6, picture=None):
    """A mock `_as_dataset` whose every image is `value` (JPEG for ImageNet)."""

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        shape = tuple(side or 40 for side in self.info.features["image"].shape)
        image = np.full(shape, value, np.uint8) if value is not None else picture
        if decoders:  # ImageNet reads JPEG bytes and decodes them itself
            image = tf.io.encode_jpeg(image, quality=100).numpy()
        labels = np.arange(count) % self.info.features["label"].num_classes
        return tf.data.Dataset.from_tensor_slices(
            {"image": [image] * count, "label": labels}
        )

    return as_dataset


def _shifts(image, padding, fill, flips):
    """Every shift (and mirror) of one image, made with NumPy."""
    height, width = image.shape[:2]
    padded = np.pad(
        image - fill, [(padding, padding), (padding, padding), (0, 0)]
    ) + np.asarray(fill, np.float32)
    views = []
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            view = padded[top : top + height, left : left + width]
            views.append(view)
            if flips:
                views.append(view[:, ::-1])
    return views


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_gives_normalized_batches(name, tmp_path):
    spec = dataset_spec(name)
    with tfds.testing.mock_data(num_examples=10):
        batches = _batches(
            load_dataset(name, "train", 4, seed=0, **_kwargs(name, tmp_path))
        )
        dropped = _batches(
            load_dataset(
                name, "test", 4, drop_remainder=True, **_kwargs(name, tmp_path)
            )
        )
    expected = [4, 4, 2] if name != "digits" else [4] * 359 + [1]
    assert [len(y) for _, y in batches] == expected
    assert all(len(y) == 4 for _, y in dropped)
    for images, labels in batches:
        assert images.shape[1:] == spec.image_shape
        assert images.dtype == np.float32 and labels.dtype == np.int32
        assert labels.min() >= 0 and labels.max() < spec.num_classes
        assert np.isfinite(images).all()


@pytest.mark.parametrize("name", TFDS_NAMES)
def test_normalization_matches_the_constants(name, tmp_path):
    spec = dataset_spec(name)
    with tfds.testing.mock_data(as_dataset_fn=_constant_images(200)):
        images, _ = _batches(
            load_dataset(name, "test", 6, augment=False, **_kwargs(name, tmp_path))
        )[0]
    expected = (200 / 255 - np.array(spec.mean)) / np.array(spec.std)
    # JPEG at quality 100 keeps a constant image within a level.
    atol = 1.5 / 255 / min(spec.std) if name == "imagenet2012" else 1e-5
    images = images.astype("float64")
    np.testing.assert_allclose(images.mean(axis=(0, 1, 2)), expected, atol=atol)
    assert images.std(axis=(0, 1, 2)).max() < atol


def test_imagenet_evaluation_takes_the_center_crop(tmp_path):
    # 256 x 512: the shorter side is already 256, so the view is the center
    # 224 x 224 crop, which lies inside the white middle half.
    picture = np.zeros((256, 512, 3), np.uint8)
    picture[:, 128:384] = 255
    mock = _constant_images(None, count=2, picture=picture)
    with tfds.testing.mock_data(as_dataset_fn=mock):
        images, _ = _batches(
            load_dataset("imagenet2012", "test", 2, manual_dir=str(tmp_path))
        )[0]
    spec = dataset_spec("imagenet2012")
    white = (1.0 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(images, np.broadcast_to(white, images.shape), atol=0.05)


def test_cifar_crops_pad_with_black_pixels():
    spec = dataset_spec("cifar10")
    with tfds.testing.mock_data(as_dataset_fn=_constant_images(200, count=16)):
        images, _ = _batches(load_dataset("cifar10", "train", 16, seed=3))[0]
    mean, std = np.array(spec.mean), np.array(spec.std)
    inside = (200 / 255 - mean) / std
    black = (0 - mean) / std  # zero padding in pixel space
    is_inside = np.isclose(images, inside, atol=1e-5).all(axis=-1)
    is_black = np.isclose(images, black, atol=1e-5).all(axis=-1)
    assert (is_inside | is_black).all()
    assert is_black.any(), "no image was shifted"
    assert is_black.sum(axis=(1, 2)).max() <= 32 * 32 - 28 * 28  # at most 4 px


def test_cifar_augmentation_is_a_shift_and_flip_of_each_image():
    spec = dataset_spec("cifar10")
    fill = -np.array(spec.mean, np.float32) / np.array(spec.std, np.float32)
    with tfds.testing.mock_data(num_examples=8):
        plain, _ = _batches(
            load_dataset("cifar10", "train", 8, augment=False, shuffle=False)
        )[0]
        augmented, _ = _batches(load_dataset("cifar10", "train", 8, shuffle=False))[0]
    assert augmented.shape == plain.shape
    assert not np.allclose(augmented, plain)
    for before, after in zip(plain, augmented):
        views = _shifts(before, 4, fill, flips=True)
        assert min(np.abs(view - after).max() for view in views) < 1e-5


def test_digits_augmentation_shifts_by_one_pixel_without_flips():
    plain, _ = _batches(
        load_dataset("digits", "train", 64, augment=False, shuffle=False)
    )[0]
    shifted, _ = _batches(load_dataset("digits", "train", 64, shuffle=False))[0]
    fill = -np.float32(datasets.DIGITS_MEAN[0] / datasets.DIGITS_STD[0])
    assert not np.allclose(shifted, plain)
    for before, after in zip(plain, shifted):
        views = _shifts(before, 1, fill, flips=False)
        assert min(np.abs(view - after).max() for view in views) < 1e-5


def test_mnist_and_svhn_are_not_augmented_by_default():
    for name in ("mnist", "svhn_cropped"):
        with tfds.testing.mock_data(num_examples=8):
            plain, _ = _batches(
                load_dataset(name, "train", 8, augment=False, shuffle=False)
            )[0]
            default, _ = _batches(load_dataset(name, "train", 8, shuffle=False))[0]
        np.testing.assert_array_equal(default, plain)


@pytest.mark.parametrize("name", ["cifar10", "digits", "imagenet2012"])
def test_same_seed_same_batches(name, tmp_path):
    def first(seed):
        with tfds.testing.mock_data(num_examples=16):
            ds = load_dataset(name, "train", 8, seed=seed, **_kwargs(name, tmp_path))
            return _batches(ds.take(1))[0]

    (x1, y1), (x2, y2), (x3, _) = first(7), first(7), first(8)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


def test_order_is_deterministic_with_a_seed_or_without_shuffling():
    assert load_dataset("digits", seed=0).options().deterministic is True
    assert load_dataset("digits").options().deterministic is False
    assert load_dataset("digits", "test").options().deterministic is True


def test_repeat_goes_on_and_reshuffles():
    ds = load_dataset("digits", "test", 360, shuffle=True, seed=0, repeat=True)
    (x1, y1), (x2, y2) = _batches(ds.take(2))
    assert sorted(y1.tolist()) == sorted(y2.tolist())
    assert not np.array_equal(x1, x2)


def test_digits_shards_are_disjoint_and_cover_the_split():
    full_x, full_y = datasets.digits_arrays()["train"]
    shards = []
    for index in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2
        )
        ds = load_dataset(
            "digits", "train", 64, input_context=context, shuffle=False, augment=False
        )
        batches = _batches(ds)
        assert {len(y) for _, y in batches[:-1]} == {32}  # per-replica batch
        shards.append(
            (
                np.concatenate([x for x, _ in batches]),
                np.concatenate([y for _, y in batches]),
            )
        )
    assert len(shards[0][1]) + len(shards[1][1]) == len(full_y) == 1437
    both = np.concatenate([shards[0][0], shards[1][0]]).reshape(len(full_y), -1)
    order = np.lexsort(both.T)
    reference = full_x.reshape(len(full_y), -1)
    np.testing.assert_array_equal(both[order], reference[np.lexsort(reference.T)])


def test_tfds_per_replica_batch_size():
    context = tf.distribute.InputContext(2, 0, 2)
    with tfds.testing.mock_data(num_examples=16):
        ds = load_dataset("cifar10", "train", 8, input_context=context)
        assert [len(y) for _, y in _batches(ds)][0] == 4


def test_digits_split_is_stratified_and_uses_sklearn_data():
    from sklearn.datasets import load_digits

    digits = load_digits()
    arrays = datasets.digits_arrays()
    (x_train, y_train), (_, y_test) = arrays["train"], arrays["test"]
    assert (len(y_train), len(y_test)) == (1437, 360)
    assert len(y_train) + len(y_test) == len(digits.target) == 1797
    totals = np.bincount(digits.target)
    assert np.abs(np.bincount(y_test) - 0.2 * totals).max() <= 1
    # The normalization constants are those of these training pixels.
    pixels = x_train * datasets.DIGITS_STD[0] + datasets.DIGITS_MEAN[0]
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
    assert abs(pixels.mean() - datasets.DIGITS_MEAN[0]) < 1e-4
    assert abs(pixels.std() - datasets.DIGITS_STD[0]) < 1e-4


def test_digits_split_slicing_follows_tfds():
    def load(split):
        return _batches(
            load_dataset("digits", split, 2000, augment=False, shuffle=False)
        )

    head, tail, both = load("train[:90%]"), load("train[90%:]"), load("train+test")
    assert (len(head[0][1]), len(tail[0][1]), len(both[0][1])) == (1293, 144, 1797)
    np.testing.assert_array_equal(
        np.concatenate([head[0][0], tail[0][0]]), datasets.digits_arrays()["train"][0]
    )


def test_test_split_word_means_the_spec_split():
    assert datasets.resolve_split(dataset_spec("imagenet2012"), "test") == "validation"
    assert datasets.resolve_split(dataset_spec("cifar10"), "test[:50%]") == "test[:50%]"
    assert datasets.is_training_split(dataset_spec("svhn_cropped"), "train+extra")
    assert not datasets.is_training_split(dataset_spec("imagenet2012"), "validation")


def test_image_size_resizes(tmp_path):
    x, _ = _batches(load_dataset("digits", "test", 4, image_size=16).take(1))[0]
    assert x.shape == (4, 16, 16, 1)
    with tfds.testing.mock_data(num_examples=4):
        for split in ("train", "test"):
            ds = load_dataset(
                "imagenet2012", split, 4, image_size=64, manual_dir=str(tmp_path)
            )
            assert _batches(ds)[0][0].shape == (4, 64, 64, 3)


def test_numpy_dataset():
    x = np.arange(10 * 4 * 4, dtype="float32").reshape(10, 4, 4)
    y = np.arange(10)
    batches = _batches(numpy_dataset(x, y, 4))
    assert [b[0].shape for b in batches] == [(4, 4, 4, 1)] * 2 + [(2, 4, 4, 1)]
    assert batches[0][1].dtype == np.int32
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)

    def labels(seed):
        return np.concatenate(
            [b[1] for b in _batches(numpy_dataset(x, y, 4, shuffle=True, seed=seed))]
        )

    np.testing.assert_array_equal(labels(1), labels(1))
    assert sorted(labels(1)) == list(y) and list(labels(1)) != list(y)

    flipped = _batches(numpy_dataset(x, y, 10, augment="flip", seed=0))[0][0]
    for before, after in zip(x[..., None], flipped):
        assert np.array_equal(after, before) or np.array_equal(after, before[:, ::-1])

    context = tf.distribute.InputContext(2, 1, 2)
    shard = _batches(numpy_dataset(x, y, 4, input_context=context))
    assert np.concatenate([b[1] for b in shard]).tolist() == [1, 3, 5, 7, 9]


def test_distributed_dataset_with_the_default_strategy():
    strategy = tf.distribute.get_strategy()
    ds = distributed_dataset(strategy, "digits", "test", 32, seed=0)
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    assert len(batches) == 12 and batches[0][0].shape == (32, 8, 8, 1)
    assert sum(len(y) for _, y in batches) == 360


MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
two = [tf.config.LogicalDeviceConfiguration()] * 2
tf.config.set_logical_device_configuration(cpu, two)
from keras_eraserelu.data.pipelines import distributed_dataset
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
sizes = []
for x, y in distributed_dataset(strategy, "digits", "test", 64, seed=0):
    parts = strategy.experimental_local_results(x)
    assert [p.shape[1:] for p in parts] == [(8, 8, 1)] * 2
    sizes.append([len(p) for p in strategy.experimental_local_results(y)])
print(sizes)
"""


def test_distributed_dataset_over_two_replicas():
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sizes = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    assert sizes[0] == [32, 32]  # global batch 64 over two replicas
    assert sum(map(sum, sizes)) == 360


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: dataset_spec("cifar"), ValueError, "Did you mean 'cifar10'"),
        (lambda: dataset_spec(10), TypeError, "must be a str"),
        (lambda: load_dataset("digits", "tran"), ValueError, "Did you mean 'train'"),
        (lambda: load_dataset("digits", 0), TypeError, "split"),
        (lambda: load_dataset("digits", batch_size=0), ValueError, "batch_size=0"),
        (lambda: load_dataset("digits", batch_size=1.5), TypeError, "int >= 1"),
        (lambda: load_dataset("digits", batch_size=True), TypeError, "int >= 1"),
        (lambda: load_dataset("digits", augment="crop_flip"), ValueError, "mirrored"),
        (lambda: load_dataset("digits", augment="cropp"), ValueError, "'crop'"),
        (lambda: load_dataset("digits", augment=1), TypeError, "augment"),
        (lambda: load_dataset("digits", shuffle="yes"), TypeError, "shuffle"),
        (lambda: load_dataset("digits", seed=1.0), TypeError, "seed"),
        (lambda: load_dataset("digits", cache=1), TypeError, "cache"),
        (lambda: load_dataset("digits", image_size=(8,)), ValueError, "image_size"),
        (lambda: load_dataset("digits", "train[:3000]"), ValueError, "3000"),
        (
            lambda: distributed_dataset(
                tf.distribute.get_strategy(), "digits", "train", 8, input_context=1
            ),
            TypeError,
            "input_context",
        ),
        (lambda: numpy_dataset(np.zeros((3, 4, 4)), [1], 2), ValueError, "y.shape"),
        (lambda: numpy_dataset(np.zeros((3, 4)), [1, 2, 3], 2), ValueError, "x.shape"),
        (
            lambda: numpy_dataset(np.zeros((3, 4, 4)), [1, 2, 3], 2, augment="flipp"),
            ValueError,
            "Did you mean 'flip'",
        ),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_imagenet_needs_manual_dir(tmp_path):
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(ValueError, match="ILSVRC2012_img_train.tar.*manual_dir"):
            load_dataset("imagenet2012", "train")
        with pytest.raises(ValueError, match="manual_dir='/no/such/folder'"):
            load_dataset("imagenet2012", "train", manual_dir="/no/such/folder")


def test_a_repeated_stream_is_the_same_from_every_iterator():
    # Keras' JAX fit takes a first batch from another iterator before its own:
    # a resumed run must read the same batches however many came before.
    rng = np.random.default_rng(1)
    pair = (rng.normal(size=(32, 4, 4, 1)).astype("float32"), np.arange(32) % 4)
    stream = load_dataset((pair, pair), "train", 8, seed=0, repeat=True,
                          augment="crop_flip")  # fmt: skip
    earlier = iter(stream)
    for _ in range(6):  # a pass is 4 batches: this one crossed into the second
        next(earlier)
    fresh = load_dataset((pair, pair), "train", 8, seed=0, repeat=True,
                         augment="crop_flip")  # fmt: skip
    for _, mine, theirs in zip(range(10), stream, fresh):
        np.testing.assert_array_equal(mine[0].numpy(), theirs[0].numpy())
        np.testing.assert_array_equal(mine[1].numpy(), theirs[1].numpy())
    first_two = [y.numpy() for _, (x, y) in zip(range(8), iter(stream))]
    assert sorted(np.concatenate(first_two[:4])) == sorted(pair[1])  # a pass
    assert not np.array_equal(np.concatenate(first_two[:4]),
                              np.concatenate(first_two[4:]))  # fmt: skip
