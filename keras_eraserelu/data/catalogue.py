"""The supported data sets: their specs, split names and raw examples.

`DATASETS` maps each name to a `DatasetSpec`: number of classes, image
shape, split names, per-channel normalization constants and the
augmentation policies that make sense for the data (no flips for digits).
`resolve_split` and `resolve_augment` turn the words users pass ("test",
True) into what the spec means. The readers give the raw examples that
`keras_eraserelu.data.pipelines` turns into pipelines: tfds builders (prepared on
first use; ImageNet from the tar files in `manual_dir`; offline, a data set
that is not prepared stops at once with a ValueError that says where tfds
looks for it and how to provide it) and "digits", the
real 8x8 digits data set that scikit-learn ships (1,797 images, offline),
split 80%/20% with stratification; it is the default for demos and tests on
machines without network.

Example:

```python
spec = dataset_spec("imagenet2012")
spec.num_classes                   # 1000
resolve_split(spec, "test")        # 'validation'
resolve_augment(spec, None, True)  # 'resized_crop_flip'
```
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import threading
import time
import urllib.parse

from keras_eraserelu.core import did_you_mean
from keras_eraserelu.core import tensorflow as tf

# Per-channel mean and standard deviation of the training pixels in [0, 1].
# Not recomputed here (no network): CIFAR and SVHN are the values that the
# CIFAR/SVHN training code built on torchvision commonly uses (std over all
# training pixels of a channel, not the mean of per-image stds); MNIST is
# PyTorch's MNIST example; ImageNet is torchvision's pretrained-weights
# transform. Digits: computed with NumPy on the 1,437 training images of the
# split of `digits_arrays` (tests/test_data.py recomputes them).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
SVHN_MEAN, SVHN_STD = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DIGITS_MEAN, DIGITS_STD = (0.3054,), (0.3761,)

DIGITS_TEST_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the pipelines need to know about one data set.

    Args:
        name: str. The tfds name, or "digits".
        num_classes: int. Number of labels.
        image_shape: tuple. (H, W, C) of the model input after preprocessing.
        train_split: str. The split the word "train" means.
        test_split: str. The split the word "test" means.
        family: str. "cifar", "svhn", "mnist", "imagenet" or "digits".
        mean: tuple. Per-channel mean of the [0, 1] pixels.
        std: tuple. Per-channel standard deviation of the [0, 1] pixels.
        splits: tuple. Every split name of the data set.
        augmentation: str. The policy of the paper's recipe for training
            (`keras_eraserelu.data.augment`), used when `augment` is True.
        augmentations: tuple. The policies that make sense for this data
            (no flips for digits).
        padding: int. Pixels padded per side by the "crop" policies.
        tfds_name: str or None. The tfds builder's name when it differs
            from `name` (a "tfds:NAME" source). Defaults to `name`.
        image_feature: str. The tfds feature holding the image.
        label_feature: str. The tfds feature holding the label.
        fixed_size: bool. Whether the images are read at `image_shape`
            (False: of varying or another size, always resized to it).
        class_names: tuple. The label names, when known.
    """

    name: str
    num_classes: int
    image_shape: tuple
    train_split: str
    test_split: str
    family: str
    mean: tuple = ()
    std: tuple = ()
    splits: tuple = ("train", "test")
    augmentation: str = "none"
    augmentations: tuple = ("none",)
    padding: int = 0
    tfds_name: str | None = None
    image_feature: str = "image"
    label_feature: str = "label"
    fixed_size: bool = True
    class_names: tuple = ()


# The augmentation policies of data that must not be mirrored (digits, house
# numbers) and of data that may be; `numpy_dataset` accepts the latter.
AUGMENTATIONS_NO_FLIP = ("none", "crop")
AUGMENTATIONS_WITH_FLIP = ("none", "flip", "crop", "crop_flip")

DATASETS = {
    spec.name: spec
    for spec in (
        # He et al. 2016: 4-pixel pad, random 32x32 crop, horizontal flip.
        DatasetSpec("cifar10", 10, (32, 32, 3), "train", "test", "cifar",
                    CIFAR10_MEAN, CIFAR10_STD, augmentation="crop_flip",
                    augmentations=AUGMENTATIONS_WITH_FLIP, padding=4),
        DatasetSpec("cifar100", 100, (32, 32, 3), "train", "test", "cifar",
                    CIFAR100_MEAN, CIFAR100_STD, augmentation="crop_flip",
                    augmentations=AUGMENTATIONS_WITH_FLIP, padding=4),
        # The paper trains SVHN without augmentation; digits must not flip.
        DatasetSpec("svhn_cropped", 10, (32, 32, 3), "train", "test", "svhn",
                    SVHN_MEAN, SVHN_STD, splits=("train", "test", "extra"),
                    augmentations=AUGMENTATIONS_NO_FLIP, padding=4),
        DatasetSpec("fashion_mnist", 10, (28, 28, 1), "train", "test", "mnist",
                    FASHION_MNIST_MEAN, FASHION_MNIST_STD,
                    augmentations=AUGMENTATIONS_WITH_FLIP, padding=2),
        DatasetSpec("mnist", 10, (28, 28, 1), "train", "test", "mnist",
                    MNIST_MEAN, MNIST_STD, augmentations=AUGMENTATIONS_NO_FLIP,
                    padding=2),
        DatasetSpec("imagenet2012", 1000, (224, 224, 3), "train", "validation",
                    "imagenet", IMAGENET_MEAN, IMAGENET_STD,
                    splits=("train", "validation"),
                    augmentation="resized_crop_flip",
                    augmentations=("none", "resized_crop_flip")),
        # Random shift of up to 1 pixel, no flip.
        DatasetSpec("digits", 10, (8, 8, 1), "train", "test", "digits",
                    DIGITS_MEAN, DIGITS_STD, augmentation="crop",
                    augmentations=AUGMENTATIONS_NO_FLIP, padding=1),
    )
}  # fmt: skip


