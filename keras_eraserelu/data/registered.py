"""Named data sets a user adds to the catalogue: `register_dataset`.

A registered name works wherever a catalogue name does (`train`, `compare`,
`tune_placements`, `--dataset`). Its source is anything `dataset=` accepts,
or a function of no arguments returning one (called on first use, so that
registering loads nothing). The command line finds registrations in a
module named by `--dataset-module`, or in installed packages that declare
an entry point in the group `keras_eraserelu.datasets`:

```toml
[project.entry-points."keras_eraserelu.datasets"]
leaves = "my_package.data:load_leaves"   # returns (x, y), a folder, ...
```

Example:

```python
register_dataset("leaves", lambda: np.load("leaves.npz"), augmentation="flip")
train("cifar_resnet20", "leaves", epochs=30)
```
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
import threading

from keras_eraserelu.core import check_bool

ENTRY_POINT_GROUP = "keras_eraserelu.datasets"

_REGISTERED = {}
_RESOLVED = {}
_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Registration:
    """A registered name: its source and the `dataset_source` options."""

    name: str
    source: object
    options: dict


def register_dataset(
    name,
    source,
    *,
    num_classes=None,
    class_names=None,
    image_size=None,
    validation_split=0.1,
    normalize="auto",
    augmentation=None,
    overwrite=False,
):
    """Adds a named data set to the catalogue.

    Args:
        name: str. Letters, digits, "_", "-" and "."; not a catalogue name.
        source: what `dataset=` accepts ((x, y) arrays, a folder, a .npz
            path, "tfds:NAME", a tf.data pair), or a function of no arguments
            returning one, called on first use.
        num_classes, class_names, image_size, validation_split, normalize,
            augmentation: as in `dataset_source` (the normalization is the
            mean and std, the augmentation the training policy).
        overwrite: bool. Replace an earlier registration of `name`.
            Defaults to False.

    Returns:
        `name`.

    Raises:
        ValueError: for a name of the catalogue, a bad name, or one registered
            already (without `overwrite`).

    Example:

    ```python
    register_dataset("my_photos", "/data/photos", image_size=64,
                     augmentation="crop_flip")
    ```
    """
    from keras_eraserelu.data.catalogue import DATASETS

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(
            "A data set name must be a non-empty str of letters, digits and "
            f"'_.-'. Received: name={name!r}."
        )
    if name in DATASETS:
        raise ValueError(
            f"{name!r} is a catalogue data set; register yours under another name."
        )
    check_bool("overwrite", overwrite)
    options = {"num_classes": num_classes, "class_names": class_names,
               "image_size": image_size, "validation_split": validation_split,
               "normalize": normalize, "augmentation": augmentation}  # fmt: skip
    with _LOCK:
        if name in _REGISTERED and not overwrite:
            raise ValueError(
                f"A data set named {name!r} is registered already; pass "
                "overwrite=True to replace it."
            )
        _REGISTERED[name] = Registration(name, source, options)
        _RESOLVED.pop(name, None)
    return name


def registered_names():
    """The registered names, those of installed entry points included."""
    _load_entry_points()
    return sorted(_REGISTERED)


def registered_source(name, resolve):
    """The `DataSource` of a registered name, resolved once with `resolve`
    (`dataset_source`), its kind and identity naming the registration."""
    _load_entry_points()
    with _LOCK:
        if name in _RESOLVED:
            return _RESOLVED[name]
        entry = _REGISTERED[name]
    source = entry.source() if callable(entry.source) else entry.source
    resolved = resolve(source, **entry.options)
    spec = dataclasses.replace(resolved.spec, name=name)
    record = {**resolved.record, "registered_as": name}
    digest = record.get("sha256")
    identity = f"{name}:{digest[:12]}" if digest else name  # changed data: new run
    resolved = dataclasses.replace(
        resolved, spec=spec, record=record, identity=identity
    )
    with _LOCK:
        _RESOLVED[name] = resolved
    return resolved


def _load_entry_points():
    """Registers each entry point of `ENTRY_POINT_GROUP` not registered yet:
    its name, and the loaded object as the source (read from the installed
    packages' metadata at each lookup: cheap, and a package installed since
    is found)."""
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        with _LOCK:
            if entry.name not in _REGISTERED:
                _REGISTERED[entry.name] = Registration(
                    entry.name, _lazy(entry), {"validation_split": 0.1}
                )


def _lazy(entry):
    def load():
        loaded = entry.load()
        return loaded() if callable(loaded) else loaded

    return load
