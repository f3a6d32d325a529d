"""`export_plain`: the same model built from standard Keras layers only.

A model made by this package holds its own layer classes
(`FusedBatchNormalization`, `ErasableReLU`, `ZeroPadShortcut`), so its `.keras`
file opens only where `keras_eraserelu` is imported. `export_plain` rewrites
each of them into standard Keras layers that compute the same outputs, so
that plain `keras.models.load_model(path)` opens the saved file (in safe
mode) on a machine without this package:

- `FusedBatchNormalization` -> `keras.layers.BatchNormalization`, the same
  config and weights (the same numbers up to float rounding: Keras computes
  it from separate ops instead of one fused kernel);
- `ErasableReLU` -> `ReLU` (alpha 0), `Identity` (alpha 1) or
  `ReLU(negative_slope=alpha)` in between, at its current alpha;
- `ZeroPadShortcut` -> `AveragePooling2D(pool_size=1, strides=s)` (the
  subsampling it runs itself) and, to append the zero channels,
  `Permute((3, 1, 2))`, `ZeroPadding2D` on the channel axis and `Permute`
  back: exact, without weights, for any spatial size.

The rewrite runs on the package's rewriting engine (`cloning.py`): weights
are copied, the input model is untouched, a layer that maps to one layer
keeps its name (a shortcut's last layer carries the shortcut's name), nested
and shared layers stay so. The result is not compiled: the optimizer of a
training run (`CoupledSGD`) belongs to this package too; compile it again to
train it.

Example:

```python
plain = export_plain(keras.models.load_model("runs/r20/model.keras"))
print(plain.export_report)       # what was replaced
plain.save("r20_plain.keras")    # opens with Keras alone
```
"""

from __future__ import annotations

import collections
import dataclasses

import keras
import numpy as np

