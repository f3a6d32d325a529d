"""`model_source`: every `model=` value as one builder of fresh copies.

`train`, `compare` and `tune_placements` accept as `model=`:

| `model` | each run builds |
|---|---|
| a registry name (`list_models()`) | its builder, for the data's shape, classes |
| a keras.applications name ("MobileNetV2") | it, with `weights=None` |
| a builder `f(input_shape=..., classes=..., erase=...)` | what it returns |
| a `keras.Model` (Functional or Sequential) | a copy (its class's `from_config`) |
| a `.keras` file | a copy of the model it holds |
| `"hub:PRESET_OR_DIR"` | the KerasHub preset as an ImageClassifier |

A copy of a user's model is re-initialized from the run's seed
(`reinitialize=True`: its layers' initializers under
`keras.utils.set_random_seed`), or starts from the given weights
(`reinitialize=False`, to compare erasure when fine-tuning); the erased
variant is `erase_relu` of that copy. The user's model is never modified.
A KerasHub preset keeps its class (`keras_eraserelu.core` keeps KerasHub
classes through every rewrite), starts from its own weights unless
`reinitialize=True`, and says which image size and normalization it
expects (`ModelSource.input_shape`, `ModelSource.normalization`).

Example:

```python
source = model_source(my_model, reinitialize=True)
keras.utils.set_random_seed(1)
copy = source.build(input_shape=(32, 32, 3), classes=10, erase="last")
```
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import keras
import numpy as np

from keras_eraserelu.core import (
    check_bool,
    check_model,
    did_you_mean,
    erase_arguments,
    erase_relu,
)
from keras_eraserelu.models.hub import hub_preset_name, load_hub_model
from keras_eraserelu.models.registry import get_builder, list_models


@dataclasses.dataclass(frozen=True, eq=False)
class ModelSource:
    """A resolved `model=`: its name, identity, record and builder.

    Attributes:
        name: str. Names its runs and table rows: the registry or
            keras.applications name, the builder's `__name__`, the model's
            `name`, or the `.keras` file's stem.
        kind: str. "registry", "application", "builder", "keras.Model" or
            "file".
        identity: str. What a run directory records as its model: the name,
            and for a user's model a hash of its architecture (and weights,
            when they are kept).
        record: dict. JSON-ready description (kind, name, path, hashes,
            reinitialize).
        builder: callable(input_shape=, classes=, erase=, **kwargs).
        input_shape: tuple or None. A user's model's fixed input (H, W, C).
        normalization: (mean, std) or None. What the model expects the
            images normalized by, in [0, 1] pixel units (a KerasHub preset's
            image converter); None: the data's own statistics.
    """

    name: str
    kind: str
    identity: str
    record: dict
    builder: object
    input_shape: tuple | None = None
    normalization: tuple | None = None

    def fitted_input(self, image_shape):
        """`(input shape, image size)` for data of `image_shape`: a given
        model's fixed input size wins (the images are resized to it, image
        size not None); else the data's shape as it is (image size None)."""
        shape = tuple(image_shape)
        fixed = self.input_shape
        if (
            fixed
            and len(fixed) == 3
            and None not in fixed[:2]
            and fixed[:2] != shape[:2]
        ):
            return (*fixed[:2], shape[2]), tuple(fixed[:2])
        return shape, None

    def build(self, input_shape, classes, erase=None, **kwargs):
        """A fresh model for images of `input_shape` and `classes` classes,
        with the placement `erase` erased (None: nothing)."""
        return self.builder(input_shape=input_shape, classes=classes, erase=erase,
                            **kwargs)  # fmt: skip


