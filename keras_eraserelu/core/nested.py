"""Erasing nested sites through their layer's own configuration.

A nested site is an activation sub-layer that an opaque layer keeps as an
attribute (KerasHub's `InvertedResidualBlock` keeps `activation1` and
`activation2`). Replacing the attribute on a copy would not survive saving:
the layer rebuilds its sub-layers from its config. So a nested site is erased
only through that config: an argument whose value is an activation name
(`activation="relu6"`) set to `"linear"`, the layer rebuilt from the changed
config on the same weights. Each such argument is tried on a copy built from
the config (nothing built, no weights): the sites it turns linear are its
effect. A set of nested sites of one layer can be erased exactly when it is
a union of effects; otherwise the reason says which sites go together, or
that no argument sets the site.

Example:

```python
nested_changes(block, ["activation1", "activation2"])  # {'activation': 'linear'}
nested_changes(block, ["activation2"])   # ValueError: ... together with ...
```
"""

from __future__ import annotations

import keras

from keras_eraserelu.core.sites import activation_of, activation_sublayers

_LINEAR = "linear"


def nested_changes(layer, paths):
    """The config changes of `layer` that make exactly its nested sites
    `paths` linear.

    Args:
        layer: the opaque layer holding the sites.
        paths: iterable of str. Attribute paths of its activation sub-layers
            (`activation_sublayers(layer)`).

    Returns:
        A dict `{argument: "linear"}` for `layer.get_config()`.

    Raises:
        ValueError: when no union of its arguments' effects is exactly
            `paths`, saying which sites go together or that none sets a site.

    Example:

    ```python
    copy_of_block = type(block).from_config(
        {**block.get_config(), **nested_changes(block, ["activation1", "activation2"])}
    )
    ```
    """
    chosen = set(paths)
    effects = _effects(layer)
    keys = [key for key, effect in effects.items() if effect <= chosen]
    covered = set().union(*(effects[key] for key in keys))
    missing = sorted(chosen - covered)
    if not missing:
        return {key: _LINEAR for key in keys}
    path = missing[0]
    together = [(key, effect) for key, effect in effects.items() if path in effect]
    where = f"'{layer.name}' ({type(layer).__name__})"
    if together:
        key, effect = together[0]
        others = sorted(f"{layer.name}/{other}" for other in effect - chosen)
        raise ValueError(
            f"'{layer.name}/{path}' cannot be erased alone: the config of {where} "
            f"sets it together with {others} through `{key}`. Choose them all, "
            "or none."
        )
    raise ValueError(
        f"'{layer.name}/{path}' cannot be erased safely: no argument of the "
        f"config of {where} sets it, so a copy with it erased would not survive "
        "saving (the layer rebuilds its sub-layers from its config)."
    )


def _effects(layer):
    """`{argument: attribute paths it turns linear}` for each argument of the
    config of `layer` that names an activation."""
    config = layer.get_config()
    sites = {path for path, _ in activation_sublayers(layer)}
    effects = {}
    for key, value in config.items():
        if key == "name" or not _names_activation(value):
            continue
        try:
            probe = type(layer).from_config({**config, key: _LINEAR})
        except Exception:  # noqa: BLE001 - an argument that cannot be linear
            continue
        still = {
            path
            for path, sub_layer in activation_sublayers(probe)
            if activation_of(sub_layer)[1] != _LINEAR
        }
        if sites - still:
            effects[key] = sites - still
    return effects


def _names_activation(value):
    if not isinstance(value, str) or value == _LINEAR:
        return False
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        return False
    return True
