"""The model registry: builders are plain functions registered by a decorator.

The function name is the key. `create_model(name, **kwargs)` calls it;
`list_models("cifar_resnet*")` lists names; an unknown name is an error that
lists the close ones.

Example:

```python
@register_model
def my_net(include_top=True, weights=None, ..., erase=None):
    ...

list_models("cifar_resnet*")          # ['cifar_resnet110', 'cifar_resnet1202', ...]
model = create_model("cifar_resnet20", erase="last")
```
"""

from __future__ import annotations

import fnmatch

from keras_eraserelu.core import did_you_mean
from keras_eraserelu.models.hub import hub_preset_name, load_hub_model

_BUILDERS = {}


def register_model(builder):
    """Registers `builder` under its function name; returns it unchanged."""
    name = builder.__name__
    if name in _BUILDERS and _BUILDERS[name] is not builder:
        raise ValueError(f"A model named '{name}' is already registered.")
    _BUILDERS[name] = builder
    return builder


def list_models(pattern="*", exclude=None):
    """Sorted names of the registered models matching a glob pattern.

    Args:
        pattern: str. Glob over model names. Defaults to "*".
        exclude: str or None. Glob of names to leave out.

    Returns:
        A sorted list of str.
    """
    names = [name for name in _BUILDERS if fnmatch.fnmatchcase(name, pattern)]
    if exclude:
        names = [name for name in names if not fnmatch.fnmatchcase(name, exclude)]
    return sorted(names)


def get_builder(name):
    """The builder function registered under `name`."""
    if name not in _BUILDERS:
        raise ValueError(
            f"Unknown model name {name!r}. There are {len(_BUILDERS)} registered "
            f"models; see `list_models()`.{did_you_mean(name, list(_BUILDERS))}"
        )
    return _BUILDERS[name]


def create_model(name, **kwargs):
    """Builds the registered model `name` with the builder's keyword arguments.

    `"hub:PRESET_OR_DIR"` loads a KerasHub preset instead, with the keyword
    arguments of `load_hub_model` (`classes`, `erase`, `input_shape`, ...).

    Example:

    ```python
    model = create_model("cifar_resnet56", erase="last", classes=100)
    backbone = create_model("hub:my_resnet_preset", erase="last")
    ```
    """
    preset = hub_preset_name(name)
    if preset is not None:
        return load_hub_model(preset, **kwargs).model
    return get_builder(name)(**kwargs)
