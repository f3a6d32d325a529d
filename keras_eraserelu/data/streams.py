"""A user's own pipelines: a `(train, validation)` pair of tf.data.Dataset or
keras.utils.PyDataset, batched or not.

Each is turned into a stream of single `(image, label)` examples (a
PyDataset through `tf.data.Dataset.from_generator`, batches unbatched) so
that the run's batch size, shuffling and augmentation apply as to any other
source. One pass over both at resolution counts the examples, checks the
labels and computes the normalization. Slices ("train[:90%]") are taken by
position, so the pipelines must give the same examples in the same order
each time they are iterated. Under tf.distribute the batched pipeline is
split over the replicas by `experimental_distribute_dataset` (it cannot be
read per worker).

Example:

```python
source = stream_source((train_ds, val_ds))
source.record["sizes"]          # {'train': 50000, 'test': 10000}
```
"""

from __future__ import annotations

import numpy as np

from keras_eraserelu.core import tensorflow as tf
from keras_eraserelu.core import tensorflow_loaded
from keras_eraserelu.data.arrays import check_normalize, user_spec
from keras_eraserelu.data.data_source import (
    DataSource,
    channel_stats,
    check_image_size,
    describe,
    normalizer,
    pixel_scale,
)


def is_stream_pair(dataset):
    """Whether `dataset` is a (train, validation) pair of tf.data or PyDataset."""
    import keras

    loaded = tensorflow_loaded()  # not loaded: nothing is a tf.data.Dataset
    kinds = (keras.utils.PyDataset, *([loaded.data.Dataset] if loaded else []))
    return (
        isinstance(dataset, (tuple, list))
        and len(dataset) == 2
        and all(isinstance(part, kinds) for part in dataset)
    )


def stream_source(
    pair,
    *,
    num_classes=None,
    class_names=None,
    image_size=None,
    normalize="auto",
    augmentation=None,
):
    """The `DataSource` of a `(train, validation)` pair (see `dataset_source`).

    Raises:
        ValueError: for elements that are not `(images, labels)`, labels that
            are not integers or fall outside [0, num_classes), or a training
            and a validation pipeline of different image shapes.
    """
    streams, batches = {}, {}
    for split, part in zip(("train", "test"), pair):
        streams[split], batches[split] = _examples(part, split)
    shapes = {split: tuple(s.element_spec[0].shape) for split, s in streams.items()}
    if shapes["train"] != shapes["test"] or None in shapes["train"]:
        raise ValueError(
            "The training and validation pipelines must give images of one fixed "
            f"shape (H, W, C). Received: {shapes['train']} and {shapes['test']}."
        )
    dtype = streams["train"].element_spec[0].dtype.as_numpy_dtype
    scale = 1.0 if normalize is False else pixel_scale(dtype)
    counts, labels = {}, {}
    for split, stream in streams.items():
        counts[split], labels[split] = _count_and_labels(stream, split)
    classes = num_classes or (len(class_names) if class_names else None)
    classes = classes or int(max(high for _, high in labels.values())) + 1
    for split, (low, high) in labels.items():
        if low < 0 or high >= classes:
            raise ValueError(
                f"The {split} labels must lie in [0, {classes}) "
                f"(num_classes={classes}). Received: labels from {low} to {high}."
            )
    channels = shapes["train"][-1]
    if isinstance(normalize, str) and normalize == "auto":
        images = streams["train"].map(lambda x, y: x).batch(1024)
        mean, std = channel_stats(images.as_numpy_iterator(), scale)
    elif normalize is False:
        mean, std = (0.0,) * channels, (1.0,) * channels
    else:
        mean, std = check_normalize(normalize, channels)
    size = check_image_size(image_size)
    shape = (*(size or shapes["train"][:2]), channels)
    name = f"tf.data:{counts['train']}+{counts['test']}"
    spec = user_spec(name, classes, shape, mean, std, augmentation, "tf.data")
    normalize_fn = normalizer(scale, mean, std, size)
    sized = {
        split: stream.apply(tf.data.experimental.assert_cardinality(counts[split]))
        for split, stream in streams.items()
    }

    def read(split, input_context=None):
        del input_context  # not shardable: see the module docstring
        return _slice(sized, split).map(normalize_fn, tf.data.AUTOTUNE)

    # A stream has no content hash that is cheap and stable.
    record = describe("tf.data", spec, counts, class_names, sha256=None,
                      batch_size=batches["train"])  # fmt: skip
    return DataSource(spec, "tf.data", name, record, reader=read, per_worker=False)


def _examples(part, split):
    """A tf.data of single `(image, label)` examples from a pipeline, and its
    batch size (None when it gave single examples)."""
    import keras

    if isinstance(part, keras.utils.PyDataset):
        part = _from_py_dataset(part)
    element = part.element_spec
    if not (isinstance(element, tuple) and len(element) == 2):
        raise ValueError(
            f"The {split} pipeline must give (images, labels) pairs. Received "
            f"elements of spec {element}."
        )
    rank = len(element[0].shape)
    batch = None
    if rank == 4 or (rank == 3 and len(element[1].shape) >= 1):
        batch = int(next(iter(part))[0].shape[0])
        part = part.unbatch()  # batches of (N, H, W[, C]) images
    if len(part.element_spec[0].shape) == 2:
        part = part.map(lambda x, y: (x[..., None], y))
    if len(part.element_spec[1].shape) == 1:
        part = part.map(lambda x, y: (x, y[0]))
    if not part.element_spec[1].dtype.is_integer:
        raise ValueError(
            f"The {split} labels must be integers (class indices). Received "
            f"dtype {part.element_spec[1].dtype.name}."
        )
    return part, batch


def _from_py_dataset(py_dataset):
    def generate():
        for index in range(len(py_dataset)):
            x, y = py_dataset[index][:2]
            yield np.asarray(x), np.asarray(y)

    x, y = generate().__next__()
    signature = (
        tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype)),
        tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype)),
    )
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _count_and_labels(stream, split):
    count, low, high = 0, None, None
    for labels in stream.map(lambda x, y: y).batch(4096).as_numpy_iterator():
        count += len(labels)
        low = labels.min() if low is None else min(low, labels.min())
        high = labels.max() if high is None else max(high, labels.max())
    if not count:
        raise ValueError(f"The {split} pipeline gives no examples.")
    return count, (int(low), int(high))


def _slice(streams, split):
    import tensorflow_datasets as tfds

    infos = {
        name: tfds.core.SplitInfo(
            name=name, shard_lengths=[int(s.cardinality())], num_bytes=0
        )
        for name, s in streams.items()
    }
    parts = []
    for part in tfds.core.ReadInstruction.from_spec(split).to_absolute(infos):
        start = part.from_ or 0
        stop = infos[part.splitname].num_examples if part.to is None else part.to
        parts.append(streams[part.splitname].skip(start).take(stop - start))
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concatenate(part)
    return dataset
