"""A model's call graph, flattened across nested models, and its cut points.

Keras records a functional graph as `Node(operation, arguments, outputs)`
objects linked through `KerasTensor._keras_history`. A nested Functional or
Sequential model is one node of its parent graph; here it is inlined, so that
every layer call of the whole network is one `GraphNode` and the network reads
as a single directed acyclic graph from its inputs to its outputs.

Example:

```python
graph = FlatGraph.from_model(keras.applications.ResNet50(weights=None))
[node.qualified_name for node in graph.cut_points()][:3]
```
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
from keras.src.models.functional import Functional


@dataclass(eq=False)
class GraphNode:
    """One call of one operation, at one place of the flattened graph.

    Attributes:
        index: int. Position in topological order.
        operation: the Keras layer or raw operation that is called.
        scope: tuple of str. Names of the nested models around the call,
            outermost first; empty at the top level.
        parents: list of GraphNode. The producers of the call's inputs.
        children: list of GraphNode. The consumers of its outputs.
        output_shape: tuple or None. Shape of its first output.
    """

    index: int
    operation: object
    scope: tuple
    parents: list = field(default_factory=list)
    children: list = field(default_factory=list)
    output_shape: tuple | None = None

    @property
    def name(self):
        return self.operation.name

    @property
    def qualified_name(self):
        return "/".join(self.scope + (self.operation.name,))

    @property
    def is_input(self):
        return isinstance(self.operation, keras.layers.InputLayer)

    def __repr__(self):
        return f"<GraphNode {self.index} {self.qualified_name}>"


def is_graph_model(operation):
    """Whether `operation` is a model whose layer graph can be walked."""
    if isinstance(operation, keras.Sequential):
        return operation.built and bool(operation.inputs)
    return isinstance(operation, Functional)


class FlatGraph:
    """The flattened call graph of a Functional or Sequential model.

    Args:
        nodes: list of GraphNode in topological order.
        outputs: list of GraphNode producing the model's outputs.
    """

    def __init__(self, nodes, outputs):
        self.nodes = nodes
        self.outputs = outputs

    @classmethod
    def from_model(cls, model):
        """Flattens `model`, inlining nested Functional and Sequential models."""
        builder = _Flattener()
        inputs = []
        for tensor in model.inputs:
            operation = tensor._keras_history[0]
            node = builder.add(operation, (), [], tensor.shape)
            inputs.append(node)
        outputs = builder.inline(model, (), inputs)
        return cls(builder.nodes, _unique(outputs))

    def cut_points(self):
        """Nodes that every path from an input to an output passes through.

        In topological order, a node is a cut point exactly when no edge
        jumps over it: an edge from an earlier node to a later one (or from
        the virtual source to a later input, or from an earlier output to the
        virtual sink) gives a path around it.
        """
        sink = len(self.nodes)
        reach = [node.index for node in self.nodes]
        for node in self.nodes:
            for child in node.children:
                reach[node.index] = max(reach[node.index], child.index)
        for node in self.outputs:
            reach[node.index] = sink
        # Edges from the virtual source end at every node without parents.
        furthest = max(node.index for node in self.nodes if not node.parents)
        cuts = []
        for node in self.nodes:
            if furthest <= node.index:
                cuts.append(node)
            furthest = max(furthest, reach[node.index])
        return cuts

    def ancestors(self, node, stop=lambda n: False):
        """All nodes from which `node` can be reached, not passing `stop`."""
        seen = set()
        stack = list(node.parents)
        while stack:
            current = stack.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            if not stop(current):
                stack.extend(current.parents)
        return seen


def _unique(nodes):
    seen, result = set(), []
    for node in nodes:
        if id(node) not in seen:
            seen.add(id(node))
            result.append(node)
    return result


class _Flattener:
    """Inlines the graph of a model and its nested models into flat nodes."""

    def __init__(self):
        self.nodes = []

    def add(self, operation, scope, parents, shape):
        node = GraphNode(len(self.nodes), operation, scope, _unique(parents))
        node.output_shape = tuple(shape) if shape is not None else None
        for parent in node.parents:
            parent.children.append(node)
        self.nodes.append(node)
        return node

    def inline(self, model, scope, bound_inputs):
        """Adds the nodes of `model`; returns the producers of its outputs."""
        producer = {id(t): node for t, node in zip(model.inputs, bound_inputs)}
        for keras_node in _topological_nodes(model):
            if keras_node.is_input:
                continue
            operation = keras_node.operation
            parents = [producer[id(t)] for t in keras_node.input_tensors]
            outputs = keras_node.output_tensors
            if is_graph_model(operation) and len(parents) == len(operation.inputs):
                inner = self.inline(operation, scope + (operation.name,), parents)
                for tensor, node in zip(outputs, inner):
                    producer[id(tensor)] = node
                continue
            shape = outputs[0].shape if outputs else None
            node = self.add(operation, scope, parents, shape)
            for tensor in outputs:
                producer[id(tensor)] = node
        return [producer[id(t)] for t in model.outputs]


def _topological_nodes(model):
    """The Keras nodes of one model's own graph, inputs first (iterative DFS)."""
    input_ids = {id(t) for t in model.inputs}
    order, state = [], {}
    stack = []
    for tensor in reversed(model.outputs):
        stack.append((tensor, False))
    while stack:
        tensor, expanded = stack.pop()
        operation, node_index, _ = tensor._keras_history
        node = operation._inbound_nodes[node_index]
        key = id(node)
        if expanded:
            if state.get(key) != "done":
                state[key] = "done"
                order.append(node)
            continue
        if state.get(key) is not None:
            continue
        state[key] = "open"
        stack.append((tensor, True))
        if id(tensor) in input_ids and not node.is_input:
            continue
        for parent_tensor in reversed(node.input_tensors):
            parent_op, parent_index, _ = parent_tensor._keras_history
            parent_key = id(parent_op._inbound_nodes[parent_index])
            if state.get(parent_key) is None:
                stack.append((parent_tensor, False))
    return order