def dataset_spec(name):
    """The `DatasetSpec` of a supported data set.

    Args:
        name: str. One of `DATASETS`.

    Returns:
        A `DatasetSpec`.

    Raises:
        TypeError: if `name` is not a str.
        ValueError: if `name` is not supported, naming close matches.

    Example:

    ```python
    dataset_spec("cifar100").num_classes   # 100
    ```
    """
    if isinstance(name, DatasetSpec):
        return name
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str. Received: name={name!r}.")
    if name not in DATASETS:
        raise ValueError(
            f"Unknown data set name={name!r}. Expected one of "
            f"{sorted(DATASETS)}.{did_you_mean(name, DATASETS)}"
        )
    return DATASETS[name]


def resolve_split(spec, split):
    """Maps the words "train"/"test" through `spec`; checks the split names."""
    if not isinstance(split, str):
        raise TypeError(f"`split` must be a str. Received: split={split!r}.")
    words = {"train": spec.train_split, "test": spec.test_split}
    parts = []
    for part in split.split("+"):
        part = part.strip()
        word, bracket, rest = part.partition("[")
        word = words.get(word.strip(), word.strip())
        if word not in spec.splits:
            choices = sorted(set(spec.splits) | set(words))
            raise ValueError(
                f"Unknown split {part!r} in split={split!r} for "
                f"'{spec.name}'. Expected a tfds split string over "
                f"{choices}, such as 'train' or 'train[:90%]'."
                f"{did_you_mean(word, choices)}"
            )
        parts.append(word + bracket + rest)
    return "+".join(parts)


def is_training_split(spec, split):
    """True unless `split` reads from the spec's test split."""
    names = {part.partition("[")[0].strip() for part in split.split("+")}
    return spec.test_split not in names


def resolve_augment(spec, augment, training):
    """The augmentation policy (a str) that `augment` means for `spec`."""
    if augment is None:
        augment = training
    if augment is True:
        return spec.augmentation
    if augment is False:
        return "none"
    if not isinstance(augment, str):
        raise TypeError(
            "`augment` must be None, a bool or a policy name (str). "
            f"Received: augment={augment!r}."
        )
    if augment not in spec.augmentations:
        reason = ""
        if "flip" in augment and spec.family in ("svhn", "mnist", "digits"):
            reason = " (a mirrored digit is not the same digit)"
        raise ValueError(
            f"Unknown augment={augment!r} for '{spec.name}'{reason}. Expected "
            f"None, True, False or one of {list(spec.augmentations)}."
            f"{did_you_mean(augment, spec.augmentations)}"
        )
    return augment


@functools.lru_cache(maxsize=1)
def digits_arrays():
    """sklearn's digits as normalized float32 arrays, split 80%/20%.

    Returns:
        A dict {"train": (x, y), "test": (x, y)} with x (N, 8, 8, 1) and y
        int32; the split is `train_test_split(test_size=0.2, random_state=0,
        stratify=labels)`: 1,437 and 360 images.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images[..., None] / 16.0 - DIGITS_MEAN) / DIGITS_STD
    x_train, x_test, y_train, y_test = train_test_split(
        images.astype("float32"),
        digits.target.astype("int32"),
        test_size=DIGITS_TEST_FRACTION,
        random_state=0,
        stratify=digits.target,
    )
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


def read_tfds(spec, split, shuffle, seed, data_dir, manual_dir, input_context):
    """Reads a tfds data set, preparing it first if `data_dir` lacks it.

    Preparing downloads the raw files (ImageNet reads them from `manual_dir`
    instead). Offline, tensorflow-datasets 4.9.10 would retry each file for
    minutes: its downloader mounts a urllib3 `Retry(total=10,
    backoff_factor=0.2)` (`core/download/downloader.py`, `MAX_RETRIES`) and
    neither `DownloadConfig` nor an environment variable shortens it. So
    before preparing, `_unreachable_hosts` opens one TCP connection to each
    host of the data set's registered download URLs (`builder.url_infos`,
    from the checksums file that tfds ships) or to the proxy that `requests`
    would use for it, all within `_PROBE_TIMEOUT_S` seconds; a host that
    does not answer stops the load at once with one ValueError that says
    where tfds looks for the data and how to provide it. A download that
    still fails after the probe (the host answered, the file did not come)
    ends in the same ValueError, with the short reason. Under
    `tfds.testing.mock_data` (its `download_and_prepare` is a no-op) nothing
    is probed.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(spec.tfds_name or spec.name, data_dir=data_dir)
    if not builder.is_prepared():
        prepare_tfds(spec, builder, manual_dir)
    read_config = tfds.ReadConfig(
        input_context=input_context, shuffle_seed=seed, try_autocache=False
    )
    decoders = None
    if spec.family == "imagenet":  # decode in the parallel map, crop first
        decoders = {spec.image_feature: tfds.decode.SkipDecoding()}
    examples = builder.as_dataset(
        split=split,
        shuffle_files=shuffle,
        read_config=read_config,
        decoders=decoders,
    )
    keys = (spec.image_feature, spec.label_feature)
    return examples.map(lambda features: tuple(features[key] for key in keys))


