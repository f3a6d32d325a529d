"""Gradual erasure: make chosen ReLUs erasable, anneal them, then finalize.

`make_erasable` rewrites the sites a plan chooses into `ErasableReLU` layers
(same placement vocabulary and rewriter as `erase_relu`, weights copied); the
`ProgressiveErase` callback moves their `alpha` from 0 to 1 during training;
`finalize_erasure` rewrites each one into `Identity` (alpha = 1, the same
result as `erase_relu`) or back into `ReLU` (alpha = 0), outputs unchanged.

Example:

```python
model = make_erasable(model)                  # the last ReLU of every module
model.fit(..., callbacks=[ProgressiveErase(start_epoch=2, end_epoch=8)])
model = finalize_erasure(model)               # Identity where alpha reached 1
```
"""

from __future__ import annotations

import warnings

import keras

from keras_eraserelu.core.checks import check_choice, check_model
from keras_eraserelu.core.cloning import Replacement, rewrite_model
from keras_eraserelu.core.erasable_relu import ErasableReLU
from keras_eraserelu.core.flatgraph import FlatGraph
from keras_eraserelu.core.plan import ErasePlan, plan_erasure
from keras_eraserelu.core.rewrite import resolve_targets
from keras_eraserelu.core.sites import activation_of

UNDECIDED_CHOICES = ("error", "keep", "round", "erase", "restore")


def make_erasable(
    model, where=None, *, plan=None, alpha=0.0, share_weights=False, **plan_kwargs
):
    """Returns a copy of `model` with the planned ReLUs made `ErasableReLU`.

    A standalone ReLU (or raw op) becomes an `ErasableReLU` of the same name;
    a fused `activation="relu"` becomes `activation="linear"` followed by an
    `ErasableReLU` named `<layer>_erasable`. Weights are copied (or shared).

    Args:
        model: a built Functional or Sequential Keras model.
        where, plan, share_weights, **plan_kwargs: as for `erase_relu`. Only
            plain ReLU sites can be made erasable.
        alpha: float in [0, 1]. The initial alpha. Defaults to 0.0 (ReLU).

    Returns:
        A new Keras model.

    Raises:
        ValueError: when the plan chooses no site, a site that is not a plain
            ReLU, or a nested site (an activation sub-layer of an opaque layer).

    Example:

    ```python
    erasable = make_erasable(model, where="last", alpha=0.0)
    ```
    """
    check_model(model)
    if plan is None:
        plan = plan_erasure(model, where, **plan_kwargs)
    elif where is not None or plan_kwargs or not isinstance(plan, ErasePlan):
        raise ValueError(
            "Pass either an ErasePlan as `plan=` or placement arguments, not both."
        )
    if not plan.erased:
        raise ValueError(
            f"No site of model '{model.name}' to make erasable: the plan chooses "
            f"none ({plan.summary()}). Choose sites with where=, select= or "
            "modules=; see `plan_erasure(model)` for the reasons."
        )
    nested = [site.name for site in plan.erased if site.form == "nested"]
    if nested:
        raise ValueError(
            f"make_erasable cannot make nested sites erasable: {nested[:5]} are "
            "sub-layers of layers the graph walker cannot see into, which only "
            "their layer's config can change. Erase them with `erase_relu`, or "
            "leave them out of select=."
        )
    other = sorted({site.kind for site in plan.erased} - {"relu"})
    if other:
        raise ValueError(
            f"make_erasable turns plain ReLUs into ErasableReLU; the plan also "
            f"chooses sites of kind {other}. Keep kinds=('relu',)."
        )
    targets = resolve_targets(model, plan)

    def replace(operation, copy):
        if id(operation) not in targets:
            return None
        policy = operation.dtype_policy.name
        if activation_of(operation)[0] == "fused":
            return Replacement(
                copy(operation, {"activation": "linear"}),
                after=ErasableReLU(
                    alpha, name=f"{operation.name}_erasable", dtype=policy
                ),
            )
        return Replacement(ErasableReLU(alpha, name=operation.name, dtype=policy))

    return rewrite_model(model, replace, share_weights)


def erasable_layers(model):
    """The `ErasableReLU` layers of `model`, nested models included."""
    check_model(model)
    found = []
    for node in FlatGraph.from_model(model).nodes:
        layer = node.operation
        if isinstance(layer, ErasableReLU) and all(layer is not f for f in found):
            found.append(layer)
    return found


def finalize_erasure(model, undecided="error", share_weights=False):
    """Rewrites every `ErasableReLU` into `Identity` (alpha 1) or `ReLU` (alpha 0).

    Args:
        model: a model holding `ErasableReLU` layers.
        undecided: str. What to do with a layer whose alpha lies strictly
            between 0 and 1: `"error"` (refuse, the default), `"keep"` (leave
            it erasable: outputs unchanged), `"round"` (to the nearer end),
            `"erase"` (make it the identity) or `"restore"` (make it a ReLU).
            The last three change the outputs. Defaults to `"error"`.
        share_weights: bool. Reuse the variables of `model`.

    Returns:
        A new Keras model; with alpha in {0, 1} everywhere its outputs equal
        the input model's.

    Example:

    ```python
    final = finalize_erasure(annealed)            # alpha reached 1 everywhere
    final = finalize_erasure(half_way, undecided="keep")
    ```
    """
    check_choice("undecided", undecided, UNDECIDED_CHOICES)
    layers = erasable_layers(model)
    if not layers:
        raise ValueError(
            f"Model '{model.name}' has no ErasableReLU layer to finalize. Create "
            "them with `make_erasable(model, ...)`."
        )
    alphas = {id(layer): float(layer.alpha.numpy()) for layer in layers}
    stuck = [
        f"{layer.name} (alpha={alphas[id(layer)]:.3g})"
        for layer in layers
        if 0.0 < alphas[id(layer)] < 1.0
    ]
    if stuck and undecided == "error":
        raise ValueError(
            f"{len(stuck)} ErasableReLU layers are between ReLU and identity: "
            f"{stuck[:5]}. Finish the annealing, or pass undecided= one of "
            f"{list(UNDECIDED_CHOICES[1:])}."
        )
    if stuck and undecided != "keep":
        warnings.warn(
            f"finalize_erasure(undecided={undecided!r}) changes the outputs of "
            f"{len(stuck)} layers: {stuck[:5]}.",
            stacklevel=2,
        )

    def replace(operation, copy):
        if not isinstance(operation, ErasableReLU):
            return None
        alpha = alphas[id(operation)]
        target = _final_alpha(alpha, undecided)
        if target is None:
            return None  # left erasable, copied or shared like any layer
        policy = operation.dtype_policy.name
        if target == 1.0:
            return Replacement(keras.layers.Identity(name=operation.name, dtype=policy))
        return Replacement(keras.layers.ReLU(name=operation.name, dtype=policy))

    return rewrite_model(model, replace, share_weights)


def _final_alpha(alpha, undecided):
    if alpha in (0.0, 1.0):
        return alpha
    return {"keep": None, "round": round(alpha), "erase": 1.0, "restore": 0.0}[
        undecided
    ]
