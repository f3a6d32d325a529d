"""In-memory data without TensorFlow: batches as a `keras.utils.PyDataset`.

Where TensorFlow is installed, tf.data is the input engine on every backend
(`keras_eraserelu.data.pipelines`). Where it is not (JAX or PyTorch alone),
`load_dataset` reads in-memory sources (digits, NumPy arrays, a .npz file)
through `ArrayBatches`, the same stream in NumPy:

shuffle every pass (one permutation per pass and seed) -> repeat -> batch
-> normalize -> random shifts and flips of the batch -> Keras' prefetching.

Batch `i` is a pure function of `(seed, i)`: it reads stream positions
`i * B ... (i + 1) * B` (position `p` is example `perm[p // N][p % N]`) and
draws its augmentation from `default_rng((seed, i))`, so a resumed run that
skips `k` batches continues the uninterrupted stream exactly, in any order
Keras' workers fetch the batches.

Example:

```python
splits = {"train": (x, y), "test": (x_test, y_test)}   # x uint8 (N, H, W, C)
arrays = InMemoryArrays(splits, scale=1 / 255, mean=(0.5,), std=(0.25,))
batches = ArrayBatches(arrays, "train", batch_size=4, shuffle=True, seed=0)
x, y = batches[0]   # (4, 8, 8, 1) float32, (4,) int32
```
"""

from __future__ import annotations

import dataclasses
import functools
import os

import keras
import numpy as np

from keras_eraserelu.core import MissingTensorFlowError

ARRAY_POLICIES = ("none", "flip", "crop", "crop_flip")
# Enough threads to keep a GPU fed with 224x224 batches (one took 0.09-0.14 s
# to prepare on one core, against ~0.04 s of ResNet-50 step on an H100).
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


class ArrayBatches(keras.utils.PyDataset):
    """Normalized, shuffled and augmented batches of an in-memory split.

    Args:
        arrays: `InMemoryArrays`.
        split: str. A tfds split string over "train" and "test".
        batch_size: int. Images per batch.
        shuffle: bool. A new permutation every pass.
        seed: None or int. Seeds the permutations and the augmentation; None
            draws one.
        augment: str. One of `ARRAY_POLICIES`.
        padding: int. Pixels padded per side by the "crop" policies.
        fill: float or per-channel floats. The padded pixels' value, in the
            normalized units (`-mean / std` for black).
        repeat: bool. An endless stream (`num_batches` None).
        drop_remainder: bool. Drop the last smaller batch of a pass (only
            without `repeat`).
        skip_batches: int. Start this many batches into the stream.
        shard: None or (index, count). Keep examples `index::count`.
        workers: int. Threads that prepare batches ahead of the training
            step (NumPy releases the GIL while it copies). Defaults to
            `DEFAULT_WORKERS`.
    """

    def __init__(
        self,
        arrays,
        split,
        batch_size,
        *,
        shuffle=False,
        seed=None,
        augment="none",
        padding=0,
        fill=0.0,
        repeat=False,
        drop_remainder=False,
        skip_batches=0,
        shard=None,
        workers=None,
    ):
        workers = DEFAULT_WORKERS if workers is None else workers
        super().__init__(workers=workers, max_queue_size=2 * workers)
        if augment not in ARRAY_POLICIES:
            raise ValueError(
                f"Unknown augment={augment!r} for in-memory batches. Expected "
                f"one of {list(ARRAY_POLICIES)}."
            )
        self.arrays = arrays
        self.images, self.labels = arrays.split(split)
        if shard is not None:
            index, count = shard
            self.images = self.images[index::count]
            self.labels = self.labels[index::count]
        if not len(self.labels):
            raise ValueError(f"The split {split!r} holds no examples.")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(
            np.random.SeedSequence().entropy % 2**32 if seed is None else seed
        )
        self.padding = padding if augment in ("crop", "crop_flip") else 0
        self.flip = augment in ("flip", "crop_flip")
        # Shifting and mirroring commute with the per-channel normalization:
        # done on the raw pixels, padded with the raw value of `fill`.
        self.raw_fill = arrays.raw_value(fill)
        self.repeat = repeat
        self.drop_remainder = drop_remainder
        self.skip_batches = int(skip_batches)

    @property
    def num_batches(self):
        """Batches per pass, or None for an endless stream."""
        if self.repeat:
            return None
        count = len(self.labels) - self.skip_batches * self.batch_size
        whole, rest = divmod(max(count, 0), self.batch_size)
        return whole + (1 if rest and not self.drop_remainder else 0)

    def __getitem__(self, index):
        """Batch `index` of the stream (after the skipped ones)."""
        if self.num_batches is not None and index >= self.num_batches:
            raise IndexError(f"Batch {index} of {self.num_batches}.")
        number = index + self.skip_batches
        picked = self._examples(number)
        images = self.arrays.resize(self.images[picked])
        rng = np.random.default_rng((self.seed, number))
        images = shift_and_flip(images, rng, self.padding, self.flip, self.raw_fill)
        return self.arrays.normalize(images), self.labels[picked]

    def _examples(self, number):
        """Indices of batch `number`: its positions in the stream of passes."""
        count = len(self.labels)
        start = number * self.batch_size
        stop = start + self.batch_size
        if not self.repeat:
            stop = min(stop, count)
        positions = np.arange(start, stop)
        passes, offsets = np.divmod(positions, count)
        if not self.shuffle:
            return offsets
        picked = np.empty_like(offsets)
        for one_pass in np.unique(passes):
            order = _permutation(self.seed, int(one_pass), count)
            mask = passes == one_pass
            picked[mask] = order[offsets[mask]]
        return picked


