"""Chains of linear layers merged into one layer.

A chain is a run of calls of `Dense`, `Conv1D/2D/3D`, `DepthwiseConv1D/2D`,
`SeparableConv1D/2D` and `ZeroPadding1D/2D/3D` layers (or layers an earlier
fold made) in which every tensor between two of them feeds the next one
only, is no model output, and every layer but the last has a linear
activation; each layer is called once, and all share one dtype policy and
data format. A run of such a chain merges into one layer exactly (see
`affine.compose`) when:

- Dense then Dense: always (`W1 @ W2`, `b1 @ W2 + b2`);
- convolutions: any kernel sizes, strides, dilations and groups, when no
  layer after the first with a spatial extent zero-pads its input. So 1x1
  then kxk (padding "same" or "valid"), kxk then 1x1, depthwise then
  pointwise (the inverted residual block 1x1 -> depthwise kxk -> 1x1 is one
  kxk convolution), a zero padding then a convolution; but not 3x3 then 3x3
  when the second pads ("same"): it pads the first one's result, whose
  border is not zero. Kernels grow to `k1 + (k2 - 1) * s1` taps, strides
  multiply; the merged layer is refused where it would need strides and a
  dilation both above 1 (Keras convolutions refuse it);
- a bias cut off by a zero padding at the borders (1x1 with a bias, then a
  "same" depthwise) makes a bias map: the merged convolution is followed by
  a `SpatialBias`. That needs static spatial sizes.

`chains="cheaper"` picks, over each chain, the runs to merge that give the
fewest FLOPs (and then the fewest layers), by dynamic programming over its
cut points; `"always"` the fewest layers. The activation of a run's last
layer stays on the merged layer.

Example:

```python
folds, skips = merge_chains(graph, "cheaper", taken=set())
```
"""

from __future__ import annotations

import math

import numpy as np

from keras_eraserelu.folding.affine import (
    LINEAR_LAYERS,
    WEIGHTED,
    NotFoldable,
    call_affines,
    call_style,
    is_linear,
)
from keras_eraserelu.folding.compose import compose
from keras_eraserelu.folding.emit import layers_for, padding_word
from keras_eraserelu.folding.report import Fold, Skip

CHAIN_CHOICES = ("cheaper", "always", False)
MAX_KERNEL = 2**24  # weights of one merged kernel; longer runs are not tried


def merge_chains(graph, mode, taken):
    """Merges the chains of `graph` (see the module docstring).

    Args:
        graph: FoldGraph, edited in place.
        mode: `"cheaper"` or `"always"`.
        taken: set of str. Layer names in use.

    Returns:
        (list of Fold, list of Skip).
    """
    folds, skips = [], []
    for chain, links in _chains(graph, skips):
        runs, reasons = _best_runs(chain, links, mode)
        skips += reasons
        for start, stop in runs:
            folds.append(_merge(graph, chain[start:stop], links[start:stop], taken))
    return folds, skips


class _Link:
    """One call of a chain: its Affine maps, activation and style."""

    def __init__(self, call):
        self.call = call
        self.affines, self.activation = call_affines(call)
        self.style = call_style(call)
        self.weighted = any(type(layer) in WEIGHTED for layer, _ in call.layers)


def _linear(graph, call):
    """The _Link of a call that can be in a chain, else None."""
    if call.single_input is None or not graph.called_once(call):
        return None
    if not all(type(layer) in LINEAR_LAYERS for layer, _ in call.layers):
        return None
    try:
        return _Link(call)
    except NotFoldable:
        return None


def _chains(graph, skips):
    """[(calls, links)] of every chain of two calls or more, in order."""
    seen, chains = set(), []
    for call in list(graph.calls):
        if id(call) in seen:
            continue
        link = _linear(graph, call)
        if link is None:
            continue
        calls, links = [call], [link]
        seen.add(id(call))
        while is_linear(links[-1].activation):
            (output,) = calls[-1].outputs
            following = graph.sole_consumer(output)
            nxt = None if following is None else _linear(graph, following)
            if nxt is None:
                _report_branching(graph, calls[-1], output, skips)
                break
            if nxt.style != links[-1].style:
                skips.append(
                    Skip(
                        "chain",
                        (calls[-1].name, following.name),
                        f"different dtype policies or data formats "
                        f"{links[-1].style} and {nxt.style}",
                    )
                )
                break
            calls.append(following)
            links.append(nxt)
            seen.add(id(following))
        if len(calls) > 1:
            chains.append((calls, links))
    return chains


def _report_branching(graph, call, output, skips):
    """A linear output read by other layers too, one of them linear."""
    others = [c for c in output.consumers if _linear(graph, c) is not None]
    if others and (len(output.consumers) > 1 or graph.is_output(output)):
        where = "is a model output" if graph.is_output(output) else "feeds other layers"
        skips.append(
            Skip(
                "chain",
                (call.name, others[0].name),
                f"the tensor between them {where} too",
            )
        )


