"""ReLU sites: every place of a model where an activation can be erased.

A site is one activation, in one of four forms:

- `"layer"`: a standalone layer (`Activation("relu")`, `ReLU()`, `LeakyReLU`,
  `ELU`, ...);
- `"fused"`: the `activation=` of a layer that does more (Dense, Conv*,
  DepthwiseConv2D, SeparableConv2D, ConvTranspose, EinsumDense, ...);
- `"op"`: a raw operation in the graph, such as `keras.ops.relu(x)`;
- `"nested"`: an activation sub-layer that an opaque layer keeps as an
  attribute (KerasHub's `InvertedResidualBlock.activation2`), named
  `"<layer>/<attribute path>"`.

A layer is *opaque* when the graph walker cannot see what its `call` does: a
`Lambda`, or a custom layer (a direct subclass of `keras.layers.Layer`, as
KerasHub's block layers are) that is neither a site nor a nested model.
Subclasses of Keras' own layers are taken to compute what their base does.

Its `kind` says which function it computes: `"relu"`, `"relu6"` (any clipped
ReLU), `"leaky"`, `"thresholded"`, any other Keras activation by its name
(`"gelu"`, `"silu"`, `"tanh"`, ...), `"erasable"` for an `ErasableReLU`, or
`"linear"` for a site erased earlier.

Example:

```python
sites = find_relus(keras.applications.ResNet50(weights=None))
len(sites), sites[0].name, sites[0].form   # (49, 'conv1_relu', 'layer')
```
"""

from __future__ import annotations

import re
import weakref
from dataclasses import asdict, dataclass

import keras

from keras_eraserelu.core.checks import check_model, did_you_mean
from keras_eraserelu.core.erasable_relu import ErasableReLU
from keras_eraserelu.core.flatgraph import FlatGraph, is_graph_model

RELU_KINDS = ("relu", "relu6", "leaky", "thresholded", "erasable")
ERASED_KIND = "linear"

# Activations that are not elementwise or change the shape: never sites.
_NOT_ERASABLE = {"linear", "softmax", "log_softmax", "sparsemax", "glu"}
_ALIASES = {
    "leaky_relu": "leaky",
    "swish": "silu",
    "hard_swish": "hard_silu",
    "threshold_relu": "thresholded",
}
_ACTIVATION_NAMES = (
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "softplus",
    "softsign",
    "exponential",
    "celu",
    "log_sigmoid",
    "sparse_plus",
    "squareplus",
    "tanh_shrink",
    "hard_tanh",
    "soft_shrink",
    "hard_shrink",
    "sparse_sigmoid",
    "linear",
    "softmax",
    "log_softmax",
    "sparsemax",
    "glu",
)


def _canonical(name):
    return _ALIASES.get(name, name)


def _activation_table():
    table = {}
    for name in _ACTIVATION_NAMES:
        try:
            function = keras.activations.get(name)
        except ValueError:
            continue
        table.setdefault(function, _canonical(name))
    return table


_FUNCTION_KIND = _activation_table()

#: Every kind a site can have, apart from the erased `"linear"`.
KNOWN_KINDS = tuple(
    sorted({k for k in _FUNCTION_KIND.values() if k not in _NOT_ERASABLE})
    + ["erasable", "thresholded"]
)

# Layers rewritten by `erase_relu` whose activation is now linear. A fused
# erasure leaves a plain layer with `activation="linear"`, which the graph
# alone cannot tell from any other linear layer.
_ERASED_FUSED_LAYERS = weakref.WeakSet()


def mark_erased(layer):
    """Records that `layer` carries a fused activation erased by this package."""
    _ERASED_FUSED_LAYERS.add(layer)