@functools.lru_cache(maxsize=4)
def _permutation(seed, one_pass, count):
    """The order of pass `one_pass` (drawn once, shared by its batches)."""
    order = np.random.default_rng((seed, one_pass, 0)).permutation(count)
    order.flags.writeable = False
    return order


def shift_and_flip(images, rng, padding=0, flip=False, fill=0.0):
    """Random shifts (pad, then crop back) and horizontal flips of a batch.

    The NumPy twin of `keras_eraserelu.data.augment.shift_and_flip`: each
    image shifts by up to `padding` pixels each way (the uncovered pixels
    set to `fill`, a value or one per channel) and, with `flip`, is mirrored
    with chance 1/2. One slice copy per image, in the images' dtype.

    Example:

    ```python
    out = shift_and_flip(np.zeros((2, 8, 8, 1)), np.random.default_rng(0), 1, True)
    ```
    """
    if not padding and not flip:
        return images
    batch, height, width = images.shape[:3]
    shifts = rng.integers(-padding, padding + 1, size=(batch, 2))
    mirrored = rng.random(batch) < 0.5 if flip else np.zeros(batch, bool)
    out = np.empty_like(images)
    out[...] = np.asarray(fill, images.dtype) if padding else 0
    for i, (down, right) in enumerate(shifts):
        # The output's pixel (r, c) is the input's (r + down, c + right).
        rows = slice(max(0, -down), height - max(0, down))
        columns = slice(max(0, -right), width - max(0, right))
        source = images[i, max(0, down) : height + min(0, down),
                        max(0, right) : width + min(0, right)]  # fmt: skip
        out[i, rows, columns] = source
        if mirrored[i]:
            out[i] = out[i, :, ::-1]
    return out


def source_batches(
    source,
    split,
    batch_size,
    *,
    augment,
    shuffle,
    seed,
    size,
    repeat=False,
    drop_remainder=False,
    skip_batches=0,
    input_context=None,
):
    """`ArrayBatches` of an in-memory `DataSource`, as `load_dataset` reads
    it where TensorFlow is not installed (the arguments are checked there).

    Raises:
        MissingTensorFlowError: for a source that is not in memory (tfds, a
            folder, a tf.data pair).
    """
    if source.arrays is None:
        raise MissingTensorFlowError(
            f"The data set {source.identity!r} ({source.kind}) is read with "
            "tf.data, and TensorFlow cannot be imported here. Without it, "
            "in-memory data works: 'digits', (x, y) arrays, "
            "((x, y), (x_val, y_val)) or a .npz file. Or install TensorFlow "
            "(pip install tensorflow)."
        )
    spec = source.spec
    arrays = source.arrays
    if tuple(size) != tuple(spec.image_shape[:2]):
        arrays = dataclasses.replace(arrays, size=tuple(size))
    shard = None
    if input_context is not None:
        shard = (input_context.input_pipeline_id, input_context.num_input_pipelines)
    return ArrayBatches(
        arrays,
        split,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        augment=augment,
        padding=spec.padding,
        fill=[-m / s for m, s in zip(spec.mean, spec.std)],  # black pixels
        repeat=repeat,
        drop_remainder=drop_remainder,
        skip_batches=skip_batches,
        shard=shard,
    )
