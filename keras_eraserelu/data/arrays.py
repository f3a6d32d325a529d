"""Data in memory: `(x, y)` arrays, `.npz` files and what folders are read into.

`array_source(arrays, kind=..., ...)` checks the arrays (same lengths,
integer labels in [0, classes), images of one shape), computes the
normalization of the training images and a content hash, and returns the
`DataSource` that reads them. `split_arrays` holds out a stratified part of
`(x, y)`; `read_npz` reads x_train, y_train, x_test, y_test.

Example:

```python
source = array_source(split_arrays(x, y, 0.1), kind="arrays")
source.record["sizes"]     # {'train': 900, 'test': 100}
```
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from keras_eraserelu.core import check_number, is_int
from keras_eraserelu.data.catalogue import (
    AUGMENTATIONS_WITH_FLIP,
    DatasetSpec,
    resolve_augment,
)
from keras_eraserelu.data.data_source import (
    InMemoryArrays,
    channel_stats,
    check_image_size,
    describe,
    in_memory_source,
    pixel_scale,
)

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
SPLIT_SEED = 0  # the held-out part is the same for every run and seed


def split_arrays(x, y, validation_split):
    """`{"train": (x, y), "test": (x, y)}`: a stratified `validation_split` of
    `(x, y)` held out (fixed seed; not stratified when a class has a single
    example or the parts are smaller than the number of classes), both
    parts in a shuffled order so that slices are random."""
    from sklearn.model_selection import train_test_split

    fraction = check_number(
        "validation_split", validation_split, 0, 1, open_low=True, open_high=True
    )
    x, y = _as_images(x, "x"), _as_labels(y, "y")
    _check_lengths(x, y, "x", "y")
    _, counts = np.unique(y, return_counts=True)
    held_out = int(np.ceil(fraction * len(y)))
    stratify = counts.min() >= 2 and len(counts) <= min(held_out, len(y) - held_out)
    if held_out >= len(y):
        raise ValueError(
            f"validation_split={fraction} of {len(y)} examples leaves none to train on."
        )
    train, test = train_test_split(
        np.arange(len(y)),
        test_size=held_out,
        random_state=SPLIT_SEED,
        stratify=y if stratify else None,
    )
    return {"train": (x[train], y[train]), "test": (x[test], y[test])}


def pair_arrays(train, test):
    """`{"train": ..., "test": ...}` of `(x, y)` and `(x_val, y_val)`, the
    training part shuffled once (fixed seed) so that its slices are random."""
    arrays = {}
    for split, pair, names in (("train", train, ("x", "y")),
                               ("test", test, ("x_val", "y_val"))):  # fmt: skip
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(
                f"Expected ((x, y), (x_val, y_val)). Received for {names}: "
                f"{type(pair).__name__}."
            )
        x, y = _as_images(pair[0], names[0]), _as_labels(pair[1], names[1])
        _check_lengths(x, y, *names)
        arrays[split] = (x, y)
    x, y = arrays["train"]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    arrays["train"] = (x[order], y[order])
    return arrays


def read_npz(path):
    """The `{"train": ..., "test": ...}` arrays of a `.npz` file holding
    x_train, y_train, x_test and y_test."""
    with np.load(path, allow_pickle=False) as data:
        missing = [key for key in NPZ_KEYS if key not in data.files]
        if missing:
            raise ValueError(
                f"The .npz file {path!r} lacks {missing}: it must hold the arrays "
                f"{list(NPZ_KEYS)}. It holds {sorted(data.files)}."
            )
        arrays = {name: data[name] for name in NPZ_KEYS}
    return pair_arrays(
        (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    )


def array_source(
    arrays,
    *,
    kind,
    num_classes=None,
    class_names=None,
    image_size=None,
    normalize="auto",
    augmentation=None,
    described=None,
):
    """The `DataSource` of in-memory arrays (see `dataset_source`).

    Args:
        arrays: dict {"train": (x, y), "test": (x, y)}.
        kind: str. "arrays", "npz" or "folder" (for the record).
        described: dict or None. More record fields (path, class names).
        The others: as in `dataset_source`.
    """
    x_train, y_train = arrays["train"]
    x_test, _ = arrays["test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"The training images have shape {x_train.shape[1:]} but the test "
            f"images {x_test.shape[1:]}: both must have one shape (H, W, C)."
        )
    classes = _check_classes(arrays, num_classes, class_names)
    scale = 1.0 if normalize is False else pixel_scale(x_train.dtype)
    mean, std = _normalization(normalize, x_train, scale)
    size = check_image_size(image_size)
    if size == tuple(x_train.shape[1:3]):
        size = None  # already that size
    shape = (*(size or x_train.shape[1:3]), x_train.shape[3])
    digest = content_hash(arrays)
    spec = user_spec(f"{kind}:{digest[:12]}", classes, shape, mean, std, augmentation,
                     kind)  # fmt: skip
    sizes = {split: int(len(y)) for split, (_, y) in arrays.items()}
    details = {k: v for k, v in (described or {}).items() if k != "class_names"}
    record = describe(kind, spec, sizes, class_names, **details, sha256=digest)
    arrays = InMemoryArrays(arrays, scale=scale, mean=mean, std=std, size=size)
    return in_memory_source(spec, kind, spec.name, record, arrays)


def user_spec(name, classes, shape, mean, std, augmentation, family):
    """The `DatasetSpec` of a user's data: splits "train" and "test", every
    policy of `AUGMENTATIONS_WITH_FLIP` allowed, "none" by default."""
    spec = DatasetSpec(
        name, classes, tuple(int(s) for s in shape), "train", "test", family,
        tuple(mean), tuple(std), augmentation="none",
        augmentations=AUGMENTATIONS_WITH_FLIP, padding=max(1, int(shape[0]) // 8),
    )  # fmt: skip
    if augmentation is None:
        return spec
    policy = resolve_augment(spec, augmentation, True)
    return dataclasses.replace(spec, augmentation=policy)


def content_hash(arrays):
    """sha256 over the shapes, dtypes and bytes of every array, in order."""
    digest = hashlib.sha256()
    for split in sorted(arrays):
        for array in arrays[split]:
            array = np.ascontiguousarray(array)
            digest.update(f"{split}{array.shape}{array.dtype.str}".encode())
            digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _as_images(x, name):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(
            f"`{name}` must be numeric images of shape (N, H, W, C) or (N, H, W). "
            f"Received: {name}.shape={x.shape}, dtype={x.dtype}."
        )
    return x


def _as_labels(y, name):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        raise ValueError(
            f"`{name}` must hold integer class labels of shape (N,); received "
            f"shape {y.shape}, which looks one-hot: pass {name}.argmax(-1)."
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        whole = np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)
        hint = f" Its values are whole: pass {name}.astype('int64')." if whole else ""
        raise ValueError(
            f"`{name}` must hold integer class labels of shape (N,). Received: "
            f"{name}.shape={y.shape}, dtype={y.dtype}.{hint}"
        )
    return y


def _check_lengths(x, y, x_name, y_name):
    if len(x) != len(y):
        raise ValueError(
            f"`{x_name}` and `{y_name}` must have the same length. Received: "
            f"{len(x)} images and {len(y)} labels."
        )
    if not len(y):
        raise ValueError(f"`{x_name}` holds no images.")


def _check_classes(arrays, num_classes, class_names):
    labels = np.concatenate([y for _, y in arrays.values()])
    if num_classes is None:
        num_classes = len(class_names) if class_names else int(labels.max()) + 1
    if not is_int(num_classes) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an int >= 2. Received: num_classes={num_classes!r}."
        )
    for split, (_, y) in arrays.items():
        bad = y[(y < 0) | (y >= num_classes)]
        if len(bad):
            raise ValueError(
                f"The {split} labels must lie in [0, {num_classes}) "
                f"(num_classes={num_classes}). Received: {len(bad)} labels outside, "
                f"such as {int(bad[0])}."
            )
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` has {len(class_names)} names for {num_classes} classes."
        )
    return int(num_classes)


def _normalization(normalize, x_train, scale):
    if isinstance(normalize, str) and normalize == "auto":
        chunks = (x_train[i : i + 4096] for i in range(0, len(x_train), 4096))
        return channel_stats(chunks, scale)
    if normalize is False:
        return (0.0,) * x_train.shape[-1], (1.0,) * x_train.shape[-1]
    return check_normalize(normalize, x_train.shape[-1])


def check_normalize(normalize, channels):
    """`(mean, std)` as tuples of `channels` floats, or raises."""
    try:
        mean, std = normalize
        mean, std = np.broadcast_to(mean, channels), np.broadcast_to(std, channels)
    except (TypeError, ValueError):
        raise ValueError(
            '`normalize` must be "auto", False or (mean, std) with one value or '
            f"one per channel ({channels}). Received: normalize={normalize!r}."
        ) from None
    if np.any(np.asarray(std, dtype=float) <= 0):
        raise ValueError(f"The std of `normalize` must be > 0. Received: {std!r}.")
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
