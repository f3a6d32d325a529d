"""The real tfds builders of the catalogue, offline: no mock_data.

Every test blocks the network (`socket.getaddrinfo`, `socket.create_connection`
and `socket.socket.connect` raise and count their calls), builds the data
set's real builder in an empty `data_dir` and runs the package's load path up
to the download step. So the import chain that preparing needs is proven
whole (in a venv without `importlib_resources` these tests fail with
ModuleNotFoundError), no test reaches the network, and the offline error comes
after a handful of connection attempts instead of tfds's minutes of retries.
"""

import importlib.metadata
import io
import re
import socket
import tarfile
import threading

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import downloader

from keras_eraserelu.data import catalogue as datasets
from keras_eraserelu.data.pipelines import load_dataset

DOWNLOADED = sorted(
    name for name, spec in datasets.DATASETS.items()
    if spec.family not in ("digits", "imagenet")
)  # fmt: skip
TFDS_NAMES = DOWNLOADED + ["imagenet2012"]

# Modules that preparing a real data set imports and that tensorflow-datasets
# 4.9.10 does not install itself (it declares importlib_resources only for
# Python < 3.9, tensorflow/datasets#11212); scipy reads svhn_cropped's .mat.
NEEDED = {"importlib_resources": "importlib-resources", "scipy": "scipy"}


@pytest.fixture
def offline(monkeypatch):
    """Blocks every connection; returns the list of this test's attempts.

    A thread that was running before the test (a probe, or a tfds download
    thread still retrying the file of an earlier test) is blocked but not
    counted: only this test's own thread and the threads it starts are.
    """
    attempts = []
    main = threading.current_thread()
    earlier = {t for t in threading.enumerate() if t is not main}

    def blocked(*args, **kwargs):
        if threading.current_thread() not in earlier:
            attempts.append(args[:2])
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket.socket, "connect", blocked)
    return attempts


def _load(name, tmp_path, **kwargs):
    return load_dataset(name, "train", 2, data_dir=str(tmp_path), **kwargs)


def test_catalogue_is_covered():
    assert set(TFDS_NAMES) == set(datasets.DATASETS) - {"digits"}


@pytest.mark.parametrize("name", TFDS_NAMES)
def test_real_builder_is_not_prepared(name, tmp_path):
    builder = tfds.builder(name, data_dir=str(tmp_path))
    assert type(builder).__module__.startswith("tensorflow_datasets.")
    assert not builder.is_prepared()
    assert builder.url_infos  # the checksums file that the probe reads


@pytest.mark.parametrize("name", DOWNLOADED)
def test_offline_load_fails_at_once(name, tmp_path, offline):
    builder = tfds.builder(name, data_dir=str(tmp_path))
    with pytest.raises(ValueError) as info:
        _load(name, tmp_path)
    message = str(info.value)
    assert f"Data set '{name}' is not prepared in {builder.data_dir}" in message
    assert f"data_dir={str(tmp_path)!r}" in message
    assert "no connection to " in message
    assert f"`tfds build {name} --data_dir=DIR`" in message
    assert "copy DIR to this machine" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    hosts = {url.split("/")[2] for url in builder.url_infos}
    assert 1 <= len(offline) <= len(hosts)  # one probe per host, no retries
    assert not builder.is_prepared()


def test_any_tfds_name_offline_fails_at_once_naming_the_build_command(
    tmp_path, offline
):
    """`dataset="tfds:NAME"` outside the catalogue takes the same path."""
    with pytest.raises(ValueError) as info:
        _load("tfds:cmaterdb", tmp_path)
    message = str(info.value)
    assert "Data set 'tfds:cmaterdb' is not prepared" in message
    assert "`tfds build cmaterdb --data_dir=DIR`" in message
    assert len(offline) == 1  # one probe, no retries


@pytest.mark.parametrize("name", DOWNLOADED)
def test_download_step_is_reached(name, tmp_path, offline, monkeypatch):
    """With the probe passing, tfds's own download fails: the same message.

    Runs the builder's real `download_and_prepare` up to its requests (the
    download manager and the builder's split generators are imported and
    run); tfds's retries are turned off here so that the test does not wait.
    """
    monkeypatch.setattr(datasets, "_unreachable_hosts", lambda urls: {})
    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)
    downloader.get_downloader.cache_clear()  # its download threads: this test's
    with pytest.raises(ValueError, match=r"could not be downloaded: Connection"):
        _load(name, tmp_path)
    assert 1 <= len(offline) <= 4  # one per file of the data set


def test_proxy_is_probed_instead_of_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert datasets._probe_addresses([url, url]) == [("proxy.example", 3128)]
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("https_proxy", raising=False)
    assert datasets._probe_addresses([url]) == [("www.cs.toronto.edu", 443)]


