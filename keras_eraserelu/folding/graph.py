"""The graph `fold_linear` edits: every call of a model, nested models inlined.

A `FoldGraph` holds one `Call` per layer or op call of the whole network
(nested Functional and Sequential models are inlined, as the graph walker of
`keras_eraserelu.core` does) and one `Value` per tensor, with its producer
and consumers, so that "this tensor feeds one layer and is no model output"
is one question. Each call keeps its Keras node, so that `build()` can call
the copy with the same arguments (keyword arguments, lists, constants).

The folds edit it in place: `replace_calls` puts a new call (layers made by
the fold, `LayerSpec`) where a run of calls was; `bypass` removes a call
whose output equals its input. `build()` then makes a new Functional model:
a layer left alone is rebuilt from its config with copies of its weights
(shared layers stay shared), raw ops and Lambda layers are reused, new
layers get their computed weights. The source model is not modified.

Example:

```python
graph = FoldGraph.from_model(model)
for call in graph.calls:
    print(call.name, [v.shape for v in call.inputs])
new_model = graph.build()        # the same network, copied
```
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from keras_eraserelu.core import is_graph_model


@dataclass(eq=False)
class Value:
    """One tensor of the inlined graph.

    Attributes:
        shape: tuple. Its shape (batch first, None where unknown).
        dtype: str.
        producer: Call or None (a model input).
        consumers: list of Call, one entry per call that reads it.
    """

    shape: tuple
    dtype: str
    producer: object = None
    consumers: list = field(default_factory=list)


@dataclass(eq=False)
class Call:
    """One call of one operation.

    Attributes:
        operation: the original layer or op, or None for a call the fold made.
        node: its Keras node (arguments to fill in), or None for a made call.
        bindings: dict. id of each original input KerasTensor -> Value (a
            made call: {0: its one input Value}).
        outputs: list of Value.
        specs: list of LayerSpec or None. The new layers of a made call, or
            the one new layer that replaces `operation` in the same call.
        name: str. The layer's name (a made call's main layer's).
    """

    operation: object
    node: object
    bindings: dict
    outputs: list
    specs: list | None = None
    name: str = ""

    @property
    def inputs(self):
        seen, values = set(), []
        for value in self.bindings.values():
            if id(value) not in seen:
                seen.add(id(value))
                values.append(value)
        return values

    @property
    def layers(self):
        """(layer, weights) in call order; weights None: the layer's own."""
        if self.specs is None:
            return [(self.operation, None)]
        return [(spec.layer, spec.weights) for spec in self.specs]

    @property
    def single_input(self):
        """The one input Value, or None when the call takes several tensors."""
        if len(self.bindings) != 1 or len(self.outputs) != 1:
            return None
        if self.node is not None and len(self.node.input_tensors) != 1:
            return None  # the same tensor twice, as in Add([x, x])
        return next(iter(self.bindings.values()))


