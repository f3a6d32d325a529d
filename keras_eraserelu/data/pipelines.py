"""Input pipelines: any `DataSource` (catalogue, tfds, arrays, folders) as `tf.data`.

`load_dataset(dataset, split, batch_size)` gives batches of `(images, labels)`:
float32 NHWC images normalized with the data set's per-channel mean and
standard deviation, int32 labels. The pipeline is the standard fast one:

read (tfds, files shuffled for training, sharded per input pipeline)
-> decode and normalize once -> `cache()` -> shuffle (buffer sized to the
data) -> batch -> random shifts and flips of whole batches in a parallel
`map` (one vectorized call per batch, not per image) -> prefetch.

ImageNet is not cached (it does not fit in memory): its records stay JPEG
bytes until a parallel per-image `map`, which decodes only the randomly
sampled crop, before batching.

The data sets themselves live in `keras_eraserelu.data.catalogue` (the named
ones: specs, split names, normalization constants, the tfds reader) and
`keras_eraserelu.data.sources` (every other kind, resolved to a `DataSource`).

Example:

```python
train = load_dataset("cifar10", "train", batch_size=128, seed=0)
test = load_dataset("cifar10", "test", batch_size=256)
model.fit(train, validation_data=test, epochs=164)
```
"""

from __future__ import annotations

import numpy as np

import keras_eraserelu.data.augment as aug
from keras_eraserelu.core import (
    check_bool,
    check_int,
    did_you_mean,
    is_int,
    tensorflow_available,
)
from keras_eraserelu.core import tensorflow as tf
from keras_eraserelu.data.array_batches import source_batches
from keras_eraserelu.data.catalogue import (
    AUGMENTATIONS_WITH_FLIP,
    is_training_split,
    read_tfds,
    resolve_augment,
    resolve_split,
)
from keras_eraserelu.data.data_source import check_image_size
from keras_eraserelu.data.sources import dataset_source

IMAGENET_SHUFFLE_BUFFER = 10_000  # records of JPEG bytes, per input pipeline
MAX_SHUFFLE_BUFFER = 100_000  # decoded images, per input pipeline


