"""Any tensorflow-datasets data set with an image and a label feature: "tfds:NAME".

The spec comes from the builder's `info`: the image feature (the supervised
keys', or the only `Image` feature) and the label feature (the only
`ClassLabel`, which gives the classes and their names), "train" and the
"test" split (else "validation"). The normalization is the per-channel mean
and standard deviation of the training images, computed in one pass the
first time and cached beside the prepared data (`eraserelu_stats.json`),
unless given. Images of varying size need `image_size`.

Example:

```python
source = tfds_source("cmaterdb")      # 32x32 Bangla digits, 10 classes
source.spec.test_split                # 'test'
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile

from keras_eraserelu.core import did_you_mean
from keras_eraserelu.data.arrays import check_normalize, user_spec
from keras_eraserelu.data.catalogue import prepare_tfds, read_tfds
from keras_eraserelu.data.data_source import (
    DataSource,
    channel_stats,
    check_image_size,
    describe,
)

STATS_FILE = "eraserelu_stats.json"


def tfds_source(
    name,
    *,
    data_dir=None,
    num_classes=None,
    class_names=None,
    image_size=None,
    normalize="auto",
    augmentation=None,
):
    """The `DataSource` of the tensorflow-datasets data set `name` (see
    `dataset_source`); prepares it first if `data_dir` lacks it.

    Raises:
        ValueError: for a name tfds does not know, a data set without an
            image or a label feature or without a test split, images of
            varying size without `image_size`.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        known = tfds.list_builders()
        raise ValueError(
            f"tensorflow-datasets has no data set {name!r} (dataset='tfds:{name}')."
            f"{did_you_mean(name, known)}"
        ) from None
    image_key, label_key = _features(name, builder.info)
    label = builder.info.features[label_key]
    image = builder.info.features[image_key]
    size = _size(name, image.shape, image_size)
    shape = (*size, image.shape[-1])
    classes = num_classes or label.num_classes
    names = class_names or list(label.names)
    spec = user_spec(f"tfds:{name}", classes, shape, (0.0,), (1.0,), augmentation,
                     "tfds")  # fmt: skip
    spec = dataclasses.replace(
        spec, tfds_name=name, image_feature=image_key, label_feature=label_key,
        fixed_size=tuple(size) == tuple(image.shape[:2]), class_names=tuple(names),
    )  # fmt: skip
    if not builder.is_prepared():
        prepare_tfds(spec, builder, manual_dir=None)
    splits = tuple(builder.info.splits) or ("train", "test")  # mock data: none
    spec = dataclasses.replace(
        spec, splits=splits, test_split=_test_split(name, splits)
    )
    if isinstance(normalize, str) and normalize == "auto":
        mean, std = _cached_stats(builder, spec, data_dir)
    elif normalize is False:  # uint8 pixels as given: x / 255 / (1 / 255)
        mean, std = (0.0,) * shape[-1], (1.0 / 255.0,) * shape[-1]
    else:
        mean, std = check_normalize(normalize, shape[-1])
    spec = dataclasses.replace(spec, mean=tuple(mean), std=tuple(std))
    sizes = {
        split: builder.info.splits[split].num_examples
        for split in ("train", spec.test_split)
        if split in builder.info.splits
    }
    record = describe("tfds", spec, sizes, names, name=name,
                      version=str(builder.info.version),
                      data_dir=os.fspath(builder.data_dir_root))  # fmt: skip
    return DataSource(spec, "tfds", f"tfds:{name}", record)


def _features(name, info):
    """(image key, label key) of the data set, or raises naming its features."""
    import tensorflow_datasets as tfds

    features = info.features
    keys = dict(features.items()) if hasattr(features, "items") else {}
    images = [k for k, f in keys.items() if isinstance(f, tfds.features.Image)]
    labels = [k for k, f in keys.items() if isinstance(f, tfds.features.ClassLabel)]
    supervised = tuple(info.supervised_keys or ())
    if len(supervised) == 2 and supervised[0] in images and supervised[1] in labels:
        return supervised
    if len(images) == 1 and len(labels) == 1:
        return images[0], labels[0]
    described = {k: type(f).__name__ for k, f in keys.items()}
    raise ValueError(
        f"The tfds data set {name!r} must have one image feature "
        f"(tfds.features.Image) and one label feature (tfds.features.ClassLabel) "
        f"for classification. Its features: {described or features}."
    )


def _test_split(name, splits):
    for candidate in ("test", "validation"):
        if candidate in splits:
            return candidate
    raise ValueError(
        f"The tfds data set {name!r} has no 'test' or 'validation' split to "
        f"evaluate on; its splits are {list(splits)}. Hold out part of the "
        "training data yourself, e.g. pass (train, validation) tf.data "
        "pipelines read with split='train[:90%]' and 'train[90%:]'."
    )


def _size(name, shape, image_size):
    if image_size is not None:
        return check_image_size(image_size)
    if None in shape[:2]:
        raise ValueError(
            f"The images of the tfds data set {name!r} vary in size ({shape}); "
            "pass image_size=(height, width) (`--image-size`)."
        )
    return tuple(shape[:2])


def _cached_stats(builder, spec, data_dir):
    """The training images' mean and std: from `eraserelu_stats.json` beside
    the prepared data, else computed once and written there atomically."""
    path = os.path.join(os.fspath(builder.data_dir), STATS_FILE)
    try:
        with open(path) as file:
            cached = json.load(file)
        return tuple(cached["mean"]), tuple(cached["std"])
    except (OSError, ValueError, KeyError):
        pass
    images = read_tfds(spec, "train", shuffle=False, seed=None, data_dir=data_dir,
                       manual_dir=None, input_context=None)  # fmt: skip
    batches = images.map(lambda image, label: image).batch(1024)
    mean, std = channel_stats(batches.as_numpy_iterator(), 1.0 / 255.0)
    if builder.is_prepared():  # never beside mock data (tfds.testing.mock_data)
        _write_atomically(path, json.dumps({"mean": mean, "std": std}))
    return mean, std


def _write_atomically(path, text):
    """Writes `text` to `path` through a temporary file; a directory that
    cannot be written leaves nothing behind (computed again next time)."""
    try:
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path))
    except OSError:
        return
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except OSError:
        os.unlink(temporary)
