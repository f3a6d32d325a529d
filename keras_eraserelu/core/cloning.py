"""The one rewriting engine: clone a model, replacing chosen operations.

Functional models are cloned with `keras.models.clone_model`; Sequential
models are rebuilt as Sequential from the same list of layers; nested models
of either kind are rewritten recursively, and a layer shared by several calls
or several nested models stays shared. `replace(operation)` decides each
operation: None keeps it (copied, or reused with `share_weights`), a
`Replacement` puts another layer in its place, optionally followed by a new
layer called on its output. `replace` also receives `copy(layer, changes)`,
which rebuilds a layer from its config (with `changes`) on the original's
variables, under the original's name, whatever the layer's `get_config`
does with names; the sub-layers it keeps as attributes are matched to the
original's, for their names and variables alike.

A graph model whose class has its own constructor (a KerasHub backbone or
task) is not turned into a plain Functional: the keeper registered in
`CLASS_KEEPERS` for the package of its class (`core/hub.py` for
`keras_hub`) rebuilds it as its own class, from the rewritten graph.

Weights are copied while each new layer is built: its `add_weight` hands out
the source variable's value as the initial value (or, when sharing, the source
variable itself), so no random initializer runs and nothing is copied twice.

Example:

```python
def replace(op, copy):
    if op.name == "fc1_relu":
        return Replacement(keras.layers.Identity(name=op.name))
    if op.name == "fc2":
        return Replacement(copy(op, {"activation": "linear"}))

new_model = rewrite_model(model, replace)
```
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras

from keras_eraserelu.core.flatgraph import is_graph_model

#: Rebuilders of graph models whose class a rewrite keeps, keyed by the
#: top-level package of a class in the model's MRO: `keeper(model, rewriter)`
#: returns the rewritten model (see `_Rewriter.clone`).
CLASS_KEEPERS = {}


@dataclass
class Replacement:
    """What takes the place of one operation in the rewritten graph.

    Attributes:
        layer: the operation called where the original was called.
        after: a layer or None, called on `layer`'s output (to insert a layer
            after a fused layer, for instance).
    """

    layer: object
    after: object = None


def rewrite_model(model, replace, share_weights=False, keep_class=True):
    """Returns a rewritten copy of `model`; the input model is untouched.

    Args:
        model: a built Functional or Sequential model.
        replace: callable(operation, copy) -> Replacement or None, where
            `copy(layer, changes=None)` rebuilds `layer` from its config
            updated with `changes`, on copies of its variables (on the same
            variables with `share_weights`).
        share_weights: bool. Reuse the original layers and variables for
            everything not replaced.
        keep_class: bool. Rebuild models of a class with a keeper in
            `CLASS_KEEPERS` (KerasHub's) as their class; False makes them
            plain Functional models. Defaults to True.
    """
    rewriter = _Rewriter(replace, share_weights, keep_class)
    new_model = rewriter.model(model)
    rewriter.finish()
    return new_model


class _Rewriter:
    def __init__(self, replace, share_weights, keep_class=True):
        self.replace = replace
        self.share = share_weights
        self.keep_class = keep_class
        self.cache = {}
        self.after = {}
        self.replaced = {}
        self.pending = []

    def model(self, model):
        keeper = _keeper_of(model) if self.keep_class else None
        if isinstance(model, keras.Sequential):
            new_model = self._sequential(model)
        elif keeper is not None:
            new_model = keeper(model, self)
        else:
            new_model = keras.models.clone_model(
                model,
                input_tensors=_named_inputs(model),
                clone_function=self.operation,
                call_function=self._call,
            )
        if new_model.trainable != model.trainable:
            new_model.trainable = model.trainable
        return new_model

    def clone(self, model, extra=()):
        """Rewrites the graph of `model` without building a model of its class.

        Returns `(inputs, outputs, images)`: the new input and output tensors
        in the structures of `model.input` and `model.output`, and the new
        tensors standing for the tensors `extra` of its graph.
        """
        source = keras.Model(model.inputs, [*model.outputs, *extra])
        new = keras.models.clone_model(
            source,
            input_tensors=_named_inputs(source),
            clone_function=self.operation,
            call_function=self._call,
        )
        count = len(model.outputs)
        inputs = keras.tree.pack_sequence_as(model.input, new.inputs)
        outputs = keras.tree.pack_sequence_as(model.output, new.outputs[:count])
        return inputs, outputs, new.outputs[count:]

    def image(self, operation):
        """What stands for `operation` in the rewritten graph (None if the
        graph does not hold it)."""
        return self.cache.get(id(operation))

    def replacement_of(self, operation):
        """The `Replacement` that `replace` chose for `operation`, or None."""
        return self.replaced.get(id(operation))

    def operation(self, operation):
        if id(operation) in self.cache:
            return self.cache[id(operation)]
        if is_graph_model(operation):
            new = self.model(operation)
        else:
            replacement = self.replace(operation, self.copy)
            if replacement is not None:
                self.replaced[id(operation)] = replacement
                new = replacement.layer
                if replacement.after is not None:
                    self.after[id(new)] = replacement.after
            elif self.share or _is_stateless(operation):
                new = operation
            else:
                new = self.copy(operation)
        self.cache[id(operation)] = new
        return new

    def _call(self, layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        after = self.after.get(id(layer))
        return outputs if after is None else after(outputs)

    def _sequential(self, model):
        layers = [*_named_inputs(model)]
        for layer in model.layers:
            new = self.operation(layer)
            layers.append(new)
            if id(new) in self.after:
                layers.append(self.after[id(new)])
        new_model = keras.Sequential(layers, name=model.name)
        if model.compiled:
            new_model.compile_from_config(model.get_compile_config())
        return new_model

    def copy(self, layer, changes=None):
        """A new layer from `layer`'s config updated with `changes`, built on
        copies of its variables (on the variables themselves when sharing)."""
        config = layer.get_config()
        config.update(changes or {})
        try:
            new_layer = type(layer).from_config(config)
        except Exception as error:  # noqa: BLE001 - re-raised with the layer named
            raise TypeError(
                f"Layer '{layer.name}' ({type(layer).__name__}) cannot be rebuilt "
                f"from its config ({error}). Register it with "
                "`keras.saving.register_keras_serializable` and give it a "
                "complete get_config(), or pass share_weights=True to reuse it."
            ) from error
        pairs = _layer_pairs(layer, new_layer)
        claimed, hooked = set(), []
        for source, target in reversed(pairs):  # sub-layers claim theirs first
            if target.name != source.name:
                target.name = source.name
            weights = [w for w in source.weights if id(w) not in claimed]
            claimed.update(id(w) for w in weights)
            if weights:
                target.add_weight = functools.partial(
                    _add_weight_from, target, weights, self.share
                )
                hooked.append((target, weights))
        if hooked:
            self.pending.append((layer, new_layer, hooked))
        return new_layer

    def finish(self):
        """Removes the build hooks; copies what a hook could not match."""
        for source, new_layer, hooked in self.pending:
            unmatched = False
            for target, weights in hooked:
                if "add_weight" in target.__dict__:
                    del target.add_weight
                unmatched = unmatched or bool(weights)
            if unmatched and new_layer.built:
                # Some variables were made outside a hooked build (in
                # `__init__`, or by a sub-layer kept in a list): copy them.
                new_layer.set_weights(source.get_weights())


def _named_inputs(model):
    """New input tensors for `model`, each named after its source's input
    layer: a list for a Sequential, else in the structure of `model.input`."""
    inputs = [
        keras.Input(
            batch_shape=tensor.shape,
            dtype=tensor.dtype,
            name=tensor._keras_history[0].name,
        )
        for tensor in model.inputs
    ]
    if isinstance(model, keras.Sequential):
        return inputs
    return keras.tree.pack_sequence_as(model.input, inputs)


def _keeper_of(model):
    for klass in type(model).__mro__:
        keeper = CLASS_KEEPERS.get(klass.__module__.partition(".")[0])
        if keeper is not None:
            return keeper
    return None


def _layer_pairs(source, target, seen=None):
    """`(source, target)` and, depth first, every pair of sub-layers the two
    hold under the same attribute: what a rebuilt layer's names and variables
    are matched by (some layers rename themselves when rebuilt from their
    config: KerasHub's `DepthwiseConvBlock` appends `_0`)."""
    seen = set() if seen is None else seen
    seen.add(id(source))
    pairs = [(source, target)]
    for attribute, sub_layer in vars(source).items():
        counterpart = vars(target).get(attribute)
        if (
            isinstance(sub_layer, keras.layers.Layer)
            and isinstance(counterpart, keras.layers.Layer)
            and id(sub_layer) not in seen
        ):
            pairs += _layer_pairs(sub_layer, counterpart, seen)
    return pairs


def _is_stateless(operation):
    """Raw ops and Lambda layers carry no state: the clone reuses them.

    A Lambda cannot be rebuilt from its config in safe mode, and must not be.
    """
    return not isinstance(operation, keras.layers.Layer) or isinstance(
        operation, keras.layers.Lambda
    )


def _add_weight_from(layer, sources, share, *args, **kwargs):
    if len(args) > 1:
        kwargs.setdefault("initializer", args[1])
        args = args[:1] + args[2:]
    shape = tuple(kwargs.get("shape", args[0] if args else ()) or ())
    source = _take_matching(sources, kwargs.get("name"), shape)
    if source is None:
        return type(layer).add_weight(layer, *args, **kwargs)
    if share:
        layer._track_variable(source)
        return source
    # A copy: on JAX the new variable must not alias the source array, which
    # training the copy would donate (delete) under the source model.
    kwargs["initializer"] = lambda shape, dtype=None: keras.ops.copy(source.value)
    return type(layer).add_weight(layer, *args, **kwargs)


def _take_matching(sources, name, shape):
    for candidate in sources:
        if candidate.name == name and tuple(candidate.shape) == shape:
            sources.remove(candidate)
            return candidate
    for candidate in sources:
        if tuple(candidate.shape) == shape:
            sources.remove(candidate)
            return candidate
    return None
