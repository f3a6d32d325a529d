"""Argument checks shared by every layer of the package, with errors that
teach.

Every error names the offending argument and value, what was expected and
the valid choices, with a close-match hint for names. `True` is not an int
here (Python says it is): `is_int` and `is_number` refuse bools, so no
caller writes that guard again.

Example:

```python
check_int("batch_size", 0, minimum=1)   # ValueError: `batch_size` must be an
                                        # int >= 1. Received: batch_size=0.
check_choice("tuner", "randm", ("random", "grid"))  # ... Did you mean 'random'?
```
"""

from __future__ import annotations

import difflib
import numbers

import keras
import numpy as np

from keras_eraserelu.core.flatgraph import is_graph_model


def did_you_mean(value, choices, count=5):
    """A hint sentence naming the choices closest to `value`, or ""."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], count)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def is_int(value):
    """Whether `value` is an integer (Python or NumPy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def is_number(value):
    """Whether `value` is a real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(argument, value, minimum=None, maximum=None):
    """Returns `value` as an int, or raises naming `argument`.

    Raises:
        TypeError: if `value` is not an int (bools are not).
        ValueError: if it lies outside [minimum, maximum].
    """
    expected = _range_text("an int", minimum, maximum)
    if not is_int(value):
        raise TypeError(
            f"`{argument}` must be {expected}. Received: {argument}={value!r} "
            f"of type {type(value).__name__}."
        )
    if (minimum is not None and value < minimum) or (
        maximum is not None and value > maximum
    ):
        raise ValueError(
            f"`{argument}` must be {expected}. Received: {argument}={value!r}."
        )
    return int(value)


def check_number(argument, value, low=None, high=None, *, open_low=False,
                 open_high=False):  # fmt: skip
    """Returns `value` as a float, or raises naming `argument` and the range
    (`open_low` / `open_high` exclude the bounds themselves).

    Raises:
        TypeError: if `value` is not a real number (bools are not).
        ValueError: if it lies outside the range.
    """
    expected = "a number" + _interval_text(low, high, open_low, open_high)
    if not is_number(value):
        raise TypeError(
            f"`{argument}` must be {expected}. Received: {argument}={value!r} "
            f"of type {type(value).__name__}."
        )
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high if open_high else value > high)
    if too_low or too_high or value != value:  # NaN is in no range
        raise ValueError(
            f"`{argument}` must be {expected}. Received: {argument}={value!r}."
        )
    return float(value)


def check_bool(argument, value):
    """Returns `value` as a bool, or raises a TypeError naming `argument`."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"`{argument}` must be a bool. Received: {argument}={value!r} of type "
            f"{type(value).__name__}."
        )
    return bool(value)


def check_type(argument, value, expected):
    """Returns `value`, or raises a TypeError naming `argument`, unless it is an
    instance of the class `expected` (for ints, numbers and bools, which must
    refuse bools or accept NumPy scalars, use `check_int`, `check_number`,
    `check_bool`)."""
    if not isinstance(value, expected):
        raise TypeError(
            f"`{argument}` must be a {expected.__name__}. Received: "
            f"{argument}={value!r} of type {type(value).__name__}."
        )
    return value


def _range_text(kind, minimum, maximum):
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


def _interval_text(low, high, open_low, open_high):
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if open_low else '>='} {low}"
    if low is None:
        return f" {'<' if open_high else '<='} {high}"
    return f" in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"


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


def check_choice(argument, value, choices):
    """Returns `value` if it is one of `choices`; raises a TypeError for a
    value that is not a str when the choices are names, else a ValueError."""
    if all(isinstance(c, str) for c in choices) and not isinstance(value, str):
        raise TypeError(
            f"`{argument}` must be a str, one of {list(choices)}. Received: "
            f"{argument}={value!r} of type {type(value).__name__}."
        )
    if value not in choices:
        raise ValueError(
            f"Unknown {argument}={value!r}. Expected one of "
            f"{list(choices)}.{did_you_mean(value, choices)}"
        )
    return value