@dataclass(frozen=True)
class ReluSite:
    """One erasable activation of a model.

    Attributes:
        name: str. The layer or operation name (for a nested site
            `"<layer>/<attribute path>"`).
        path: str. `name` prefixed by the names of the nested models around
            it, joined by "/" (equal to `name` at the top level).
        form: str. `"layer"`, `"fused"`, `"op"` or `"nested"`.
        kind: str. `"relu"`, `"relu6"`, `"leaky"`, `"thresholded"`, another
            Keras activation name, or `"linear"` when erased earlier.
        layer_class: str. Class name of the layer or operation.
        index: int. Position among all sites, in topological order.
        module: int or None. Index of the module holding the site; None for
            the stem (before the first module) and the head (after the last).
        module_name: str or None. Stable name of that module (the name of the
            node that ends it), or "stem"/"head".
        position: int or None. Position of the site inside its module.
        calls: int. How many times the layer is called in the graph.
        decision: str or None. In a plan: `"erase"`, `"keep"`, or `"erased"`
            (already linear); None from `find_relus`.
        reason: str. Why the plan erases or keeps the site.
    """

    name: str
    path: str
    form: str
    kind: str
    layer_class: str
    index: int
    module: int | None = None
    module_name: str | None = None
    position: int | None = None
    calls: int = 1
    decision: str | None = None
    reason: str = ""

    @property
    def erased_before(self):
        return self.kind == ERASED_KIND

    def to_dict(self):
        return asdict(self)


def activation_of(operation):
    """The `(form, kind)` of an operation's activation, or None if it has none.

    Example:

    ```python
    activation_of(keras.layers.ReLU(max_value=6.0))     # ('layer', 'relu6')
    activation_of(keras.layers.Dense(3, activation="relu"))  # ('fused', 'relu')
    ```
    """
    if isinstance(operation, keras.layers.Identity):
        return "layer", ERASED_KIND
    if isinstance(operation, ErasableReLU):
        return "layer", "erasable"
    if isinstance(operation, keras.layers.ReLU):
        return "layer", _relu_layer_kind(operation)
    if isinstance(operation, keras.layers.LeakyReLU):
        return "layer", "leaky"
    if isinstance(operation, keras.layers.ELU):
        return "layer", "elu"
    if isinstance(operation, keras.layers.Activation):
        kind = _FUNCTION_KIND.get(operation.activation)
        return ("layer", kind) if kind and kind not in _NOT_ERASABLE else None
    if isinstance(operation, keras.layers.Layer):
        return _fused_activation(operation)
    kind = _canonical(_snake_case(type(operation).__name__))
    if kind in _FUNCTION_KIND.values() and kind not in _NOT_ERASABLE:
        return "op", kind
    return None


def _relu_layer_kind(layer):
    if layer.max_value is not None:
        return "relu6"
    if layer.negative_slope:
        return "leaky"
    if layer.threshold:
        return "thresholded"
    return "relu"


def _fused_activation(layer):
    if isinstance(layer, keras.layers.RNN) or is_graph_model(layer):
        return None
    function = getattr(layer, "activation", None)
    if not callable(function):
        return None
    kind = _FUNCTION_KIND.get(function)
    if kind == "linear" and layer in _ERASED_FUSED_LAYERS:
        return "fused", ERASED_KIND
    if kind is None or kind in _NOT_ERASABLE:
        return None
    return "fused", kind