from keras_eraserelu.core import (
    ErasableReLU,
    Replacement,
    check_model,
    is_graph_model,
    rewrite_model,
)
from keras_eraserelu.models.batch_norm import FusedBatchNormalization
from keras_eraserelu.models.layers import ZeroPadShortcut


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What `export_plain` replaced.

    Attributes:
        model_name: str. The exported model's name.
        replaced: dict. `"FusedBatchNormalization -> BatchNormalization"` (one
            key per kind of replacement) -> number of layers.
        kept: int. Standard Keras layers and ops copied as they were.
    """

    model_name: str
    replaced: dict
    kept: int

    def to_dict(self):
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    def __str__(self):
        lines = [f"export_plain('{self.model_name}'): {self.kept} standard layers kept"]
        lines += [f"  {count:4d} x {what}" for what, count in self.replaced.items()]
        if not self.replaced:
            lines.append("  nothing to replace: the model was standard Keras already")
        return "\n".join(lines)


def export_plain(model):
    """Returns a copy of `model` made of standard Keras layers only.

    Every layer of this package is rewritten into standard Keras layers with
    the same outputs (see the module docstring); every other layer must be a
    standard Keras layer whose config holds standard objects only, and is
    copied. Weights are copied; the input model is untouched; the result is
    not compiled. Its `.keras` file opens with `keras.models.load_model`
    (safe mode) where this package is not installed.

    Args:
        model: a built Functional or Sequential Keras model (nested models
            included).

    Returns:
        A new, uncompiled Keras model (Functional or Sequential, as `model`;
        a KerasHub backbone or task becomes a Functional model of the same
        layers). Its attribute `export_report` (`ExportReport`) counts what
        was replaced.

    Raises:
        TypeError: if `model` is not a Functional or Sequential model, or if
            it holds a layer that is neither of this package nor standard
            Keras (a `Lambda` included: it does not load in safe mode); all
            such layers are named, and nothing is built.

    Example:

    ```python
    model = keras_eraserelu.models.create_model("cifar_resnet20", erase="last")
    plain = export_plain(model)
    plain.save("r20_plain.keras")   # keras.models.load_model opens it alone
    ```
    """
    check_model(model)
    operations, in_sequential = _walk(model)
    _check_standard(model, operations)
    counts = collections.Counter()
    copies = []  # (source, new) pairs whose weights are set after the build

    def replace(operation, copy):
        if type(operation) is FusedBatchNormalization:
            layer = keras.layers.BatchNormalization.from_config(operation.get_config())
            copies.append((operation, layer))
            counts["FusedBatchNormalization -> BatchNormalization"] += 1
            return Replacement(layer)
        if type(operation) is ErasableReLU:
            layer, what = _plain_relu(operation)
            counts[f"ErasableReLU -> {what}"] += 1
            return Replacement(layer)
        if type(operation) is ZeroPadShortcut:
            replacement, what = _plain_shortcut(
                operation, id(operation) in in_sequential
            )
            counts[f"ZeroPadShortcut -> {what}"] += 1
            return replacement
        return None

    plain = _uncompiled(rewrite_model(model, replace, keep_class=False))
    for source, layer in copies:
        layer.set_weights(source.get_weights())
    replaced = sum(counts.values())
    kept = sum(1 for op in operations if not is_graph_model(op)) - replaced
    plain.export_report = ExportReport(plain.name, dict(sorted(counts.items())), kept)
    return plain


def _walk(model):
    """Every operation of `model` and its nested models (once each), and the
    ids of those that sit in a Sequential model."""
    seen, operations, in_sequential = set(), [], set()

    def visit(graph):
        members = (
            graph.layers if isinstance(graph, keras.Sequential) else graph.operations
        )
        for operation in members:
            if isinstance(operation, keras.layers.InputLayer):
                continue
            if isinstance(graph, keras.Sequential):
                in_sequential.add(id(operation))
            if id(operation) in seen:
                continue
            seen.add(id(operation))
            operations.append(operation)
            if is_graph_model(operation):
                visit(operation)
            elif isinstance(operation, keras.Model):
                check_model(operation)  # raises: a subclassed model inside

    visit(model)
    return operations, in_sequential


_OURS = (FusedBatchNormalization, ErasableReLU, ZeroPadShortcut)


def _check_standard(model, operations):
    """Raises naming every operation that cannot be expressed in standard Keras."""
    problems = []
    for operation in operations:
        if type(operation) in _OURS or is_graph_model(operation):
            continue
        cls = type(operation)
        where = f"'{operation.name}' ({cls.__name__}, module {cls.__module__})"
        if not cls.__module__.startswith("keras."):
            problems.append(f"{where}: not a standard Keras class")
        elif isinstance(operation, keras.layers.Lambda):
            problems.append(f"{where}: Python code, refused by safe-mode loading")
        else:
            foreign = _foreign_objects(keras.saving.serialize_keras_object(operation))
            if foreign:
                problems.append(f"{where}: its config holds {sorted(foreign)}")
    if problems:
        raise TypeError(
            f"export_plain cannot express {len(problems)} layers of model "
            f"'{model.name}' in standard Keras layers: {'; '.join(problems[:10])}"
            f"{' ...' if len(problems) > 10 else ''}. It replaces "
            f"{', '.join(cls.__name__ for cls in _OURS)}; every other layer must "
            "be a standard Keras layer with standard arguments. Rebuild those "
            "layers from standard ones (or keep this model with its own classes "
            "and register them with `keras.saving.register_keras_serializable`)."
        )


def _foreign_objects(config):
    """`module.class_name` of every serialized object outside Keras in `config`."""
    found = set()
    if isinstance(config, dict):
        module = config.get("module")
        if isinstance(module, str) and not (
            module == "keras" or module.startswith("keras.") or module == "builtins"
        ):
            found.add(f"{module}.{config.get('class_name')}")
        for value in config.values():
            found |= _foreign_objects(value)
    elif isinstance(config, (list, tuple)):
        for value in config:
            found |= _foreign_objects(value)
    return found


def _plain_relu(layer):
    # The float32 value of alpha, as ErasableReLU multiplies by it.
    alpha = float(np.float32(layer.alpha.numpy()))
    base = {
        "name": layer.name,
        "dtype": layer.dtype_policy,
        "trainable": layer.trainable,
    }
    if alpha == 0.0:
        return keras.layers.ReLU(**base), "ReLU"
    if alpha == 1.0:
        return keras.layers.Identity(**base), "Identity"
    return keras.layers.ReLU(negative_slope=alpha, **base), "ReLU(negative_slope)"


def _plain_shortcut(layer, in_sequential):
    """The standard layers of a ZeroPadShortcut; the last one takes its name."""
    name, policy = layer.name, layer.dtype_policy
    extra = layer.filters - layer.input.shape[-1]
    chain = []
    if layer.strides > 1:
        chain.append(
            keras.layers.AveragePooling2D(
                pool_size=1,
                strides=layer.strides,
                padding="valid",
                data_format="channels_last",
                name=f"{name}_subsample" if extra else name,
                dtype=policy,
            )
        )
    if extra:
        # (batch, h, w, c) -> (batch, c, h, w): the channels become the first
        # axis that ZeroPadding2D pads; then back.
        chain += [
            keras.layers.Permute(
                (3, 1, 2), name=f"{name}_channels_first", dtype=policy
            ),
            keras.layers.ZeroPadding2D(
                ((0, extra), (0, 0)),
                data_format="channels_last",
                name=f"{name}_pad_channels",
                dtype=policy,
            ),
            keras.layers.Permute((2, 3, 1), name=name, dtype=policy),
        ]
    if not chain:
        return Replacement(keras.layers.Identity(name=name, dtype=policy)), "Identity"
    what = " + ".join(type(part).__name__ for part in chain)
    first, rest = chain[0], chain[1:]
    if not rest:
        return Replacement(first), what
    if in_sequential:
        # A Sequential takes one layer after another: the rest, nested.
        return Replacement(first, keras.Sequential(rest, name=f"{name}_rest")), what
    return Replacement(first, _Chain(rest)), what


class _Chain:
    """Calls layers one after the other (the tail of a replaced layer)."""

    def __init__(self, layers):
        self.layers = layers

    def __call__(self, inputs):
        for layer in self.layers:
            inputs = layer(inputs)
        return inputs


def _uncompiled(model):
    """`model` itself if not compiled, else a model on the same layers without
    its compile state (whose optimizer may be this package's)."""
    if not model.compiled:
        return model
    if isinstance(model, keras.Sequential):
        source = model.inputs[0]
        inputs = keras.Input(
            batch_shape=source.shape,
            dtype=source.dtype,
            name=source._keras_history[0].name,
        )
        return keras.Sequential([inputs, *model.layers], name=model.name)
    return keras.Model(model.inputs, model.outputs, name=model.name)
