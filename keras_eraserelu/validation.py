"""Argument checks shared by the public functions, with errors that teach.

Every error names the offending value, what was expected and the valid
choices, with a close-match hint for names.

Example:

```python
check_kinds(["relu", "gelu"])   # ('relu', 'gelu')
check_kinds(["rleu"])           # ValueError: ... Did you mean 'relu'?
```
"""

from __future__ import annotations

import difflib

import keras

from keras_eraserelu.graph.flatgraph import is_graph_model


def did_you_mean(value, choices, count=5):
    """A hint sentence naming the choices closest to `value`, or ""."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], count)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def check_model(model):
    """Raises unless `model` is a built Functional or Sequential Keras model."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Expected a Keras 3 `keras.Model` (Functional or Sequential). "
            f"Received: model={model!r} of type {type(model).__name__}."
        )
    if isinstance(model, keras.Sequential) and not (model.built and model.inputs):
        raise ValueError(
            f"The Sequential model '{model.name}' is not built, so its graph is "
            "unknown. Start it with `keras.Input(shape=...)`, or call "
            "`model.build(input_shape)` before erasing."
        )
    if not is_graph_model(model):
        raise TypeError(
            f"Model '{model.name}' is a subclassed model "
            f"({type(model).__name__}): its call() is Python code, not a layer "
            "graph, so its ReLUs cannot be found or rewritten. Build it with "
            "the functional API or as a `keras.Sequential`, or apply "
            "`erase_relu` to the functional sub-models it is made of."
        )


def check_kinds(kinds):
    """Normalises `kinds` (str or iterable of str) to a tuple of kinds."""
    from keras_eraserelu.graph.sites import _ALIASES, KNOWN_KINDS

    if isinstance(kinds, str):
        kinds = (kinds,)
    result = []
    for kind in kinds:
        if not isinstance(kind, str):
            raise TypeError(f"Each entry of `kinds` must be a str. Received: {kind!r}.")
        kind = _ALIASES.get(kind, kind)
        if kind != "any" and kind not in KNOWN_KINDS:
            raise ValueError(
                f"Unknown activation kind {kind!r} in `kinds`. Expected 'any' or "
                f"one of {list(KNOWN_KINDS)}.{did_you_mean(kind, KNOWN_KINDS)}"
            )
        result.append(kind)
    return tuple(result)


def check_choice(argument, value, choices):
    """Raises a ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"Unknown {argument}={value!r}. Expected one of "
            f"{list(choices)}.{did_you_mean(value, choices)}"
        )
    return value
