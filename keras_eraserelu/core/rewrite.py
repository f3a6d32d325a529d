"""`erase_relu`: clone a model with chosen activations turned linear.

The rewrite runs on the package's one rewriting engine (`cloning.py`, on
`keras.models.clone_model`), so a Sequential stays Sequential, nested models
stay nested and shared layers stay shared. Each erased site is replaced in
place, under the same name:

- a standalone activation layer or raw op becomes `keras.layers.Identity`;
- a fused activation becomes the same layer with `activation="linear"`;
- nested sites (activation sub-layers of an opaque layer) are erased through
  that layer's config: it is rebuilt with the arguments that set them made
  `"linear"` (`nested.py`), on the same weights.

Weights are copied exactly while each new layer is built (the source values
become the new variables' initial values, so no random initializer runs), or,
with `share_weights=True`, the new graph reuses the very same variables.

Example:

```python
new = erase_relu(keras.applications.ResNet50(weights=None))
new.get_layer("conv2_block1_out")   # <Identity name=conv2_block1_out, ...>
```
"""

from __future__ import annotations

import warnings

import keras

from keras_eraserelu.core.checks import check_model
from keras_eraserelu.core.cloning import Replacement, rewrite_model
from keras_eraserelu.core.flatgraph import FlatGraph
from keras_eraserelu.core.nested import nested_changes
from keras_eraserelu.core.plan import ErasePlan, plan_erasure
from keras_eraserelu.core.sites import (
    activation_of,
    activation_sublayers,
    is_opaque,
    mark_erased,
    site_nodes,
)


def erase_relu(model, where=None, *, plan=None, share_weights=False, **plan_kwargs):
    """Returns a copy of `model` with the planned activations made linear.

    By default the last ReLU of every basic module is erased (EraseReLU,
    arXiv 1709.07634). Weights, moving statistics, dtype policies, trainable
    flags and the compile state are kept; the input model is untouched.

    Args:
        model: a built Functional or Sequential Keras model.
        where: placement inside each module; see `plan_erasure`.
        plan: ErasePlan or None. A plan from `plan_erasure`, applied as is.
            Give either a plan or placement arguments, not both.
        share_weights: bool. If True, the new model is built on the same
            variables as `model` (instant, no copy): training one changes the
            other. Defaults to False (weights copied).
        **plan_kwargs: `select`, `exclude`, `kinds`, `modules`, `ratio`,
            `ratio_from`, as in `plan_erasure`.

    Returns:
        A new Keras model of the same class family (Functional or Sequential).

    Example:

    ```python
    new = erase_relu(model, where="last", exclude="conv5_*")
    shared = erase_relu(trained, share_weights=True)   # evaluate in place
    ```
    """
    check_model(model)
    if plan is None:
        plan = plan_erasure(model, where, **plan_kwargs)
    elif where is not None or plan_kwargs:
        raise ValueError(
            "Pass either `plan=` or placement arguments (where, select, exclude, "
            "kinds, modules, ratio, ratio_from), not both. Received plan and "
            f"{['where'] * (where is not None) + sorted(plan_kwargs)}."
        )
    elif not isinstance(plan, ErasePlan):
        raise TypeError(
            "`plan` must be an ErasePlan from `plan_erasure`. Received: "
            f"{plan!r} of type {type(plan).__name__}."
        )
    for message in plan.warnings:
        warnings.warn(message, stacklevel=2)
    targets = resolve_targets(model, plan)

    def replace(operation, copy):
        if id(operation) not in targets:
            return None
        changes = targets[id(operation)]
        if changes is None:
            return _make_linear(operation, copy)
        return Replacement(copy(operation, changes))

    return rewrite_model(model, replace, share_weights)


def resolve_targets(model, plan):
    """The operations of `model` that `plan` erases: `{id(operation): None}`
    for an activation of the graph, `{id(layer): config changes}` for an
    opaque layer holding erased nested sites."""
    graph = FlatGraph.from_model(model)
    by_path = {}
    for nodes in site_nodes(graph).values():
        by_path[nodes[0].qualified_name] = (nodes[0].operation, None)
    for node in graph.nodes:
        if is_opaque(node.operation):
            for attribute, _ in activation_sublayers(node.operation):
                path = f"{node.qualified_name}/{attribute}"
                by_path.setdefault(path, (node.operation, attribute))
    missing = [site.path for site in plan.erased if site.path not in by_path]
    if missing:
        raise ValueError(
            f"The plan was made for model '{plan.model_name}', and its sites "
            f"{missing[:5]} are not activation sites of model '{model.name}'. "
            "Make the plan with `plan_erasure(model, ...)` on this model."
        )
    targets, nested = {}, {}
    for site in plan.erased:
        operation, attribute = by_path[site.path]
        if attribute is None:
            targets[id(operation)] = None
        else:
            nested.setdefault(id(operation), (operation, []))[1].append(attribute)
    for key, (layer, attributes) in nested.items():
        targets[key] = nested_changes(layer, attributes)
    return targets


def _make_linear(operation, copy):
    """The linear stand-in for an activation site, under the same name."""
    if activation_of(operation)[0] == "fused":
        layer = copy(operation, {"activation": "linear"})
        mark_erased(layer)
        return Replacement(layer)
    policy = getattr(operation, "dtype_policy", None)
    return Replacement(
        keras.layers.Identity(name=operation.name, dtype=policy and policy.name)
    )