# Seconds the probe waits for all download hosts together (DNS included).
_PROBE_TIMEOUT_S = 5.0
# The name of the probe's threads (one may outlive its call: see below).
PROBE_THREAD = "eraserelu-download-probe"


def prepare_tfds(spec, builder, manual_dir):
    """Downloads and prepares a tfds data set (ImageNet: from `manual_dir`),
    or raises the ValueError that says how to provide it offline."""
    import requests
    import tensorflow_datasets as tfds

    if spec.family == "imagenet":
        _check_manual_dir(spec, manual_dir, builder)
    elif _downloads_for_real(builder):
        unreachable = _unreachable_hosts(list(builder.url_infos or ()))
        if unreachable:
            (host, port), error = next(iter(unreachable.items()))
            raise ValueError(
                _not_prepared_message(
                    spec, builder, f"no connection to {host}:{port} ({error})"
                )
            ) from None
    try:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
    except (requests.exceptions.RequestException, tfds.download.DownloadError) as error:
        reason = f"{type(error).__name__}: {error}"
        raise ValueError(_not_prepared_message(spec, builder, reason)) from None


def _downloads_for_real(builder):
    """False under `tfds.testing.mock_data`, whose no-op prepare needs no host."""
    prepare = type(builder).download_and_prepare
    return not getattr(prepare, "__module__", "").startswith(
        "tensorflow_datasets.testing"
    )


def _not_prepared_message(spec, builder, reason):
    tfds_name = spec.tfds_name or spec.name
    return (
        f"Data set '{spec.name}' is not prepared in {builder.data_dir} and "
        f"could not be downloaded: {reason}. tensorflow-datasets looks for it "
        f"in data_dir={os.fspath(builder.data_dir_root)!r} (`data_dir=`, "
        "`--data-dir`; defaults to $TFDS_DATA_DIR or ~/tensorflow_datasets). "
        "Connect to the network and retry, or prepare it on a machine that "
        f"has network: run `tfds build {tfds_name} --data_dir=DIR` there, "
        "copy DIR to this machine and pass it as `data_dir=`."
    )


def _probe_addresses(urls):
    """The (host, port) a download of each URL connects to first."""
    import requests

    addresses = []
    for url in urls:
        proxy = requests.utils.select_proxy(
            url, requests.utils.get_environ_proxies(url)
        )
        parts = urllib.parse.urlsplit(proxy or url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue  # a file system path (gs://, local): nothing to probe
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if (parts.hostname, port) not in addresses:
            addresses.append((parts.hostname, port))
    return addresses


def _unreachable_hosts(urls, timeout=_PROBE_TIMEOUT_S):
    """Maps each (host, port) that does not answer within `timeout` to why.

    One thread per address, so that a DNS lookup that hangs (a resolver
    that cannot be reached ignores the socket timeout) cannot delay the
    answer beyond `timeout`; such a thread is a daemon and left behind.
    """
    addresses = _probe_addresses(urls)
    errors = {}

    def probe(address):
        try:
            socket.create_connection(address, timeout=timeout).close()
        except OSError as error:
            errors[address] = f"{type(error).__name__}: {error}"

    threads = [
        threading.Thread(target=probe, args=(address,), daemon=True, name=PROBE_THREAD)
        for address in addresses
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for address, thread in zip(addresses, threads):
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            errors.setdefault(address, f"no answer within {timeout:g} s")
    return {address: errors[address] for address in addresses if address in errors}


def _check_manual_dir(spec, manual_dir, builder):
    if manual_dir is None or not tf.io.gfile.isdir(manual_dir):
        raise ValueError(
            f"Data set '{spec.name}' is not prepared in {builder.data_dir} and "
            "cannot be downloaded: its license asks you to get the files "
            "yourself. Download ILSVRC2012_img_train.tar and "
            "ILSVRC2012_img_val.tar from https://image-net.org into one folder "
            "and pass it as `manual_dir=` (`--manual-dir`; once: tfds then "
            "prepares the data in data_dir), or pass a data_dir where it is "
            "prepared already (`tfds build imagenet2012 --data_dir=DIR "
            "--manual_dir=TARS` on another machine, then copy DIR). "
            "tensorflow-datasets looks for it in "
            f"data_dir={os.fspath(builder.data_dir_root)!r}. "
            f"Received: manual_dir={manual_dir!r}."
        )