def model_source(model, *, reinitialize=None):
    """Resolves any `model=` value to a `ModelSource`.

    Args:
        model: a registry name, a keras.applications name (or
            "keras.applications.NAME"), a builder callable, a built
            `keras.Model`, a `.keras` path, "hub:PRESET_OR_DIR", or a
            `ModelSource`.
        reinitialize: bool or None. For a user's model, file or preset:
            start each copy from fresh weights drawn under the run's seed
            (True), or from the given weights (False). None: True, except
            for a KerasHub preset (fine-tuning its weights). Defaults to
            None.

    Returns:
        A `ModelSource`.

    Raises:
        TypeError: for a `model` of no accepted kind.
        ValueError: for an unknown name or a file Keras cannot load.

    Example:

    ```python
    model_source("cifar_resnet20").kind               # 'registry'
    model_source("trained.keras", reinitialize=False).record["path"]
    ```
    """
    if reinitialize is not None:
        check_bool("reinitialize", reinitialize)
    if isinstance(model, ModelSource):
        return model
    preset = hub_preset_name(model)
    if preset is not None:
        return _hub_preset(preset, reinitialize is True)
    reinitialize = reinitialize is not False
    if isinstance(model, keras.Model):
        return _user_model(model, reinitialize, kind="keras.Model")
    if isinstance(model, (str, os.PathLike)):
        name = os.fspath(model)
        if name in list_models():
            builder = get_builder(name)
            return ModelSource(name, "registry", name, {"kind": "registry",
                               "name": name}, builder)  # fmt: skip
        application = _application_name(name)
        if application:
            return _application(application)
        if name.endswith(".keras"):
            return _file(name, reinitialize)
        choices = list_models() + application_names()
        raise ValueError(
            f"Unknown model {name!r}: not a registry name (`list_models()`), a "
            "keras.applications name or a .keras file."
            f"{did_you_mean(name, choices)}"
        )
    if callable(model):
        name = getattr(model, "__name__", "custom")
        return ModelSource(name, "builder", name, {"kind": "builder", "name": name},
                           _builder_with_erase(model))  # fmt: skip
    raise TypeError(
        "`model` must be a registry name, a keras.applications name, a builder "
        "callable, a keras.Model or a .keras file. Received: "
        f"model={model!r} of type {type(model).__name__}."
    )


def application_names():
    """The model constructors of `keras.applications` ("ResNet50", ...)."""
    return sorted(
        name
        for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name))
    )


def output_is_probability(model):
    """Whether the model's output is a softmax (else it is taken as logits)."""
    layer = model.layers[-1] if model.layers else None
    while isinstance(layer, keras.Model) and layer.layers:
        layer = layer.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.softmax or (
        getattr(activation, "__name__", "") == "softmax"
    )


def _user_model(model, reinitialize, *, kind, path=None, name=None):
    check_model(model)
    config = json.dumps(model.get_config(), sort_keys=True, default=str)
    architecture = hashlib.sha256(config.encode()).hexdigest()
    record = {"kind": kind, "name": model.name, "path": path,
              "architecture_sha256": architecture,
              "reinitialize": reinitialize}  # fmt: skip
    identity = f"{name or model.name}@{architecture[:12]}"
    if not reinitialize:
        weights = hashlib.sha256()
        for array in model.get_weights():
            weights.update(np.ascontiguousarray(array).tobytes())
        record["weights_sha256"] = weights.hexdigest()
        identity += f"+weights@{record['weights_sha256'][:12]}"
    weights = None if reinitialize else model.get_weights()

    def build(input_shape, classes, erase=None, **kwargs):
        if kwargs:
            raise TypeError(
                f"A given model takes no builder arguments; received {sorted(kwargs)}."
            )
        check_model_fits(model, input_shape, classes)
        # New layers with fresh weights; `from_config` keeps the model's class
        # (clone_model would make a KerasHub backbone a plain Functional).
        copy = type(model).from_config(model.get_config())
        if weights is not None:
            copy.set_weights(weights)
        if erase is not None:
            copy = erase_relu(copy, share_weights=True, **erase_arguments(erase))
        return copy

    return ModelSource(name or model.name, kind, identity, record, build,
                       input_shape=tuple(model.input_shape[1:]))  # fmt: skip