def _snake_case(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def is_opaque(operation):
    """Whether the graph walker cannot see into `operation` (see the module
    docstring): a `Lambda`, or a custom layer that subclasses
    `keras.layers.Layer` directly and is neither a site nor a nested model.

    Example:

    ```python
    is_opaque(keras.layers.Lambda(keras.ops.relu))   # True
    is_opaque(keras.layers.BatchNormalization())     # False
    ```
    """
    if (
        not isinstance(operation, keras.layers.Layer)
        or is_graph_model(operation)
        or activation_of(operation) is not None
    ):
        return False
    if isinstance(operation, keras.layers.Lambda):
        return True
    for klass in type(operation).__mro__:
        if klass.__module__.partition(".")[0] == "keras":
            return klass is keras.layers.Layer
    return True


def activation_sublayers(layer):
    """The activation sub-layers an opaque layer keeps as attributes, at any
    depth, as `(attribute path, sub-layer)` in attribute order (lists of
    layers give `name/0`, `name/1` ...). Nested models are not searched.

    Example:

    ```python
    [path for path, _ in activation_sublayers(block)]   # ['activation1', ...]
    ```
    """
    found, seen = [], {id(layer)}

    def visit(owner, prefix):
        for attribute, value in vars(owner).items():
            if attribute.startswith("_"):
                continue
            items = value if isinstance(value, (list, tuple)) else [value]
            for position, item in enumerate(items):
                if not isinstance(item, keras.layers.Layer) or id(item) in seen:
                    continue
                seen.add(id(item))
                path = prefix + attribute
                if isinstance(value, (list, tuple)):
                    path += f"/{position}"
                if activation_of(item) is not None:
                    found.append((path, item))
                elif not is_graph_model(item):
                    visit(item, path + "/")

    visit(layer, "")
    return found


def site_nodes(graph):
    """Maps each site key `(scope, id(operation))` to its graph nodes."""
    found = {}
    for node in graph.nodes:
        if node.is_input or activation_of(node.operation) is None:
            continue
        found.setdefault(site_key(node), []).append(node)
    return found


def site_key(node):
    """The key of the site a graph node calls: `(scope, id(operation))`."""
    return node.scope, id(node.operation)


def nested_key(node, attribute_path):
    """The key of a nested site: its owner's site key and attribute path."""
    return (*site_key(node), attribute_path)


def find_relus(model, kinds=None):
    """Lists the activation sites of a model, in topological order.

    Args:
        model: a built Functional or Sequential Keras model; nested models are
            searched at any depth.
        kinds: iterable of str or None. Kinds to list besides the ReLU family
            and the sites erased earlier; `"any"` lists every activation.
            Defaults to the ReLU family (relu, relu6, leaky, thresholded).

    Returns:
        A list of `ReluSite`, with `decision` None.

    Example:

    ```python
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, activation="relu", name="fc")(inputs)
    model = keras.Model(inputs, keras.layers.ReLU(name="act")(x))
    [s.path for s in find_relus(model)]   # ['fc', 'act']
    ```
    """
    check_model(model)
    wanted = set(RELU_KINDS) | set(check_kinds(kinds or ()))
    return list(sites_of_graph(FlatGraph.from_model(model), wanted).values())


def sites_of_graph(graph, wanted):
    """Builds the `ReluSite`s of one flattened graph, keyed like `site_nodes`.

    The walker that `find_relus` and `plan_erasure` share: a site is kept when
    its kind is in `wanted` (or `"any"` is), and sites erased earlier always.

    Args:
        graph: FlatGraph. The model's flattened graph.
        wanted: set of str. Kinds to list, as normalised by `check_kinds`.

    Returns:
        A dict from site key to `ReluSite` (with `decision` None), in
        topological order (nested sites where their layer is first called),
        `index` counting from 0.
    """
    calls = {}
    for node in graph.nodes:
        calls.setdefault(site_key(node), []).append(node)
    sites = {}

    def add(key, operation, form, kind, name, path, count):
        if kind != ERASED_KIND and "any" not in wanted and kind not in wanted:
            return
        sites[key] = ReluSite(
            name=name,
            path=path,
            form=form,
            kind=kind,
            layer_class=type(operation).__name__,
            index=len(sites),
            calls=count,
        )

    for key, nodes in calls.items():
        node, operation = nodes[0], nodes[0].operation
        if node.is_input:
            continue
        activation = activation_of(operation)
        if activation is not None:
            add(key, operation, *activation, operation.name, node.qualified_name,
                len(nodes))  # fmt: skip
        elif is_opaque(operation):
            for attribute, sub_layer in activation_sublayers(operation):
                add(nested_key(node, attribute), sub_layer, "nested",
                    activation_of(sub_layer)[1], f"{operation.name}/{attribute}",
                    f"{node.qualified_name}/{attribute}", len(nodes))  # fmt: skip
    return sites


def check_kinds(kinds):
    """Normalises `kinds` (str or iterable of str) to a tuple of kinds.

    Aliases become their canonical kind (`"leaky_relu"` -> `"leaky"`);
    `"any"` stays as it is.

    Raises:
        TypeError: for an entry that is not a str.
        ValueError: for an unknown kind, with a close-match hint.
    """
    if isinstance(kinds, str):
        kinds = (kinds,)
    result = []
    for kind in kinds:
        if not isinstance(kind, str):
            raise TypeError(f"Each entry of `kinds` must be a str. Received: {kind!r}.")
        kind = _canonical(kind)
        if kind != "any" and kind not in KNOWN_KINDS:
            raise ValueError(
                f"Unknown activation kind {kind!r} in `kinds`. Expected 'any' or "
                f"one of {list(KNOWN_KINDS)}.{did_you_mean(kind, KNOWN_KINDS)}"
            )
        result.append(kind)
    return tuple(result)
