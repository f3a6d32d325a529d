"""`fold_linear`: an equivalent model with what erasure made linear folded.

Once a ReLU is gone, the linear layers around it collapse: `Identity`
layers go, batch norms fold into a neighbouring convolution or Dense layer
(`batch_norm.py`), chains of linear layers merge into one (`chains.py`),
and with `residuals=True` linear branches merge with their identity
shortcut (`residuals.py`). The folds repeat until none applies, since one
can make another possible (a merged residual block followed by a batch
norm). Weights are computed in NumPy (float64) from the source layers; the
source model is not modified. The result computes the same outputs as the
source in inference mode (`training=False`): it has no batch norm left to
train and is meant for deployment.

Example:

```python
folded, report = fold_linear(erase_relu(model), residuals=True)
print(report)
folded.save("deploy.keras")
```
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from keras_eraserelu.core import check_bool, check_model, check_number, did_you_mean
from keras_eraserelu.folding.batch_norm import fold_batch_norms
from keras_eraserelu.folding.chains import CHAIN_CHOICES, merge_chains
from keras_eraserelu.folding.flops import graph_flops
from keras_eraserelu.folding.graph import FoldGraph
from keras_eraserelu.folding.report import Fold, FoldReport, Skip
from keras_eraserelu.folding.residuals import fold_residuals

TOLERANCE = 1e-4  # relative to the output scale, float32 models
LOW_PRECISION_TOLERANCE = 3e-2  # when a layer computes in float16 or bfloat16
_PROBE_SIZE = 32  # for input dimensions of unknown size


def fold_linear(
    model,
    *,
    batch_norm=True,
    chains="cheaper",
    residuals=False,
    check=True,
    tolerance=None,
    probe=None,
):
    """Returns an equivalent model with its linear layers folded, and a report.

    `Identity` layers (and linear `Activation` layers) are removed; the rest
    is chosen by the arguments. Weights are computed from the source's (in
    float64, stored in each variable's dtype); the source model is not
    modified; dtype policies are kept; a fused activation at the end of a
    chain stays on the merged layer. The result is a Functional model (a
    Sequential comes back as an equivalent Functional; nested models are
    inlined), not compiled. It saves to `.keras` and opens with
    `keras.models.load_model` (safe mode) after `import keras_eraserelu`,
    and with Keras alone unless it holds a `SpatialBias`.

    Args:
        model: a built Functional or Sequential Keras model.
        batch_norm: bool. Fold batch norms (inference statistics) into the
            convolution or Dense layer before them, else after them where
            its padding allows. Defaults to True.
        chains: `"cheaper"` (merge runs of linear layers when the merged
            layer needs fewer FLOPs), `"always"` (merge every run that can
            be merged exactly) or False. Defaults to `"cheaper"`.
        residuals: bool. Fold `Add`s of linear branches of one tensor and
            the tensor itself into one kernel (RepVGG). Defaults to False.
        check: bool. Run both models on a probe batch in inference mode and
            raise if their outputs differ by more than `tolerance`.
            Defaults to True.
        tolerance: float > 0 or None. The largest allowed difference,
            relative to the largest absolute output of the source model.
            Defaults to 1e-4, or 3e-2 when a layer computes in float16 or
            bfloat16.
        probe: None, an array or a list of arrays (one per model input).
            Defaults to a seeded standard-normal batch of 2 shaped from the
            model's inputs (32 for each dimension of unknown size).

    Returns:
        (new model, `FoldReport`).

    Raises:
        TypeError: if `model` is not a Functional or Sequential model, or an
            argument has the wrong type.
        ValueError: for an unknown `chains`, a `tolerance` <= 0, a probe that
            does not fit the inputs, or when the check finds outputs that
            differ by more than the tolerance.

    Example:

    ```python
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    folded, report = fold_linear(model)     # 53 batch norms folded
    print(report.summary())
    ```
    """
    check_model(model)
    settings = _check_arguments(batch_norm, chains, residuals, check, tolerance)
    probes = _probes(model, probe) if check else None
    graph = FoldGraph.from_model(model)
    before = (len(graph.calls), model.count_params(), graph_flops(graph))
    taken = {call.name for call in graph.calls} | {
        t._keras_history[0].name for t in model.inputs
    }
    folds, skips = _remove_identities(graph)
    passes = []
    if batch_norm:
        passes.append(("batch_norm", lambda: fold_batch_norms(graph)))
    if chains:
        passes.append(("chain", lambda: merge_chains(graph, chains, taken)))
    if residuals:
        passes.append(("residual", lambda: fold_residuals(graph, taken)))
    last_skips = {}
    while True:
        made = 0
        for kind, run in passes:
            new_folds, last_skips[kind] = run()
            folds += new_folds
            made += len(new_folds)
        if not made:
            break
    folded = graph.build()
    after_graph = FoldGraph.from_model(folded)
    after = (len(after_graph.calls), folded.count_params(), graph_flops(after_graph))
    skipped = skips + [skip for kind, _ in passes for skip in last_skips[kind]]
    report = FoldReport(
        model.name,
        settings,
        tuple(folds),
        tuple(skipped),
        (before[0], after[0]),
        (before[1], after[1]),
        (before[2], after[2]),
    )
    if check:
        report = _checked(model, folded, probes, report)
    return folded, report


def _check_arguments(batch_norm, chains, residuals, check, tolerance):
    check_bool("batch_norm", batch_norm)
    check_bool("residuals", residuals)
    check_bool("check", check)
    if chains is not False and not isinstance(chains, str):
        raise TypeError(
            f"`chains` must be one of {CHAIN_CHOICES}. Received: chains={chains!r} "
            f"of type {type(chains).__name__}."
        )
    if chains is not False and chains not in CHAIN_CHOICES:
        raise ValueError(
            f"Unknown chains={chains!r}. Expected one of {CHAIN_CHOICES}."
            + did_you_mean(chains, CHAIN_CHOICES[:2])
        )
    if tolerance is not None:
        tolerance = check_number("tolerance", tolerance, 0, open_low=True)
    return {
        "batch_norm": batch_norm,
        "chains": chains,
        "residuals": residuals,
        "check": check,
        "tolerance": tolerance,
    }


def _remove_identities(graph):
    """Drops Identity and linear Activation layers (not on a model input)."""
    folds, skips = [], []
    for call in list(graph.calls):
        layer = call.operation
        linear = isinstance(layer, keras.layers.Identity) or (
            isinstance(layer, keras.layers.Activation)
            and keras.activations.serialize(layer.activation) == "linear"
        )
        if call.node is None or not linear or call.single_input is None:
            continue
        source = call.single_input
        if source.producer is None and graph.is_output(call.outputs[0]):
            skips.append(
                Skip("identity", (call.name,), "it maps a model input to an output")
            )
            continue
        graph.bypass(call, source)
        into = (
            source.producer.name if source.producer is not None else "the model input"
        )
        folds.append(Fold("identity", into, (call.name,)))
    return folds, skips


def _probes(model, probe):
    """The probe arrays, one per model input."""
    if probe is None:
        rng = np.random.default_rng(0)
        arrays = []
        for tensor in model.inputs:
            shape = [2] + [_PROBE_SIZE if n is None else n for n in tensor.shape[1:]]
            if "int" in str(tensor.dtype):
                arrays.append(rng.integers(0, 2, shape).astype(tensor.dtype))
            else:
                arrays.append(rng.standard_normal(shape).astype("float32"))
        return arrays
    arrays = list(probe) if isinstance(probe, (list, tuple)) else [probe]
    if len(arrays) != len(model.inputs):
        raise ValueError(
            f"`probe` must hold one array per model input ({len(model.inputs)}). "
            f"Received {len(arrays)}."
        )
    for array, tensor in zip(arrays, model.inputs):
        shape = np.shape(array)
        expected = tuple(tensor.shape)
        if len(shape) != len(expected) or any(
            n is not None and n != m for n, m in zip(expected[1:], shape[1:])
        ):
            raise ValueError(
                f"`probe` must fit the model input of shape {expected}. Received "
                f"an array of shape {shape}."
            )
    return arrays


def _checked(model, folded, probes, report):
    """The report with the check's numbers; raises beyond the tolerance."""
    inputs = probes[0] if len(probes) == 1 else probes
    expected = [_numpy(y) for y in keras.tree.flatten(model(inputs, training=False))]
    got = [_numpy(y) for y in keras.tree.flatten(folded(inputs, training=False))]
    difference = max(
        float(np.max(np.abs(e - g), initial=0.0)) for e, g in zip(expected, got)
    )
    scale = max(float(np.max(np.abs(e), initial=0.0)) for e in expected)
    tolerance = report.settings["tolerance"] or _default_tolerance(model)
    report = dataclasses.replace(
        report,
        max_difference=difference,
        output_scale=scale,
        tolerance=tolerance,
        probe_shape=tuple(np.shape(probes[0])),
    )
    if not difference <= tolerance * (scale or 1.0):
        raise ValueError(
            f"The folded model's outputs differ from model '{model.name}''s by up "
            f"to {difference:.3g} on the probe batch, {report.relative_difference:.3g} "
            f"of the output scale {scale:.3g}: more than tolerance={tolerance:g}. "
            "Pass a larger `tolerance` if that precision is enough, or check=False "
            "to inspect the folded model."
        )
    return report


def _numpy(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), np.float64)


def _default_tolerance(model):
    low = ("float16", "bfloat16")
    if any(
        getattr(layer, "compute_dtype", "float32") in low
        for layer in _all_layers(model)
    ):
        return LOW_PRECISION_TOLERANCE
    return TOLERANCE


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
