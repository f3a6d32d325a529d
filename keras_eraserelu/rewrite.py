"""`erase_relu`: clone a model with chosen activations turned linear.

The rewrite runs on `keras.models.clone_model(..., recursive=True)`, so a
Sequential stays Sequential, nested models stay nested and shared layers stay
shared. Each erased site is replaced in place, under the same name:

- a standalone activation layer or raw op becomes `keras.layers.Identity`;
- a fused activation becomes the same layer with `activation="linear"`.

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

import functools
import warnings

import keras

from keras_eraserelu.graph.flatgraph import FlatGraph
from keras_eraserelu.graph.sites import mark_erased, site_nodes
from keras_eraserelu.plan import ErasePlan, plan_erasure
from keras_eraserelu.validation import check_model


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
    targets = _resolve_targets(model, plan)
    return _clone(model, targets, share_weights)


def _resolve_targets(model, plan):
    """Maps the plan's erased paths to the operations of `model`."""
    by_path = {}
    for nodes in site_nodes(FlatGraph.from_model(model)).values():
        by_path[nodes[0].qualified_name] = nodes[0].operation
    missing = [site.path for site in plan.erased if site.path not in by_path]
    if missing:
        raise ValueError(
            f"The plan was made for model '{plan.model_name}', and its sites "
            f"{missing[:5]} are not activation sites of model '{model.name}'. "
            "Make the plan with `plan_erasure(model, ...)` on this model."
        )
    return {id(by_path[site.path]) for site in plan.erased}


def _clone(model, targets, share_weights):
    pending = []

    def clone_function(operation):
        if id(operation) in targets:
            return _erased_replacement(operation, share_weights, pending)
        if share_weights or _is_stateless(operation):
            return operation
        return _fresh_copy(operation, pending)

    new_model = keras.models.clone_model(
        model, clone_function=clone_function, recursive=True
    )
    for source, target, weights in pending:
        _finish_build(source, target, weights)
    if new_model.trainable != model.trainable:
        new_model.trainable = model.trainable
    return new_model


def _is_stateless(operation):
    """Raw ops and Lambda layers carry no state: the clone reuses them.

    A Lambda cannot be rebuilt from its config in safe mode, and must not be.
    """
    return not isinstance(operation, keras.layers.Layer) or isinstance(
        operation, keras.layers.Lambda
    )


def _erased_replacement(operation, share, pending):
    if isinstance(operation, keras.layers.Layer) and _has_fused_activation(operation):
        config = operation.get_config()
        config["activation"] = "linear"
        layer = type(operation).from_config(config)
        mark_erased(layer)
        _build_from(operation, layer, pending, share)
        return layer
    policy = getattr(operation, "dtype_policy", None)
    return keras.layers.Identity(name=operation.name, dtype=policy and policy.name)


def _has_fused_activation(layer):
    from keras_eraserelu.graph.sites import activation_of

    found = activation_of(layer)
    return found is not None and found[0] == "fused"


def _fresh_copy(layer, pending):
    try:
        new_layer = type(layer).from_config(layer.get_config())
    except Exception as error:  # noqa: BLE001 - re-raised with the layer named
        raise TypeError(
            f"Layer '{layer.name}' ({type(layer).__name__}) cannot be rebuilt "
            f"from its config ({error}). Register it with "
            "`keras.saving.register_keras_serializable` and give it a complete "
            "get_config(), or pass share_weights=True to reuse it as is."
        ) from error
    _build_from(layer, new_layer, pending, share=False)
    return new_layer


def _build_from(source, target, pending, share):
    """Makes `target` take its variables from `source` when it is built.

    Until the clone is done, `target.add_weight` hands out the source's
    variable of the same name and shape: the variable itself when sharing,
    a new variable initialised with its value otherwise.
    """
    weights = list(source.weights)
    if not weights:
        return
    target.add_weight = functools.partial(_add_weight_from, target, weights, share)
    pending.append((source, target, weights))


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
    kwargs["initializer"] = lambda shape, dtype=None: source.value
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


def _finish_build(source, target, unmatched):
    """Removes the build hook; copies what the hook could not match."""
    if "add_weight" in target.__dict__:
        del target.add_weight
    if unmatched and target.built:
        # Sub-layers created their own variables: copy values the plain way.
        target.set_weights(source.get_weights())