class FoldGraph:
    """The inlined call graph of a model; see the module docstring.

    Args:
        model: the source Functional or Sequential model (kept for `build`).
        calls: list of Call in topological order.
        inputs: list of Value, the model's inputs in order.
        outputs: list of Value, the model's outputs in order.
        call_counts: dict. id(operation) -> number of its calls.
    """

    def __init__(self, model, calls, inputs, outputs, call_counts):
        self.model = model
        self.calls = calls
        self.inputs = inputs
        self.outputs = outputs
        self.call_counts = call_counts

    @classmethod
    def from_model(cls, model):
        calls, counts = [], {}
        inputs = [Value(tuple(t.shape), t.dtype) for t in model.inputs]
        outputs = _inline(model, inputs, calls, counts)
        return cls(model, calls, inputs, outputs, counts)

    def called_once(self, call):
        return call.operation is None or self.call_counts[id(call.operation)] == 1

    def is_output(self, value):
        return any(value is output for output in self.outputs)

    def sole_consumer(self, value):
        """The one call reading `value` (once), when it is no model output."""
        if len(value.consumers) == 1 and not self.is_output(value):
            return value.consumers[0]
        return None

    def bypass(self, call, value):
        """Removes `call`; whatever read its output reads `value` instead."""
        (output,) = call.outputs
        _redirect(output, value, self.outputs)
        self._forget(call)
        self.calls.remove(call)

    def replace_calls(self, old, specs, source, name):
        """Puts one made call (`specs` applied to `source`) in the place of the
        calls `old`; it produces the output of the last of them."""
        last = old[-1]
        new = Call(None, None, {0: source}, list(last.outputs), specs, name)
        for value in new.outputs:
            value.producer = new
        for call in old:
            self._forget(call)
        source.consumers.append(new)
        self.calls[self.calls.index(last)] = new
        for call in old[:-1]:
            self.calls.remove(call)
        return new

    def _forget(self, call):
        for value in call.inputs:
            value.consumers[:] = [c for c in value.consumers if c is not call]

    def build(self):
        """A new Functional model computing this graph (see module docstring)."""
        model = self.model
        tensors, copies, pending = {}, {}, []
        new_inputs = []
        for tensor, value in zip(model.inputs, self.inputs):
            name = tensor._keras_history[0].name
            new = keras.Input(batch_shape=value.shape, dtype=value.dtype, name=name)
            tensors[id(value)] = new
            new_inputs.append(new)
        for call in self.calls:
            if call.node is None:  # made by a fold: one input through its layers
                outputs = tensors[id(call.single_input)]
                for spec in call.specs:
                    outputs = spec.layer(outputs)
                    pending.append((spec.layer, spec.weights))
            else:
                layer = self._layer(call, copies, pending)
                filled = {key: tensors[id(v)] for key, v in call.bindings.items()}
                args, kwargs = call.node.arguments.fill_in(filled)
                outputs = layer(*args, **kwargs)
            for value, tensor in zip(call.outputs, keras.tree.flatten(outputs)):
                tensors[id(value)] = tensor
        for layer, weights in pending:
            layer.set_weights(
                [_as_variable_dtype(w, v) for w, v in zip(weights, layer.weights)]
            )
        outputs = [tensors[id(value)] for value in self.outputs]
        inputs = new_inputs
        if isinstance(model, keras.Sequential):
            inputs, outputs = inputs[0], outputs[0]
        else:  # the source's structures (a dict of outputs stays one)
            inputs = keras.tree.pack_sequence_as(model.input, inputs)
            outputs = keras.tree.pack_sequence_as(model.output, outputs)
        return keras.Model(inputs=inputs, outputs=outputs, name=model.name)

    def _layer(self, call, copies, pending):
        if call.specs:
            (spec,) = call.specs
            pending.append((spec.layer, spec.weights))
            return spec.layer
        operation = call.operation
        if id(operation) in copies:
            return copies[id(operation)]
        if not isinstance(operation, keras.layers.Layer) or isinstance(
            operation, keras.layers.Lambda
        ):  # stateless: a Lambda must not be rebuilt (safe mode refuses it)
            copies[id(operation)] = operation
            return operation
        try:
            copy = type(operation).from_config(operation.get_config())
        except Exception as error:  # noqa: BLE001 - re-raised with the layer named
            raise TypeError(
                f"Layer '{operation.name}' ({type(operation).__name__}) cannot be "
                f"rebuilt from its config ({error}). Register it with "
                "`keras.saving.register_keras_serializable` and give it a complete "
                "get_config()."
            ) from error
        copies[id(operation)] = copy
        if operation.weights:
            pending.append((copy, operation.get_weights()))
        return copy


def _as_variable_dtype(weight, variable):
    """Computed weights are float64: as float32 unless the variable is float64."""
    if weight.dtype == np.float64 and variable.dtype != "float64":
        return weight.astype(np.float32)
    return weight


def _redirect(old, new, outputs):
    for call in old.consumers:
        for key, value in call.bindings.items():
            if value is old:
                call.bindings[key] = new
        new.consumers.append(call)
    old.consumers = []
    outputs[:] = [new if value is old else value for value in outputs]


def _inline(model, bound, calls, counts):
    """Adds the calls of `model` with its inputs bound to the Values `bound`;
    returns the Values of its outputs."""
    values = {id(t): v for t, v in zip(model.inputs, bound)}
    for node in _nodes(model):
        operation = node.operation
        inputs = [values[id(t)] for t in node.input_tensors]
        if is_graph_model(operation) and len(inputs) == len(operation.inputs):
            inner = _inline(operation, inputs, calls, counts)
            for tensor, value in zip(node.output_tensors, inner):
                values[id(tensor)] = value
            continue
        bindings = {id(t): values[id(t)] for t in node.input_tensors}
        outputs = [Value(tuple(t.shape), t.dtype) for t in node.output_tensors]
        call = Call(operation, node, bindings, outputs, name=operation.name)
        for tensor, value in zip(node.output_tensors, outputs):
            value.producer = call
            values[id(tensor)] = value
        for value in call.inputs:
            value.consumers.append(call)
        counts[id(operation)] = counts.get(id(operation), 0) + 1
        calls.append(call)
    return [values[id(t)] for t in model.outputs]


def _nodes(model):
    """The Keras nodes of one model's own graph, inputs first, input nodes
    left out (an iterative depth-first walk from the outputs)."""
    inputs = {id(t) for t in model.inputs}
    order, state, stack = [], {}, [(t, False) for t in reversed(model.outputs)]
    while stack:
        tensor, expanded = stack.pop()
        operation, index, _ = tensor._keras_history
        node = operation._inbound_nodes[index]
        if expanded:
            state[id(node)] = "done"
            order.append(node)
            continue
        if id(node) in state:  # done, or open: its parents are under way
            continue
        if id(tensor) in inputs or node.is_input:
            state[id(node)] = "done"
            continue
        state[id(node)] = "open"
        stack.append((tensor, True))
        stack.extend((parent, False) for parent in reversed(node.input_tensors))
    return order
