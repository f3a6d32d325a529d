"""KerasHub presets as models: `create_model("hub:PRESET_OR_DIR", erase="last")`.

A preset is a directory written by `save_to_preset` (offline), or the name
of a built-in KerasHub preset (downloaded by keras-hub). `load_hub_model`
loads it as KerasHub does, erases it if asked (the model keeps its KerasHub
class: `keras_eraserelu.core.hub`), and says, as plain data, what its image
converter does to raw images (size, scale, offset), for a data pipeline that
prepares the images itself.

| `classes` | model |
|---|---|
| None | the preset's task if it has one (`task.json`), else its backbone |
| an int | an `ImageClassifier` of its family: that many classes, a new head |

keras_hub (the `hub` extra: `pip install "keras-eraserelu[hub]"`) is imported
only here, when a preset is loaded.

Example:

```python
backbone.save_to_preset("my_resnet")                  # any KerasHub backbone
model = create_model("hub:my_resnet", erase="last")   # a ResNetBackbone
loaded = load_hub_model("my_resnet", classes=10, erase="last")
loaded.model              # a ResNetImageClassifier with 10 outputs, erased
loaded.preprocessing      # HubPreprocessing(image_size=(224, 224), scale=...)
```
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import keras
import numpy as np

from keras_eraserelu.core import (
    check_bool,
    check_int,
    did_you_mean,
    erase_arguments,
    erase_relu,
    register_kept_classes,
)

HUB_PREFIX = "hub:"


@dataclass(frozen=True)
class HubPreprocessing:
    """What a preset's image converter does to raw images, in order.

    The converter takes raw pixel values, channels last (KerasHub's image
    presets expect [0, 255]: their scale is 1/255 or 1/(255 * std)). It
    resizes them to `image_size` (unless None), then computes
    `pixels * scale + offset` (each step skipped when None).

    Attributes:
        image_size: tuple `(height, width)` or None.
        scale: float, tuple of floats (one per channel) or None.
        offset: float, tuple of floats (one per channel) or None.
        interpolation: str. The resizing method (`"bilinear"`, ...).
        crop_to_aspect_ratio: bool. Crop to the target's aspect ratio
            before resizing, instead of distorting.
        pad_to_aspect_ratio: bool. Pad to it instead.
    """

    image_size: tuple | None
    scale: float | tuple | None
    offset: float | tuple | None
    interpolation: str = "bilinear"
    crop_to_aspect_ratio: bool = True
    pad_to_aspect_ratio: bool = False

    def normalize(self, pixels):
        """`pixels * scale + offset` for a NumPy array of raw pixels (the
        resizing left to the caller), in float32.

        Example:

        ```python
        HubPreprocessing((2, 2), 1 / 255.0, None).normalize(np.full((2, 2, 3), 255))
        ```
        """
        images = np.asarray(pixels, dtype="float32")
        if self.scale is not None:
            images = images * np.asarray(self.scale, dtype="float32")
        if self.offset is not None:
            images = images + np.asarray(self.offset, dtype="float32")
        return images

    def to_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class HubModel:
    """A loaded preset.

    Attributes:
        name: str. The preset's name (a directory's base name).
        model: the KerasHub backbone or task, erased as asked.
        preprocessing: `HubPreprocessing` or None when the preset has no
            image converter.
    """

    name: str
    model: object
    preprocessing: HubPreprocessing | None


def load_hub_model(
    preset,
    *,
    classes=None,
    erase=None,
    input_shape=None,
    load_weights=True,
    preprocessor=True,
):
    """Loads a KerasHub preset, erased as asked.

    Args:
        preset: str or path. A preset directory (`save_to_preset`), a
            built-in KerasHub preset name, or either after `"hub:"`.
        classes: int or None. None: the preset's own task or backbone; an
            int: an ImageClassifier of the preset's family with that many
            classes (a new head). Defaults to None.
        erase: None, a position (`"last"`, `"first"`, `"all"`, an int) or
            site names: the placement for `erase_relu`. Defaults to None.
        input_shape: tuple or None. The backbone's `image_shape`
            (height, width, channels), instead of the preset's.
        load_weights: bool. Load the preset's weights (else random ones).
            Defaults to True.
        preprocessor: bool. Keep the task's preprocessor, which keras-hub
            applies to raw images in `fit`, `evaluate` and `predict`. Pass
            False when a data pipeline prepares the images with
            `preprocessing`. Defaults to True.

    Returns:
        A `HubModel` (`name`, `model`, `preprocessing`).

    Raises:
        ImportError: when keras-hub is not installed.
        TypeError: for arguments of the wrong type.
        ValueError: for a preset keras-hub cannot load, with close names.

    Example:

    ```python
    loaded = load_hub_model("hub:my_resnet", classes=10, erase="last",
                            preprocessor=False)
    loaded.preprocessing.image_size     # resize the data to this
    ```
    """
    directory = _preset_path(preset)
    if classes is not None:
        classes = check_int("classes", classes, minimum=1)
    check_bool("load_weights", load_weights)
    check_bool("preprocessor", preprocessor)
    placement = None if erase is None else erase_arguments(erase)
    keras_hub = _import_keras_hub()
    register_kept_classes()
    _check_preset(keras_hub, directory)
    options = {"load_weights": load_weights}
    if input_shape is not None:
        options["image_shape"] = tuple(input_shape)
    model = _load(keras_hub, directory, classes, preprocessor, options)
    if placement is not None:
        model = erase_relu(model, share_weights=True, **placement)
    name = os.path.basename(os.path.normpath(directory)) or directory
    return HubModel(name, model, _preprocessing(keras_hub, directory, model))


def hub_preset_name(name):
    """The preset after `"hub:"` in `name`, or None when `name` has no such
    prefix."""
    if isinstance(name, (str, os.PathLike)):
        text = os.fspath(name)
        if text.startswith(HUB_PREFIX):
            return text[len(HUB_PREFIX) :]
    return None


def _preset_path(preset):
    if not isinstance(preset, (str, os.PathLike)):
        raise TypeError(
            "`preset` must be a str or path: a KerasHub preset directory or "
            f"name. Received: preset={preset!r} of type {type(preset).__name__}."
        )
    text = os.fspath(preset)
    return hub_preset_name(text) if text.startswith(HUB_PREFIX) else text


def _import_keras_hub():
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            "Loading a KerasHub preset needs keras-hub: "
            '`pip install "keras-eraserelu[hub]"`.'
        ) from error
    return keras_hub


def _check_preset(keras_hub, preset):
    """Raises a ValueError for a preset that is neither a directory with a
    `config.json`, a handle (`kaggle://`, `hf://` ...) nor a built-in name."""
    if os.path.isdir(preset):
        if not os.path.isfile(os.path.join(preset, "config.json")):
            raise ValueError(
                f"The directory {preset!r} is not a KerasHub preset: it has no "
                "config.json. Expected a directory written by `save_to_preset`."
            )
        return
    builtin = list(keras_hub.models.Backbone.presets)
    if "://" in preset or preset in builtin:
        return
    raise ValueError(
        f"Unknown KerasHub preset {preset!r}: not a preset directory, a handle "
        f"(kaggle://, hf://) or one of the {len(builtin)} built-in presets "
        f"(`keras_hub.models.Backbone.presets`).{did_you_mean(preset, builtin)}"
    )


def _load(keras_hub, preset, classes, preprocessor, options):
    models = keras_hub.models
    try:
        if classes is not None:
            if not preprocessor:
                options["preprocessor"] = None
            return models.ImageClassifier.from_preset(
                preset, num_classes=classes, **options
            )
        if os.path.isfile(os.path.join(preset, "task.json")):
            task = _task_class(keras_hub, preset)
            model = task.from_preset(preset, **options)
            if not preprocessor:
                model.preprocessor = None
            return model
        return models.Backbone.from_preset(preset, **options)
    except (ValueError, TypeError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"keras-hub cannot load the preset {preset!r}"
            f"{f' as an ImageClassifier with {classes} classes' if classes else ''}:"
            f" {first}"
        ) from error


def _task_class(keras_hub, preset):
    """The task class a preset's `task.json` names."""
    with open(os.path.join(preset, "task.json"), encoding="utf-8") as handle:
        registered = json.load(handle)["registered_name"]
    task = keras.saving.get_registered_object(registered)
    if task is None:
        raise ValueError(f"no class is registered as {registered!r}")
    return task


def _preprocessing(keras_hub, preset, model):
    converter = getattr(getattr(model, "preprocessor", None), "image_converter", None)
    if converter is None and os.path.isfile(
        os.path.join(preset, "image_converter.json")
    ):
        converter = keras_hub.layers.ImageConverter.from_preset(preset)
    if converter is None:
        return None
    size = converter.image_size
    return HubPreprocessing(
        image_size=None if size is None else tuple(int(s) for s in size),
        scale=_plain(converter.scale),
        offset=_plain(converter.offset),
        interpolation=converter.interpolation,
        crop_to_aspect_ratio=bool(converter.crop_to_aspect_ratio),
        pad_to_aspect_ratio=bool(converter.pad_to_aspect_ratio),
    )


def _plain(value):
    """A converter's scale or offset as a float, a tuple of floats or None."""
    if value is None:
        return None
    array = np.asarray(value, dtype="float64").reshape(-1)
    return float(array[0]) if array.size == 1 else tuple(float(v) for v in array)