def _hub_preset(preset, reinitialize):
    """A KerasHub preset: each run loads it as an ImageClassifier for the
    data's classes (a new head), its image converter left to the data
    pipeline (its size and normalization become the run's)."""
    probe = load_hub_model(preset, load_weights=False, preprocessor=False)
    record = {"kind": "hub", "preset": preset, "class": type(probe.model).__name__,
              "reinitialize": reinitialize}  # fmt: skip
    preprocessing = probe.preprocessing
    input_shape, normalization = None, None
    if preprocessing is not None:
        record["preprocessing"] = preprocessing.to_dict()
        if preprocessing.image_size is not None:
            input_shape = (*preprocessing.image_size, 3)
        normalization = _as_normalization(preprocessing.scale, preprocessing.offset)

    def build(input_shape, classes, erase=None, **kwargs):
        loaded = load_hub_model(preset, classes=classes, erase=erase,
                                input_shape=input_shape, preprocessor=False,
                                load_weights=not reinitialize, **kwargs)  # fmt: skip
        return loaded.model

    identity = f"hub:{preset}" + ("" if reinitialize else "+weights")
    return ModelSource(f"hub-{probe.name}", "hub", identity, record, build,
                       input_shape, normalization)  # fmt: skip


def _as_normalization(scale, offset):
    """`(mean, std)` in [0, 1] units such that `(u - mean) / std` equals the
    converter's `pixels * scale + offset` of raw pixels `255 * u`."""
    scale = np.atleast_1d(np.asarray(1.0 if scale is None else scale, "float64"))
    offset = np.atleast_1d(np.asarray(0.0 if offset is None else offset, "float64"))
    std = 1.0 / (255.0 * scale)
    mean, std = np.broadcast_arrays(-offset * std, std)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _file(path, reinitialize):
    if not os.path.isfile(path):
        raise ValueError(f"The model file {path!r} does not exist.")
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"Keras cannot load the model file {path!r}: {reason}"
        ) from None
    name = os.path.splitext(os.path.basename(path))[0]
    return _user_model(model, reinitialize, kind="file",
                       path=os.path.abspath(path), name=name)  # fmt: skip


def _application_name(name):
    short = name.removeprefix("keras.applications.")
    return short if short in application_names() else None


def _application(name):
    constructor = getattr(keras.applications, name)

    def build(input_shape, classes, erase=None, **kwargs):
        model = constructor(weights=None, input_shape=tuple(input_shape),
                            classes=classes, **kwargs)  # fmt: skip
        return model if erase is None else erase_relu(
            model, share_weights=True, **erase_arguments(erase))  # fmt: skip

    return ModelSource(name, "application", name, {"kind": "application",
                       "name": f"keras.applications.{name}"}, build)  # fmt: skip


def _builder_with_erase(builder):
    """Registry builders take `erase=`; others get `erase_relu` applied."""
    import inspect

    try:
        takes_erase = "erase" in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        takes_erase = True
    if takes_erase:
        return builder

    def build(input_shape, classes, erase=None, **kwargs):
        model = builder(input_shape=input_shape, classes=classes, **kwargs)
        return model if erase is None else erase_relu(
            model, share_weights=True, **erase_arguments(erase))  # fmt: skip

    build.__name__ = getattr(builder, "__name__", "custom")
    return build


def check_model_fits(model, input_shape, classes):
    """Raises a ValueError unless `model` takes images of `input_shape`
    (None dimensions take any size) and predicts `classes` classes."""
    got_shape = tuple(model.input_shape[1:])
    got_classes = model.output_shape[-1]
    shape = tuple(input_shape)
    fits = len(got_shape) == len(shape) and all(
        g in (None, s) for g, s in zip(got_shape, shape)
    )
    if not fits or got_classes != classes:
        raise ValueError(
            f"Model '{model.name}' does not fit the data: it takes inputs of "
            f"shape {got_shape} and predicts {got_classes} classes; the data "
            f"have images of shape {shape} and {classes} classes. Build the "
            "model for them (or pass image_size= to resize the images)."
        )
