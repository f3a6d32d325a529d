"""keras.applications' builder arguments, written once for every family.

A family declares what its variants share (the function that builds the
graph, its own options, default classes and input size) as a `Family`; each
variant is then one line, as in timm (`@register_model def resnet18(**kwargs)`)
and keras-hub's preset tables. `Family.variant` makes a registered builder with
a real signature (`include_top, weights, input_tensor, input_shape, pooling,
classes, classifier_activation, name, erase`, then the family's options), a
generated docstring listing every argument, and the keras.applications
arguments checked before any layer is built. The family's `build` receives
those arguments as one `Application` and its own options as keywords.

Example:

```python
_FAMILY = Family(build=_resnet, classes=1000, input_shape=(224, 224, 3),
                 min_size=32, options=(ZERO_INIT_RESIDUAL,))
resnet18 = _FAMILY.variant("resnet18", "ResNet-18.", blocks_per_stage=(2, 2, 2, 2))
resnet18(classes=10, zero_init_residual=True)   # a keras.Model
```
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from keras_eraserelu.models.common import (
    check_builder_args,
    classifier_head,
    finish_model,
    model_input,
)
from keras_eraserelu.models.registry import register_model

REQUIRED = inspect.Parameter.empty

# What a family's builders take by default, per kind of data (`Family(...,
# **CIFAR_INPUT)`): classes, input shape, smallest height and width.
CIFAR_INPUT = {"classes": 10, "input_shape": (32, 32, 3), "min_size": 8}
IMAGENET_INPUT = {"classes": 1000, "input_shape": (224, 224, 3), "min_size": 32}


@dataclasses.dataclass(frozen=True)
class Option:
    """One builder argument: its name, default and `Args:` entry.

    `doc` is `"type. Description."`; `{default}` in it stands for the
    default, and `{classes}`, `{input_shape}`, `{min_size}`, `{top}` for the
    family's values.
    """

    name: str
    default: Any = REQUIRED
    doc: str = ""


# The keras.applications arguments, in their order, then `erase`.
APPLICATION_OPTIONS = (
    Option("include_top", True, "bool. {top} Defaults to {default}."),
    Option(
        "weights",
        None,
        "str or None. Path of a local `.weights.h5` file. Defaults to None "
        "(random initialisation).",
    ),
    Option(
        "input_tensor", None, "KerasTensor or None. Build the model on this tensor."
    ),
    Option(
        "input_shape",
        None,
        "tuple or None. Defaults to `{input_shape}`; height and width at least "
        "{min_size}.",
    ),
    Option("pooling", None, 'None, "avg" or "max". Feature pooling without the top.'),
    Option("classes", 10, "int. Number of classes. Defaults to {default}."),
    Option(
        "classifier_activation",
        "softmax",
        "str, callable or None. Activation of the classifier. Defaults to {default}.",
    ),
    Option("name", None, "str. Model name. Defaults to {default}."),
    Option(
        "erase",
        None,
        'None, "last", "first", "all", int or list of names. Which ReLUs to '
        'erase (see `keras_eraserelu.erase_relu`); "last" is EraseReLU. '
        "Defaults to None.",
    ),
)
APPLICATION_NAMES = tuple(option.name for option in APPLICATION_OPTIONS)


@dataclasses.dataclass(frozen=True)
class Application:
    """A builder's keras.applications arguments, with the family's input
    defaults: what every family's `build` starts and ends with."""

    include_top: bool
    weights: Any
    input_tensor: Any
    input_shape: Any
    pooling: Any
    classes: int
    classifier_activation: Any
    name: Any
    erase: Any
    default_shape: tuple
    min_size: int

    def check(self):
        """Raises for a bad keras.applications argument."""
        check_builder_args(
            self.include_top,
            self.weights,
            self.pooling,
            self.classes,
            self.classifier_activation,
        )

    def inputs(self):
        """`(inputs, x)`: the graph's input and the tensor to build on."""
        return model_input(
            self.input_tensor, self.input_shape, self.default_shape, self.min_size
        )

    def head(self, x, dropout=0.0):
        """Global pooling and the classifier (or the pooled features)."""
        return classifier_head(
            x,
            self.include_top,
            self.pooling,
            self.classes,
            self.classifier_activation,
            dropout=dropout,
        )

    def finish(self, inputs, outputs, name=None):
        """The `keras.Model`, erased as asked, with its weights file loaded;
        `name` is used when the caller gave none."""
        return finish_model(
            inputs,
            outputs,
            self.name or name,
            weights=self.weights,
            erase=self.erase,
        )