def load_dataset(
    dataset,
    split="train",
    batch_size=128,
    *,
    augment=None,
    shuffle=None,
    seed=None,
    data_dir=None,
    manual_dir=None,
    input_context=None,
    cache=None,
    repeat=False,
    drop_remainder=False,
    image_size=None,
    shuffle_buffer=None,
    skip_batches=0,
):
    """Batches of `(images, labels)` of a data set, ready for `model.fit`.

    Args:
        dataset: a name of `DATASETS` ("cifar10", "cifar100",
            "svhn_cropped", "fashion_mnist", "mnist", "imagenet2012",
            "digits") or of `register_dataset`, or anything else
            `dataset_source` accepts ("tfds:NAME", arrays, a folder, a .npz
            file, a tf.data pair, a `DataSource`).
        split: str. A tfds split string ("train", "test", "train[:90%]",
            "train+extra"); the words "train" and "test" mean the spec's
            `train_split` and `test_split` ("test" is ImageNet's "validation").
            "digits" takes the same syntax over its "train" and "test".
            Defaults to "train".
        batch_size: int. The global batch size; with `input_context`, each
            pipeline batches `input_context.get_per_replica_batch_size(...)`.
            Defaults to 128.
        augment: None, bool or str. A policy of `keras_eraserelu.data.augment`
            that the spec allows; True is the spec's recipe (`augmentation`),
            False "none". None: True for training splits (any split that
            does not name the test split), False otherwise.
        shuffle: None or bool. Shuffle files and examples. None: as `augment`.
        seed: None or int. Seeds file order, shuffling and augmentation, and
            makes the pipeline deterministic. None: random, and a shuffled
            pipeline may also reorder examples for speed.
        data_dir: str or None. The tfds data directory.
        manual_dir: str or None. Folder with the ImageNet tar files
            (ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar), needed once
            to prepare "imagenet2012".
        input_context: a `tf.distribute.InputContext` or None. Reads only
            this input pipeline's shard (tfds shards files, in-memory data
            examples; a user's tf.data pair cannot be sharded so: see
            `distributed_dataset`).
        cache: None, bool or str. Cache the normalized images in memory
            (True) or in a file (a path). None: True, except "imagenet2012"
            (when asked, ImageNet caches its JPEG records).
        repeat: bool. Repeat forever (for `steps_per_epoch`). Defaults to
            False.
        drop_remainder: bool. Drop the last smaller batch. Defaults to False.
        image_size: None, int or (height, width). Output size. For ImageNet
            the crop size (evaluation resizes the shorter side to
            size / 0.875); other data sets are resized. None: the spec's.
        shuffle_buffer: None or int. None: the whole split, at most 100,000
            (ImageNet: 10,000 JPEG records).
        skip_batches: int >= 0. Start the stream this many batches in, for a
            resumed run: the same batches as dropping the first
            `skip_batches` of the stream started from the beginning, the
            skipped examples read but neither decoded nor augmented. Defaults
            to 0.

    Returns:
        A `tf.data.Dataset` of (float32 images (B, H, W, C), int32 labels (B,)).
        Where TensorFlow is not installed, in-memory data come as the same
        stream in a `keras.utils.PyDataset` (`ArrayBatches`).

    Raises:
        TypeError: for arguments of the wrong type.
        ValueError: for an unknown name, split or policy, a batch size below
            1, or ImageNet that is not prepared and has no `manual_dir`.

    Example:

    ```python
    ds = load_dataset("digits", "train", batch_size=32, seed=0)
    images, labels = next(iter(ds))   # (32, 8, 8, 1) float32, (32,) int32
    ```
    """
    source = dataset_source(dataset, data_dir=data_dir)
    spec = source.spec
    split = resolve_split(spec, split)
    training = is_training_split(spec, split)
    policy = resolve_augment(spec, augment, training)
    shuffle = training if shuffle is None else check_bool("shuffle", shuffle)
    per_replica_batch = _per_replica_batch_size(batch_size, input_context)
    _check_seed(seed)
    size = _image_size(spec, image_size)
    cache = _check_cache(spec, cache)
    check_int("skip_batches", skip_batches, minimum=0)

    if not tensorflow_available():  # in-memory data alone, in NumPy
        return source_batches(
            source, split, per_replica_batch, augment=policy, shuffle=shuffle,
            seed=seed, size=size, repeat=repeat, drop_remainder=drop_remainder,
            skip_batches=skip_batches, input_context=input_context,
        )  # fmt: skip
    dataset = _read_examples(
        source, split, size, cache, shuffle, seed, data_dir, manual_dir, input_context
    )
    decode, augment, default_buffer = _example_transforms(spec, policy, size)
    if shuffle_buffer is None:
        shuffle_buffer = _examples(dataset, default_buffer)
    return _finish(
        dataset,
        per_replica_batch,
        decode=decode,
        augment=augment,
        shuffle=shuffle,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
        sharded=input_context is not None,
        skip_batches=skip_batches,
        shard_by_data=not source.per_worker,
    )