def test_probe_that_hangs_is_cut_short(monkeypatch):
    import threading

    released = threading.Event()

    def hang(address, timeout=None):  # a DNS lookup that ignores the timeout
        released.wait(30)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    unreachable = datasets._unreachable_hosts(["http://a.example/x"], timeout=0.2)
    released.set()
    assert unreachable == {("a.example", 80): "no answer within 0.2 s"}


def test_imagenet_without_manual_dir(tmp_path, offline):
    with pytest.raises(ValueError) as info:
        _load("imagenet2012", tmp_path)
    message = str(info.value)
    assert "Data set 'imagenet2012' is not prepared in " in message
    assert f"data_dir={str(tmp_path)!r}" in message
    assert re.search(r"ILSVRC2012_img_train\.tar.*`manual_dir=`", message)
    assert "tfds build imagenet2012 --data_dir=DIR --manual_dir=TARS" in message
    assert "Received: manual_dir=None." in message
    assert offline == []


def _tar(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members:
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def test_imagenet_prepares_offline_from_manual_dir(tmp_path, offline):
    """The whole prepare path of ImageNet runs with the network blocked."""
    jpeg = tf.io.encode_jpeg(tf.zeros((8, 8, 3), tf.uint8)).numpy()
    builder = tfds.builder("imagenet2012", data_dir=str(tmp_path / "data"))
    synset = builder.info.features["label"].names[0]
    manual = tmp_path / "tars"
    manual.mkdir()
    inner = _tar([(f"{synset}_1.JPEG", jpeg)])
    (manual / "ILSVRC2012_img_train.tar").write_bytes(_tar([(f"{synset}.tar", inner)]))
    val = _tar([("ILSVRC2012_val_00000001.JPEG", jpeg)])
    (manual / "ILSVRC2012_img_val.tar").write_bytes(val)
    images, labels = next(
        iter(
            load_dataset(
                "imagenet2012",
                "train",
                1,
                data_dir=str(tmp_path / "data"),
                manual_dir=str(manual),
                image_size=32,
            )
        )
    )
    assert images.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(labels, [0])
    assert offline == []


@pytest.mark.parametrize("module", sorted(NEEDED))
def test_needed_modules_are_declared(module):
    requires = importlib.metadata.requires("keras-eraserelu") or []
    names = {
        re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower().replace("_", "-")
        for line in requires
        if "extra ==" not in line
    }
    assert NEEDED[module] in names
    __import__(module)


class TinyShapes(tfds.core.GeneratorBasedBuilder):
    """A real tfds builder prepared from local data (no download): its
    features have other names than "image" and "label"."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = {
            "picture": tfds.features.Image(shape=(6, 6, 3)),
            "kind": tfds.features.ClassLabel(names=["a", "b", "c"]),
            "note": tfds.features.Text(),
        }
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict(features)
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 30),
                "test": self._generate_examples(1, 9)}  # fmt: skip

    def _generate_examples(self, seed, count):
        for index, image in enumerate(_tiny_images(seed, count)):
            yield index, {"picture": image, "kind": index % 3, "note": "x"}


def _tiny_images(seed, count):
    return np.random.default_rng(seed).integers(0, 256, (count, 6, 6, 3), "uint8")


def test_a_prepared_tfds_data_set_is_normalized_by_cached_statistics(tmp_path):
    from keras_eraserelu.data import dataset_source

    source = dataset_source("tfds:tiny_shapes", data_dir=str(tmp_path))
    assert source.record["sizes"] == {"train": 30, "test": 9}
    assert source.record["class_names"] == ["a", "b", "c"]
    pixels = _tiny_images(0, 30) / 255.0  # the NumPy reference
    np.testing.assert_allclose(source.spec.mean, pixels.mean((0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(source.spec.std, pixels.std((0, 1, 2)), rtol=1e-6)
    [cache] = list(tmp_path.glob("tiny_shapes/1.0.0/eraserelu_stats.json"))
    cache.write_text('{"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}')
    again = dataset_source("tfds:tiny_shapes", data_dir=str(tmp_path))
    assert again.spec.mean == (0.5,) * 3  # read from the cache, not recomputed
    images, labels = next(iter(load_dataset(again, "test", 9, shuffle=False)))
    expected = (_tiny_images(1, 9) / 255.0 - 0.5) / 0.25
    np.testing.assert_allclose(np.sort(images.numpy().ravel()),
                               np.sort(expected.ravel()), atol=1e-5)  # fmt: skip
    assert sorted(labels.numpy().tolist()) == sorted([i % 3 for i in range(9)])
