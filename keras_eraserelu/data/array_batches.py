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

import keras
import numpy as np

from keras_eraserelu.core import MissingTensorFlowError

ARRAY_POLICIES = ("none", "flip", "crop", "crop_flip")


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
    ):
        super().__init__()
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
        self.fill = np.asarray(fill, "float32")
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
        images = self.arrays.normalize(self.images[picked])
        rng = np.random.default_rng((self.seed, number))
        images = shift_and_flip(images, rng, self.padding, self.flip, self.fill)
        return images, self.labels[picked]

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
            order = np.random.default_rng((self.seed, one_pass, 0)).permutation(count)
            mask = passes == one_pass
            picked[mask] = order[offsets[mask]]
        return picked


def shift_and_flip(images, rng, padding=0, flip=False, fill=0.0):
    """Random shifts (pad, then crop back) and horizontal flips of a batch.

    The NumPy twin of `keras_eraserelu.data.augment.shift_and_flip`: each
    image shifts by up to `padding` pixels each way (the padding filled with
    `fill`) and, with `flip`, is mirrored with chance 1/2.

    Example:

    ```python
    out = shift_and_flip(np.zeros((2, 8, 8, 1)), np.random.default_rng(0), 1, True)
    ```
    """
    if not padding and not flip:
        return images
    batch, height, width = images.shape[:3]
    rows = np.broadcast_to(np.arange(height), (batch, height))
    columns = np.broadcast_to(np.arange(width), (batch, width))
    if padding:
        pad = [(0, 0), (padding, padding), (padding, padding), (0, 0)]
        images = np.pad(images - fill, pad) + fill
        offsets = rng.integers(0, 2 * padding + 1, size=(batch, 2))
        rows = rows + offsets[:, :1]
        columns = columns + offsets[:, 1:]
    if flip:
        mirrored = rng.random((batch, 1)) < 0.5
        columns = np.where(mirrored, columns[:, ::-1], columns)
    every = np.arange(batch)[:, None, None]
    return images[every, rows[:, :, None], columns[:, None, :]].astype("float32")


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
