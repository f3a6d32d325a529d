"""`dataset_source`: every `dataset=` value resolved to one `DataSource`.

| `dataset` | read from | read per worker |
|---|---|---|
| a catalogue name (`DATASETS`) | tensorflow-datasets, sklearn's digits | yes |
| a name given to `register_dataset` | what it was registered with | as that |
| `"tfds:NAME"` | a tfds data set with image and label features | yes |
| `(x, y)`, `((x, y), (x_val, y_val))` | NumPy arrays | yes |
| a `.npz` path | its x_train, y_train, x_test, y_test | yes |
| a directory of class folders | `image_dataset_from_directory` | yes |
| `(train, validation)` tf.data / PyDataset | the user's pipelines | no (1) |

(1) split over the replicas by `experimental_distribute_dataset`.

Every source has two splits, "train" and "test" (the validation data),
sliced with tfds's split syntax ("train[:90%]"). Its images are normalized
per channel with the mean and standard deviation of its training images in
[0, 1] units (uint8 pixels are divided by 255), computed once unless given;
its `DatasetSpec` gives models their input shape and classes; its identity
(a content hash for arrays, files and folders) is what a run directory
records, and its `record` says what the data were.

Example:

```python
source = dataset_source((x, y), validation_split=0.2, augmentation="crop_flip")
source.spec.num_classes, source.record["sizes"]   # 10, {'train': 800, 'test': 200}
train = load_dataset(source, "train", batch_size=64, seed=0)
```
"""

from __future__ import annotations

import os

from keras_eraserelu.core import did_you_mean
from keras_eraserelu.data.arrays import (
    array_source,
    pair_arrays,
    read_npz,
    split_arrays,
)
from keras_eraserelu.data.catalogue import DATASETS, dataset_spec, digits_arrays
from keras_eraserelu.data.data_source import (
    DataSource,
    InMemoryArrays,
    in_memory_source,
)
from keras_eraserelu.data.folders import read_folder
from keras_eraserelu.data.registered import registered_names, registered_source
from keras_eraserelu.data.streams import is_stream_pair, stream_source
from keras_eraserelu.data.tfds_sources import tfds_source


def dataset_source(
    dataset,
    *,
    validation_split=0.1,
    num_classes=None,
    class_names=None,
    image_size=None,
    normalize="auto",
    augmentation=None,
    data_dir=None,
):
    """Resolves any `dataset=` value to a `DataSource`.

    Args:
        dataset: a catalogue or registered name, "tfds:NAME", `(x, y)` or
            `((x, y), (x_val, y_val))` arrays, a `.npz` path, a directory of
            class folders, a `(train, validation)` pair of tf.data.Dataset or
            keras.utils.PyDataset, or a `DataSource` (returned as is).
        validation_split: float in (0, 1). The part of `(x, y)`, or of a
            folder without train/ and test/ folders, held out as "test"
            (stratified, the same for every run). Defaults to 0.1.
        num_classes: int or None. Defaults to the largest label + 1 (a tfds
            ClassLabel's count, a folder's number of class folders).
        class_names: list of str or None. Kept in the record (a folder's and
            a tfds ClassLabel's are found).
        image_size: None, int or (height, width). Resize the images; needed
            for a folder or tfds data set of images of mixed sizes.
        normalize: "auto", False or (mean, std). "auto": the per-channel mean
            and standard deviation of the training images; False: the images
            as given, cast to float32. Defaults to "auto".
        augmentation: str or None. The training policy of `augment=True`:
            "none", "flip", "crop" or "crop_flip". Defaults to "none".
        data_dir: str or None. The tfds data directory ("tfds:NAME").

    Returns:
        A `DataSource`. Catalogue and registered names ignore the other
        arguments (a registration has its own).

    Raises:
        TypeError: for a `dataset` of no accepted kind.
        ValueError: naming the problem: an unknown name; arrays of different
            lengths; labels that are not integers or fall outside
            [0, num_classes); a folder of mixed image sizes without
            `image_size`; a tfds data set without an image or label feature.

    Example:

    ```python
    dataset_source("cifar10").spec.num_classes                # 10
    dataset_source("photos/", image_size=64).record["class_names"]
    ```
    """
    if isinstance(dataset, DataSource):
        return dataset
    if isinstance(dataset, str) and dataset in DATASETS:
        return catalogue_source(dataset)
    if isinstance(dataset, str) and dataset in registered_names():
        return registered_source(dataset, dataset_source)
    options = {"num_classes": num_classes, "class_names": class_names,
               "image_size": image_size, "normalize": normalize,
               "augmentation": augmentation}  # fmt: skip
    if isinstance(dataset, str) and dataset.startswith("tfds:"):
        return tfds_source(dataset[len("tfds:") :], data_dir=data_dir, **options)
    if isinstance(dataset, (str, os.PathLike)):
        path = os.fspath(dataset)
        if path.endswith(".npz") and os.path.isfile(path):
            arrays, described = read_npz(path), {"path": os.path.abspath(path)}
            return array_source(arrays, kind="npz", described=described, **options)
        if os.path.isdir(path):
            arrays, described = read_folder(path, validation_split, image_size)
            options["class_names"] = class_names or described["class_names"]
            return array_source(arrays, kind="folder", described=described, **options)
        raise _unknown(path)
    if is_stream_pair(dataset):
        return stream_source(dataset, **options)
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        first = dataset[0]
        if isinstance(first, (tuple, list)) and len(first) == 2:
            arrays = pair_arrays(*dataset)
        else:
            arrays = split_arrays(*dataset, validation_split)
        return array_source(arrays, kind="arrays", **options)
    raise TypeError(
        "`dataset` must be a data set name, 'tfds:NAME', (x, y) arrays, "
        "((x, y), (x_val, y_val)), a (train, validation) pair of tf.data.Dataset "
        "or keras.utils.PyDataset, a directory of class folders or a .npz file. "
        f"Received: dataset={dataset!r} of type {type(dataset).__name__}."
    )


def catalogue_source(name):
    """The `DataSource` of a catalogue name ("cifar10", "digits", ...)."""
    spec = dataset_spec(name)
    record = {"kind": "catalogue", "name": spec.name, "num_classes": spec.num_classes,
              "image_shape": list(spec.image_shape), "mean": list(spec.mean),
              "std": list(spec.std)}  # fmt: skip
    if spec.family != "digits":
        return DataSource(spec, "catalogue", spec.name, record)
    arrays = digits_arrays()  # normalized already
    record["sizes"] = {split: len(y) for split, (_, y) in arrays.items()}
    arrays = InMemoryArrays(arrays, scale=1.0, mean=0.0, std=1.0)
    return in_memory_source(spec, "catalogue", spec.name, record, arrays)


def _unknown(dataset):
    names = sorted(set(DATASETS) | set(registered_names()))
    return ValueError(
        f"Unknown data set name={dataset!r}. Expected a catalogue or registered "
        f"name ({names}), 'tfds:NAME', an existing .npz file or a directory of "
        f"class folders.{did_you_mean(dataset, names)}"
    )