@dataclasses.dataclass(frozen=True)
class Family:
    """What the variants of a model family share.

    Args:
        build: callable. `build(app, **architecture, **options)` returns the
            `keras.Model`; `app` is an `Application`.
        classes: int. Default number of classes.
        input_shape: tuple. Default input shape.
        min_size: int. Smallest height and width accepted.
        options: tuple of `Option`. The family's own keyword arguments,
            after keras.applications' ones.
        top: str. What `include_top` adds, for the docstring.
        intro: str. A paragraph after each variant's summary line.
        example: str. The docstring's example line; `{key}` is the name.
    """

    build: Callable
    classes: int
    input_shape: tuple
    min_size: int
    options: tuple = ()
    top: str = "Global average pooling and the classifier."
    intro: str = ""
    example: str = 'model = create_model("{key}", erase="last", classes=100)'

    def replace(self, **changes):
        """This family with some fields changed (for a variant that differs)."""
        return dataclasses.replace(self, **changes)

    def variant(self, key, summary, defaults=None, **architecture):
        """A registered builder named `key`: keras.applications' arguments
        (`name` defaulting to `key`), then the family's options.

        Args:
            key: str. The registry name and the function name.
            summary: str. The docstring's first line.
            defaults: dict or None. Other defaults for the family's options.
            **architecture: fixed keyword arguments of `build` (depth,
                widths, blocks, ...).
        """
        defaults = {"name": key, **(defaults or {})}
        options = APPLICATION_OPTIONS + tuple(self.options)
        builder = self._builder(key, summary, options, defaults, architecture)
        return register_model(builder)

    def generic(self, key, summary, leading, name_doc):
        """An unregistered builder for sweeps: the `leading` options (depth,
        width, ...) first, then keras.applications' arguments with `name`
        None (the `build` names the model)."""
        options = tuple(leading) + APPLICATION_OPTIONS + tuple(self.options)
        options = tuple(
            dataclasses.replace(o, doc=name_doc) if o.name == "name" else o
            for o in options
        )
        return self._builder(key, summary, options, {}, {})

    def _builder(self, key, summary, options, defaults, architecture):
        defaults = {"classes": self.classes, **defaults}
        unknown = set(defaults) - {option.name for option in options}
        if unknown:
            raise ValueError(f"{key}: defaults for unknown arguments {unknown}.")
        options = [
            dataclasses.replace(o, default=defaults.get(o.name, o.default))
            for o in options
        ]
        signature = inspect.Signature(
            [
                inspect.Parameter(
                    o.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=o.default
                )
                for o in options
            ]
        )
        build = functools.partial(self.build, **architecture)

        def builder(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{key}() {error}") from None
            bound.apply_defaults()
            given = dict(bound.arguments)
            app = Application(
                **{name: given.pop(name) for name in APPLICATION_NAMES},
                default_shape=self.input_shape,
                min_size=self.min_size,
            )
            app.check()
            return build(app, **given)

        builder.__name__ = builder.__qualname__ = key
        builder.__module__ = getattr(self.build, "__module__", __name__)
        builder.__signature__ = signature
        builder.__doc__ = self._doc(key, summary, options)
        return builder

    def _doc(self, key, summary, options):
        values = {
            "classes": self.classes,
            "input_shape": self.input_shape,
            "min_size": self.min_size,
            "top": self.top,
        }
        entries = [
            textwrap.fill(
                f"{o.name}: " + o.doc.format(default=_shown(o.default), **values),
                width=78,
                initial_indent=" " * 8,
                subsequent_indent=" " * 12,
            )
            for o in options
        ]
        intro = textwrap.indent(textwrap.dedent(self.intro).strip(), " " * 4)
        parts = [summary, intro] if intro else [summary]
        parts += [
            "    Args:\n" + "\n".join(entries),
            "    Returns:\n        A `keras.Model`.",
            "    Example:\n\n    ```python\n    "
            + self.example.format(key=key)
            + "\n    ```\n",
        ]
        return "\n\n".join(parts)


def _shown(value):
    return f'"{value}"' if isinstance(value, str) else repr(value)