def _best_runs(chain, links, mode):
    """The (start, stop) runs of `chain` to merge, and Skips for the links
    left apart."""
    count = len(chain)
    ends = _end_strides(links)
    alone = [_cost_alone(link, ends, index) for index, link in enumerate(links)]
    merged, failures = {}, {}
    for start in range(count - 1):
        affine = _compose_all(links[start].affines)
        for stop in range(start + 2, count + 1):
            try:
                affine = _compose_all([affine] + links[stop - 1].affines)
            except NotFoldable as why:
                failures[start, stop - 1] = str(why)
                break
            if affine.kernel is not None and affine.kernel.size > MAX_KERNEL:
                failures[start, stop - 1] = "the merged kernel would be too large"
                break
            if any(link.weighted for link in links[start:stop]):
                merged[start, stop] = _cost_merged(affine, ends, stop)
    # costs are (FLOPs, layers, weighted layers); cheaper: fewest FLOPs, then
    # layers; always: fewest weighted layers, then FLOPs, then layers
    key = (lambda c: c[:2]) if mode == "cheaper" else (lambda c: (c[2], c[0], c[1]))
    best, choice = [(0.0, 0, 0)], [None]
    for stop in range(1, count + 1):
        options = [(_plus(best[stop - 1], alone[stop - 1]), stop - 1)]
        options += [
            (_plus(best[start], merged[start, stop]), start)
            for start in range(stop - 1)
            if (start, stop) in merged
        ]
        total, start = min(options, key=lambda option: key(option[0]))
        best.append(total)
        choice.append(start)
    runs, stop = [], count
    while stop > 0:
        start = choice[stop]
        if stop - start > 1:
            runs.append((start, stop))
        stop = start
    runs.reverse()
    return runs, _kept_apart(chain, runs, failures, merged, alone)


def _kept_apart(chain, runs, failures, merged, alone):
    inside = {i for start, stop in runs for i in range(start, stop - 1)}
    skips = []
    for index in range(len(chain) - 1):
        if index in inside:
            continue
        names = (chain[index].name, chain[index + 1].name)
        pair = merged.get((index, index + 2))
        if (index, index + 1) in failures:
            reason = failures[index, index + 1]
        elif pair is None:
            reason = "neither has weights"
        else:
            reason = _why_apart(pair, _plus(alone[index], alone[index + 1]))
        skips.append(Skip("chain", names, reason))
    return skips


def _why_apart(merged, apart):
    """Why a pair that could merge was kept apart, from (FLOPs, layers, _)."""
    numbers = (
        f"(merged {merged[0]:.4g}, apart {apart[0]:.4g} multiply-adds per output "
        "position)"
    )
    if merged[0] > apart[0]:
        return f"the merged layer would need more FLOPs {numbers}"
    if merged[0] == apart[0] and merged[1] >= apart[1]:
        return f"merging saves neither FLOPs nor layers {numbers}"
    return f"another split of the chain needs fewer FLOPs {numbers}"


def _compose_all(affines):
    result = affines[0]
    for affine in affines[1:]:
        result = compose(result, affine)
    return result


def _end_strides(links):
    """Each link's cumulative strides from the chain's input."""
    strides, ends = None, []
    for link in links:
        for affine in link.affines:
            strides = (
                affine.strides
                if strides is None
                else tuple(s * t for s, t in zip(strides, affine.strides))
            )
        ends.append(strides)
    return ends


def _plus(cost, other):
    return tuple(a + b for a, b in zip(cost, other))


def _positions(ends, index):
    """Output positions of link `index` per output position of the chain."""
    return math.prod(e / s for e, s in zip(ends[-1], ends[index]))


def _cost_alone(link, ends, index):
    before = ends[index - 1] if index else (1,) * len(ends[0])
    flops, strides = 0.0, before
    for affine in link.affines:
        strides = tuple(s * t for s, t in zip(strides, affine.strides))
        flops += affine.macs() * math.prod(e / s for e, s in zip(ends[-1], strides))
    return flops, len(link.call.layers), int(link.weighted)


def _cost_merged(affine, ends, stop):
    layers = 1 + int(affine.bias_is_map) + int(_needs_padding_layer(affine))
    per_position = affine.macs() + (affine.cout if affine.bias_is_map else 0)
    return per_position * _positions(ends, stop - 1), layers, 1


def _needs_padding_layer(affine):
    return affine.rank > 0 and padding_word(affine, causal=True) is None


def _merge(graph, calls, links, taken):
    affine = _compose_all([a for link in links for a in link.affines])
    named = [call for call, link in zip(calls, links) if link.weighted]
    name = named[-1].name
    policy, data_format = links[-1].style
    specs = layers_for(
        affine,
        name=name,
        activation=links[-1].activation,
        policy=policy,
        data_format=data_format,
        taken=taken,
    )
    graph.replace_calls(calls, specs, calls[0].single_input, name)
    removed = tuple(call.name for call in calls if call is not named[-1])
    return Fold("chain", name, removed, describe(specs, affine))


def describe(specs, affine):
    """A short text of the layers made, e.g. `Conv2D 3x3 24->24 +SpatialBias`."""
    parts = []
    for spec in specs:
        layer = spec.layer
        size = "x".join(str(k) for k in getattr(layer, "kernel_size", ()))
        text = type(layer).__name__ + (f" {size}" if size else "")
        if type(layer) in WEIGHTED:
            text += f" {affine.cin}->{affine.cout}"
            strides = getattr(layer, "strides", (1,))
            if max(strides) > 1:
                text += f" strides {tuple(strides)}"
        parts.append(text)
    return " + ".join(parts) + (" (bias map)" if np.ndim(affine.bias) > 1 else "")
