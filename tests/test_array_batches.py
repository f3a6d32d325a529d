"""The NumPy input engine (`ArrayBatches`), read where TensorFlow is not
installed: the same images as the tf.data pipeline, every pass a
permutation, augmentation within its policy, an exact resume.

(tests/test_without_tensorflow.py runs it with TensorFlow unimportable.)
"""

import numpy as np
import pytest
from test_data import _shifts

from keras_eraserelu.core import MissingTensorFlowError
from keras_eraserelu.data import (
    ArrayBatches,
    InMemoryArrays,
    dataset_source,
    load_dataset,
    renormalized,
)
from keras_eraserelu.data.array_batches import shift_and_flip, source_batches

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (23, 8, 8, 3)).astype("uint8")
Y = (np.arange(23) % 4).astype("int32")
X_TEST = RNG.integers(0, 256, (7, 8, 8, 3)).astype("uint8")
Y_TEST = (np.arange(7) % 4).astype("int32")
SOURCE = dataset_source(((X, Y), (X_TEST, Y_TEST)))


def _stream(batches, count):
    return [batches[i] for i in range(count)]


def _batches(split="train", batch_size=5, **kwargs):
    kwargs = {"augment": "none", "shuffle": False, "seed": 0, "size": (8, 8)} | kwargs
    return source_batches(SOURCE, split, batch_size, **kwargs)


@pytest.mark.parametrize("split", ["test", "train[:60%]"])
def test_unshuffled_batches_equal_the_tf_data_pipeline(split):
    # The reference: the tf.data engine's own batches of the same source.
    reference = list(load_dataset(SOURCE, split, 5, augment=False, shuffle=False))
    mine = _batches(split)
    assert mine.num_batches == len(reference)
    for (x, y), (x_ref, y_ref) in zip(_stream(mine, mine.num_batches), reference):
        np.testing.assert_allclose(x, x_ref.numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(y, y_ref.numpy())
        assert x.dtype == np.float32 and y.dtype == np.int32


def test_resized_images_equal_the_tf_data_pipeline():
    reference = next(
        iter(load_dataset(SOURCE, "test", 7, augment=False, image_size=12))
    )
    x, _ = _batches("test", 7, size=(12, 12))[0]
    assert x.shape == (7, 12, 12, 3)
    np.testing.assert_allclose(x, reference[0].numpy(), rtol=1e-4, atol=1e-4)


def test_every_pass_is_a_new_permutation_and_batches_cross_passes():
    batches = _batches(shuffle=True, repeat=True, seed=3)
    assert batches.num_batches is None  # endless, for steps_per_epoch
    labels = np.concatenate([y for _, y in _stream(batches, 14)])  # 70 = 3 passes + 1
    images = np.concatenate([x for x, _ in _stream(batches, 14)])
    normalized = InMemoryArrays(SOURCE.arrays.arrays, **_normalization()).normalize(X)
    first, second = images[:23], images[23:46]
    for one_pass in (first, second):  # every training image exactly once
        order = [
            int(np.argmin(np.abs(normalized - x).sum((1, 2, 3)))) for x in one_pass
        ]
        assert sorted(order) == list(range(23))
        np.testing.assert_array_equal(labels[: len(order)], Y[order])
        labels = labels[23:]
    assert not np.array_equal(first, second)


def _normalization():
    arrays = SOURCE.arrays
    return {"scale": arrays.scale, "mean": arrays.mean, "std": arrays.std}


def test_a_resumed_stream_continues_the_uninterrupted_one_exactly():
    kwargs = {"shuffle": True, "repeat": True, "seed": 5, "augment": "crop_flip"}
    whole = _stream(_batches(**kwargs), 12)
    resumed = _stream(_batches(skip_batches=7, **kwargs), 5)
    for (x, y), (x_whole, y_whole) in zip(resumed, whole[7:]):
        np.testing.assert_array_equal(x, x_whole)
        np.testing.assert_array_equal(y, y_whole)
    other_seed = _batches(**{**kwargs, "seed": 6})[0][0]
    assert not np.array_equal(other_seed, whole[0][0])


def test_one_pass_without_repeat_ends_with_the_smaller_batch():
    assert [len(y) for _, y in _stream(_batches(), 5)] == [5, 5, 5, 5, 3]
    with pytest.raises(IndexError):
        _batches()[5]
    assert _batches(drop_remainder=True).num_batches == 4


@pytest.mark.parametrize("policy", ["flip", "crop", "crop_flip"])
def test_augmented_images_are_shifts_and_mirrors_of_their_own(policy):
    images = RNG.normal(size=(16, 6, 6, 2)).astype("float32")
    fill = np.asarray([0.5, -1.0], "float32")
    padding = 0 if policy == "flip" else 2
    flips = policy != "crop"
    out = shift_and_flip(images, np.random.default_rng(1), padding, flips, fill)
    assert out.shape == images.shape and out.dtype == np.float32
    changed = 0
    for image, result in zip(images, out):
        views = _shifts(image, padding, fill, flips)
        assert any(np.allclose(result, view, atol=1e-6) for view in views)
        changed += not np.array_equal(result, image)
    assert changed >= 8  # most of 16 images moved


def test_renormalized_arrays_match_normalizing_the_pixels_anew():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    ready = renormalized(SOURCE, mean, std)
    x, _ = source_batches(ready, "test", 7, augment="none", shuffle=False, seed=0,
                          size=(8, 8))[0]  # fmt: skip
    np.testing.assert_allclose(x, (X_TEST / 255.0 - mean) / np.asarray(std), atol=1e-5)


def test_a_source_that_is_not_in_memory_names_what_works_without_tensorflow():
    with pytest.raises(MissingTensorFlowError, match="'cifar10'.*'digits', \\(x, y\\)"):
        source_batches(dataset_source("cifar10"), "train", 8, augment="none",
                       shuffle=False, seed=0, size=(32, 32))  # fmt: skip


def test_an_unknown_policy_lists_the_choices():
    with pytest.raises(ValueError, match="augment='resized_crop_flip'.*'crop_flip'"):
        ArrayBatches(SOURCE.arrays, "train", 4, augment="resized_crop_flip")