def _read_examples(
    source, split, size, cache, shuffle, seed, data_dir, manual_dir, input_context
):
    """The examples of `split`, read (this pipeline's shard), decoded and
    resized to `size` (ImageNet: still JPEG bytes), then cached if asked."""
    spec = source.spec
    if source.reader is not None:
        dataset = source.reader(split, input_context)
        if size != spec.image_shape[:2]:
            dataset = dataset.map(_resize_fn(size), tf.data.AUTOTUNE)
        elif cache is True and source.in_memory:
            cache = False  # already in memory
    else:
        dataset = read_tfds(
            spec, split, shuffle, seed, data_dir, manual_dir, input_context
        )
        if spec.family != "imagenet":
            dataset = dataset.map(_decode_fn(spec, size), tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache("" if cache is True else cache)
    return dataset


def _example_transforms(spec, policy, size):
    """The per-example `decode` (ImageNet) or per-batch `augment` (the others)
    of `policy`, and the default shuffle buffer that goes with them."""
    if spec.family == "imagenet":
        if policy == "none":
            decode = _without_seed(aug.imagenet_eval_fn(size, spec.mean, spec.std))
        else:
            decode = aug.imagenet_train_fn(size, spec.mean, spec.std)
        return decode, None, IMAGENET_SHUFFLE_BUFFER
    fill = [-m / s for m, s in zip(spec.mean, spec.std)]  # black pixels
    augment = aug.augment_fn(policy, padding=spec.padding, fill=fill)
    return None, augment, MAX_SHUFFLE_BUFFER


def distributed_dataset(
    strategy, dataset, split, global_batch_size, *, skip_steps=0, **kwargs
):
    """A `load_dataset` pipeline per input worker of a `tf.distribute` strategy.

    Each worker builds its own pipeline with its `InputContext`: it reads its
    shard and batches `global_batch_size / num_replicas_in_sync` examples per
    replica. A user's own tf.data or PyDataset pair cannot be read per
    worker: its batched pipeline is split by
    `strategy.experimental_distribute_dataset` (examples sharded by data).
    `skip_steps` starts every pipeline that many global steps in (a resumed
    run), as `load_dataset(skip_batches=...)` does.

    Args:
        strategy: a `tf.distribute.Strategy`.
        dataset: anything `load_dataset` accepts.
        split: str. As in `load_dataset`.
        global_batch_size: int. The batch size summed over replicas.
        **kwargs: the other keyword arguments of `load_dataset`.

    Returns:
        A `tf.distribute.DistributedDataset`, for `model.fit` or a custom loop.

    Example:

    ```python
    strategy = tf.distribute.MirroredStrategy()
    train = distributed_dataset(strategy, "cifar10", "train", 128, seed=0)
    ```
    """
    if "input_context" in kwargs:
        raise TypeError(
            "`distributed_dataset` passes each worker its own `input_context`; "
            "do not give one. Received: input_context="
            f"{kwargs['input_context']!r}."
        )
    # Check the arguments here, where the user called, not inside a worker.
    source = dataset_source(dataset, data_dir=kwargs.get("data_dir"))
    resolve_split(source.spec, split)
    _per_replica_batch_size(global_batch_size, None)
    check_int("skip_steps", skip_steps, minimum=0)
    if not source.per_worker:
        return strategy.experimental_distribute_dataset(
            load_dataset(
                source, split, global_batch_size, skip_batches=skip_steps, **kwargs
            )
        )

    def dataset_fn(input_context):
        # Each pipeline feeds its replicas one batch each per step.
        replicas = input_context.num_replicas_in_sync
        per_pipeline = replicas // input_context.num_input_pipelines
        return load_dataset(
            source,
            split,
            global_batch_size,
            input_context=input_context,
            skip_batches=skip_steps * per_pipeline,
            **kwargs,
        )

    return strategy.distribute_datasets_from_function(dataset_fn)


def numpy_dataset(
    x,
    y,
    batch_size,
    *,
    shuffle=False,
    seed=None,
    augment=None,
    input_context=None,
    padding=None,
):
    """Batches of in-memory arrays, with the same tail as `load_dataset`.

    The images are used as given (normalize them first); padding for "crop"
    is zero in their units.

    Args:
        x: array (N, H, W, C) or (N, H, W) of images.
        y: array (N,) of integer labels.
        batch_size: int. Global batch size (see `load_dataset`).
        shuffle: bool. Shuffle every epoch. Defaults to False.
        seed: None or int. Seeds shuffling and augmentation.
        augment: None, False or a str: "none", "flip", "crop", "crop_flip".
        input_context: a `tf.distribute.InputContext` or None: keep the
            examples `input_pipeline_id::num_input_pipelines`.
        padding: None or int. Pixels padded per side by "crop". None: H // 8
            (4 for 32x32 images), at least 1.

    Returns:
        A `tf.data.Dataset` of (float32 images, int32 labels).

    Raises:
        ValueError: if the arrays do not match, or for a bad batch size or
            policy.

    Example:

    ```python
    ds = numpy_dataset(np.zeros((10, 8, 8, 1)), np.arange(10), batch_size=4)
    ```
    """
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(
            "Expected images x of shape (N, H, W, C) or (N, H, W) and labels "
            f"y of shape (N,). Received: x.shape={x.shape}, y.shape={y.shape}."
        )
    per_replica_batch = _per_replica_batch_size(batch_size, input_context)
    _check_seed(seed)
    policy = "none" if augment is None or augment is False else augment
    if policy not in AUGMENTATIONS_WITH_FLIP:
        choices = AUGMENTATIONS_WITH_FLIP
        raise ValueError(
            f"Unknown augment={augment!r} for numpy data. Expected None, False "
            f"or one of {list(choices)}.{did_you_mean(augment, choices)}"
        )
    if padding is None:
        padding = max(1, x.shape[1] // 8)
    dataset = tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
    dataset = _shard(dataset, input_context)
    return _finish(
        dataset,
        per_replica_batch,
        augment=aug.augment_fn(policy, padding=padding),
        shuffle=check_bool("shuffle", shuffle),
        shuffle_buffer=max(1, len(x)),
        seed=seed,
        repeat=False,
        drop_remainder=False,
        sharded=input_context is not None,
    )


def _decode_fn(spec, size):
    def decode(image, label):
        image = aug.normalize(image, spec.mean, spec.std)
        if size != spec.image_shape[:2] or not spec.fixed_size:
            image = tf.image.resize(image, size, antialias=True)
        return image, tf.cast(label, tf.int32)

    return decode


def _resize_fn(size):
    def resize(image, label):
        return tf.image.resize(image, size, antialias=True), label

    return resize


def _without_seed(transform):
    return lambda image, seed: transform(image)


def _finish(
    dataset,
    batch_size,
    *,
    decode=None,
    augment=None,
    shuffle,
    shuffle_buffer,
    seed,
    repeat,
    drop_remainder,
    sharded,
    skip_batches=0,
    shard_by_data=False,
):
    """Shuffle -> repeat -> skip -> decode -> batch -> augment -> prefetch.

    `decode(image, seed)` runs per example, `augment(images, seed)` per batch,
    both in parallel maps, each call with its own stateless seed drawn from
    one stream per `seed`: skipping `skip_batches` batches skips the examples
    before they are decoded and the same number of draws from each stream,
    so a resumed pipeline continues the uninterrupted one exactly.
    """
    skip_examples = skip_batches * batch_size
    if shuffle and repeat and seed is not None:
        dataset = _shuffled_passes(dataset, shuffle_buffer, seed)
    else:
        if shuffle:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed)
        if repeat:
            dataset = dataset.repeat()
    if skip_examples:
        dataset = dataset.skip(skip_examples)
    if decode is not None:
        dataset = _map_with_seeds(
            dataset, decode, seed, skip=skip_examples, stream=repeat
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if augment is not None:
        dataset = _map_with_seeds(
            dataset, augment, seed, skip=skip_batches, stream=repeat
        )
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    # Out-of-order results are faster; allowed where the order is random anyway.
    options.deterministic = seed is not None or not shuffle
    if sharded:  # already sharded per input pipeline: no auto-sharding
        policy = tf.data.experimental.AutoShardPolicy.OFF
        options.experimental_distribute.auto_shard_policy = policy
    elif shard_by_data:  # a user's pipeline has no files to split per worker
        policy = tf.data.experimental.AutoShardPolicy.DATA
        options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)


def _shuffled_passes(dataset, shuffle_buffer, seed):
    """`dataset.shuffle(...).repeat()` whose shuffling starts afresh with
    every iterator: the shuffle is built inside `flat_map`'s function, so
    each iterator gets its own seed generator, and the stream is a function
    of (seed, position) alone, however many iterators came before (Keras'
    JAX `fit` takes a first batch from another one)."""
    return tf.data.Dataset.range(1).flat_map(
        lambda _: dataset.shuffle(shuffle_buffer, seed=seed).repeat()
    )


def _map_with_seeds(dataset, transform, seed, skip=0, stream=False):
    # New seeds every epoch; the same sequence of them for the same `seed`.
    # An endless stream draws them by position: every iterator the same.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=not stream)
    seeds = seeds.batch(2).skip(skip)
    dataset = tf.data.Dataset.zip(dataset, seeds)
    return dataset.map(
        lambda example, call_seed: (
            transform(example[0], call_seed),
            tf.cast(example[1], tf.int32),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _shard(dataset, input_context):
    if input_context is None:
        return dataset
    return dataset.shard(
        input_context.num_input_pipelines, input_context.input_pipeline_id
    )


def _examples(dataset, limit):
    count = int(dataset.cardinality())
    return limit if count < 0 else max(1, min(count, limit))


def _per_replica_batch_size(batch_size, input_context):
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if input_context is None:
        return batch_size
    return input_context.get_per_replica_batch_size(batch_size)


def _image_size(spec, image_size):
    return check_image_size(image_size) or tuple(spec.image_shape[:2])


def _check_cache(spec, cache):
    if cache is None:
        return spec.family != "imagenet"
    if not isinstance(cache, (bool, str)):
        raise TypeError(
            "`cache` must be None, a bool or a file path (str). "
            f"Received: cache={cache!r}."
        )
    return cache


def _check_seed(seed):
    if seed is not None and not is_int(seed):
        raise TypeError(
            f"`seed` must be None or an int. Received: seed={seed!r} of type "
            f"{type(seed).__name__}."
        )
