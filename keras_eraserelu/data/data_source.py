"""`DataSource`, and what every kind of source shares: splits, normalization.

A source has two splits, "train" and "test", each a NumPy pair or a
tf.data pipeline of `(image, label)` examples; `slice_splits` reads a tfds
split string over them ("train[:90%]", "train+test"); `normalizer` maps raw
examples to normalized float32 images and int32 labels; `channel_stats`
computes the per-channel mean and standard deviation that normalize them.

Example:

```python
arrays = {"train": (x, y), "test": (x_test, y_test)}
images, labels = slice_splits(arrays, "train[:90%]")
```
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from keras_eraserelu.core import is_int
from keras_eraserelu.core import tensorflow as tf


@dataclasses.dataclass(frozen=True, eq=False)
class DataSource:
    """A resolved data set: what it is, and how to read a split of it.

    Make one with `keras_eraserelu.data.dataset_source`.

    Attributes:
        spec: `DatasetSpec`. Classes, image shape, splits, normalization and
            augmentation policies.
        kind: str. "catalogue", "registered", "tfds", "arrays", "npz",
            "folder" or "tf.data" (also for a PyDataset).
        identity: str. What a run directory records as its data set: the
            name, or `kind:` and a prefix of the content's sha256.
        record: dict. JSON-ready: kind, name or path, content hash, sizes,
            classes (and class names), image shape, mean and std.
        reader: callable(split, input_context) -> tf.data.Dataset of
            normalized `(image, label)` examples, or None for a tfds data set
            (read by `read_tfds`, decoded by the pipeline).
        per_worker: bool. Whether each input pipeline reads its own shard;
            False: the batched pipeline is split over the replicas by
            `experimental_distribute_dataset`.
        arrays: `InMemoryArrays` or None. The raw arrays of an in-memory
            source (read without TensorFlow by `ArrayBatches` where it is
            not installed); `reader` is then built from them.
    """

    spec: object
    kind: str
    identity: str
    record: dict
    reader: object = None
    per_worker: bool = True
    arrays: object = None

    @property
    def in_memory(self):
        """Whether the examples are arrays in memory (no cache needed)."""
        return self.arrays is not None

    def size(self, split="train"):
        """The number of examples of the whole split "train" or "test", or
        None when unknown before reading (a tfds data set)."""
        return self.record.get("sizes", {}).get(split)


def check_image_size(image_size):
    """`image_size` (None, an int or (height, width)) as None or a tuple of
    two positive ints; raises a ValueError naming it otherwise."""
    if image_size is None:
        return None
    size = (image_size, image_size) if is_int(image_size) else image_size
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(is_int(s) and s > 0 for s in size)
    ):
        raise ValueError(
            "`image_size` must be None, a positive int or (height, width). "
            f"Received: image_size={image_size!r}."
        )
    return tuple(int(s) for s in size)


def describe(kind, spec, sizes, class_names=None, **details):
    """The JSON-ready `DataSource.record`: what the data are (`details`:
    name, path, content hash, ...), then their sizes, classes, image shape,
    normalization and augmentation."""
    return {
        "kind": kind,
        **details,
        "sizes": sizes,
        "num_classes": spec.num_classes,
        "class_names": list(class_names) if class_names else None,
        "image_shape": list(spec.image_shape),
        "mean": list(spec.mean),
        "std": list(spec.std),
        "augmentation": spec.augmentation,
    }


def renormalized(source, mean, std):
    """`source` with its images normalized by `(u - mean) / std` instead of
    its own statistics (`u`: pixels in [0, 1]), for a model that expects its
    own normalization (a KerasHub preset's image converter).

    Example:

    ```python
    ready = renormalized(source, mean=(0.5,) * 3, std=(0.5,) * 3)
    ```
    """
    spec = dataclasses.replace(source.spec, mean=tuple(mean), std=tuple(std))
    record = {**source.record, "mean": list(mean), "std": list(std),
              "normalized_for_the_model": True}  # fmt: skip
    identity = f"{source.identity}/normalized:{list(mean)}:{list(std)}"
    if source.arrays is not None:
        old = (source.spec.mean, source.spec.std)
        arrays = source.arrays.renormalized(*old, mean, std)
        reader = in_memory_reader(arrays)
        return dataclasses.replace(source, spec=spec, record=record, reader=reader,
                                   identity=identity, arrays=arrays)  # fmt: skip
    reader = source.reader
    if reader is not None:  # a tfds source reads the spec's mean and std
        old_mean = tf.constant(source.spec.mean, tf.float32)
        old_std = tf.constant(source.spec.std, tf.float32)
        new_mean, new_std = tf.constant(mean, tf.float32), tf.constant(std, tf.float32)
        own = reader

        def reader(split, input_context=None):
            def again(image, label):
                return ((image * old_std + old_mean) - new_mean) / new_std, label

            return own(split, input_context).map(again, tf.data.AUTOTUNE)

    return dataclasses.replace(source, spec=spec, record=record, reader=reader,
                               identity=identity)  # fmt: skip


def slice_splits(arrays, split):
    """The images and labels of a tfds split string over `arrays`.

    Args:
        arrays: dict {"train": (x, y), "test": (x, y)} of NumPy arrays.
        split: str. "train", "test", "train[:90%]", "train[10:20]+test", ...

    Returns:
        (images, labels): the slices, concatenated.
    """
    import tensorflow_datasets as tfds

    infos = {
        name: tfds.core.SplitInfo(name=name, shard_lengths=[len(y)], num_bytes=0)
        for name, (_, y) in arrays.items()
    }
    pieces = [
        tuple(a[part.from_ : part.to] for a in arrays[part.splitname])
        for part in tfds.core.ReadInstruction.from_spec(split).to_absolute(infos)
    ]
    return tuple(np.concatenate(column) for column in zip(*pieces))


@dataclasses.dataclass(frozen=True, eq=False)
class InMemoryArrays:
    """The raw splits of an in-memory source and how to normalize them.

    A split's images `x` become `(x * scale - mean) / std` (float32, per
    channel), resized to `size` when given; labels become int32.

    Attributes:
        arrays: dict {"train": (x, y), "test": (x, y)} of NumPy arrays, x
            (N, H, W, C).
        scale: float. Multiplies the pixels first (`pixel_scale`).
        mean: float or per-channel floats.
        std: float or per-channel floats.
        size: None or (height, width).

    Example:

    ```python
    arrays = InMemoryArrays({"train": (x, y), "test": (xt, yt)}, 1 / 255, 0.5, 0.25)
    images, labels = arrays.split("train[:90%]")
    ```
    """

    arrays: dict
    scale: float
    mean: object
    std: object
    size: tuple | None = None

    def split(self, split):
        """(raw images, int32 labels) of a tfds split string ("train[:90%]")."""
        images, labels = slice_splits(self.arrays, split)
        return images, labels.astype("int32")

    def resize(self, images):
        """Raw images resized to `size` (bilinear, antialiased), or as they are."""
        if self.size is None:
            return images
        resized = keras.ops.image.resize(images.astype("float32"), self.size,
                                         antialias=True)  # fmt: skip
        return keras.ops.convert_to_numpy(resized)

    def normalize(self, images):
        """Raw images (resized) -> float32 normalized images, in NumPy."""
        std = np.asarray(self.std, "float32")
        gain = np.float32(self.scale) / std
        out = np.multiply(images, gain, dtype="float32")
        out -= np.asarray(self.mean, "float32") / std
        return out

    def raw_value(self, normalized):
        """The raw pixel value that normalizes to `normalized` (per channel)."""
        values = np.asarray(normalized) * np.asarray(self.std) + np.asarray(self.mean)
        return values / self.scale

    def renormalized(self, old_mean, old_std, new_mean, new_std):
        """These arrays normalized by `new_mean`, `new_std` where they were
        by `old_mean`, `old_std` (the same affine map, recomposed)."""
        old_mean, old_std = np.asarray(old_mean), np.asarray(old_std)
        shift = (np.asarray(new_mean) - old_mean) / old_std
        mean = np.asarray(self.mean) + np.asarray(self.std) * shift
        std = np.asarray(self.std) * np.asarray(new_std) / old_std
        return dataclasses.replace(self, mean=tuple(mean), std=tuple(std))


def in_memory_reader(arrays):
    """A `DataSource.reader` over `InMemoryArrays`: the split's slices,
    sharded per input pipeline, normalized by `normalizer`."""

    def read(split, input_context=None):
        images, labels = slice_splits(arrays.arrays, split)
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        if input_context is not None:
            dataset = dataset.shard(
                input_context.num_input_pipelines, input_context.input_pipeline_id
            )
        normalize = normalizer(arrays.scale, arrays.mean, arrays.std, arrays.size)
        return dataset.map(normalize, tf.data.AUTOTUNE)

    return read


def in_memory_source(spec, kind, identity, record, arrays):
    """The `DataSource` of `InMemoryArrays`: read by tf.data where
    TensorFlow is installed, by `ArrayBatches` where it is not."""
    return DataSource(spec, kind, identity, record, in_memory_reader(arrays),
                      arrays=arrays)  # fmt: skip


def normalizer(scale, mean, std, size=None):
    """`(image, label) -> ((image * scale - mean) / std, int32 label)`, the
    image resized to `size` (bilinear, antialiased) when given."""
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)

    def normalize(image, label):
        image = tf.cast(image, tf.float32) * scale
        if size is not None:
            image = tf.image.resize(image, size, antialias=True)
        return (image - mean) / std, tf.cast(label, tf.int32)

    return normalize


def pixel_scale(dtype):
    """1/255 for uint8 images (to [0, 1]), 1 for any other dtype."""
    return 1.0 / 255.0 if np.dtype(dtype) == np.uint8 else 1.0


def channel_stats(batches, scale):
    """Per-channel mean and standard deviation of images, in one pass.

    Args:
        batches: iterable of image arrays (N, H, W, C) (a batched tf.data of
            images, or a list of arrays).
        scale: float. Multiplies the pixels first (`pixel_scale`).

    Returns:
        (mean, std): tuples of floats, one per channel (a channel that does
        not vary gets std 1, so that normalizing divides by nothing).
    """
    total = squares = None
    count = 0
    for images in batches:
        images = np.asarray(images, dtype="float64") * scale
        flat = images.reshape(-1, images.shape[-1])
        total = flat.sum(0) if total is None else total + flat.sum(0)
        squares = (flat**2).sum(0) if squares is None else squares + (flat**2).sum(0)
        count += len(flat)
    if not count:
        raise ValueError("The training split holds no images.")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std = np.where(std > 0, std, 1.0)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
