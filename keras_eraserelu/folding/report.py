"""`FoldReport`: what `fold_linear` folded into what, and what it skipped.

It prints as a summary (counts, layer calls, parameters and FLOPs before
and after, the largest output difference on the probe batch) followed by
the folds and the skipped candidates with their reasons, a few of each
kind; `to_dict()` has all of them, ready for JSON.

Example:

```python
folded, report = fold_linear(model)
print(report)                       # fold_linear('resnet50'): 53 batch norms ...
report.to_dict()["folds"][0]        # {'kind': 'batch_norm', 'into': ..., ...}
```
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

KINDS = ("identity", "batch_norm", "chain", "residual")
_PLURALS = {
    "identity": "identities removed",
    "batch_norm": "batch norms folded",
    "chain": "chains merged",
    "residual": "residuals folded",
}
_SHOWN = 6  # of each kind, when printed


@dataclass(frozen=True)
class Fold:
    """One fold.

    Attributes:
        kind: str. One of `"identity"`, `"batch_norm"`, `"chain"`,
            `"residual"`.
        into: str. The layer that computes the result now (for an identity:
            the layer whose output it passed on, or the model input).
        layers: tuple of str. The layers folded away.
        detail: str. What the result is, e.g. `"Conv2D 3x3, 24 -> 24"`.
    """

    kind: str
    into: str
    layers: tuple
    detail: str = ""

    def __str__(self):
        text = f"{' + '.join(self.layers)} -> {self.into}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class Skip:
    """A candidate that was left as it is, and why.

    Attributes:
        kind: str. As `Fold.kind`.
        layers: tuple of str. The layers concerned.
        reason: str.
    """

    kind: str
    layers: tuple
    reason: str

    def __str__(self):
        return f"{' -> '.join(self.layers)}: {self.reason}"


@dataclass(frozen=True)
class FoldReport:
    """What `fold_linear` did to a model.

    Attributes:
        model_name: str.
        settings: dict. The arguments `fold_linear` was called with.
        folds: tuple of Fold, in the order they were made.
        skipped: tuple of Skip.
        layer_calls: (before, after). Calls of layers and ops, nested
            models inlined.
        params: (before, after). Parameter counts (non-trainable included).
        flops: (before, after). Floating-point operations per example (a
            multiply-add is 2), or None where a size is unknown.
        max_difference: float or None. The largest absolute difference of
            the outputs on the probe batch (None without `check`).
        output_scale: float or None. The largest absolute output of the
            source model on the probe batch.
        tolerance: float or None. The relative tolerance checked.
        probe_shape: tuple or None. The shape of the (first) probe input.

    Example:

    ```python
    folded, report = fold_linear(model)
    report.count("batch_norm"), report.flops, report.relative_difference
    json.dumps(report.to_dict())
    ```
    """

    model_name: str
    settings: dict
    folds: tuple
    skipped: tuple
    layer_calls: tuple
    params: tuple
    flops: tuple
    max_difference: float | None = None
    output_scale: float | None = None
    tolerance: float | None = None
    probe_shape: tuple | None = None

    @property
    def relative_difference(self):
        """`max_difference / output_scale` (None without a check)."""
        if self.max_difference is None:
            return None
        return self.max_difference / self.output_scale if self.output_scale else 0.0

    def count(self, kind):
        """How many folds of this kind were made."""
        return sum(1 for fold in self.folds if fold.kind == kind)

    def to_dict(self):
        """A JSON-ready dict of everything, folds and skips included."""
        data = dataclasses.asdict(self)
        data["relative_difference"] = self.relative_difference
        return data

    def summary(self):
        """The first lines: counts, sizes and the check."""
        counts = ", ".join(f"{self.count(kind)} {_PLURALS[kind]}" for kind in KINDS)
        lines = [f"fold_linear('{self.model_name}'): {counts}"]
        (calls0, calls1), (params0, params1) = self.layer_calls, self.params
        sizes = (
            f"  layer calls {calls0} -> {calls1}, params {params0:,d} -> {params1:,d}"
        )
        flops0, flops1 = self.flops
        if flops0 and flops1:
            sizes += (
                f", FLOPs {_si(flops0)} -> {_si(flops1)} per example "
                f"({flops1 / flops0:.2f}x)"
            )
        lines.append(sizes)
        if self.max_difference is not None:
            lines.append(
                f"  largest output difference {self.max_difference:.3g} = "
                f"{self.relative_difference:.3g} of the output scale "
                f"{self.output_scale:.3g} (tolerance {self.tolerance:g}), probe "
                f"{self.probe_shape}"
            )
        return "\n".join(lines)

    def __str__(self):
        lines = [self.summary()]
        for title, items in (("folded", self.folds), ("skipped", self.skipped)):
            if items:
                lines.append(f"{title}:")
            for kind in KINDS:
                of_kind = [item for item in items if item.kind == kind]
                lines += [f"  {kind:10s} {item}" for item in of_kind[:_SHOWN]]
                if len(of_kind) > _SHOWN:
                    key = "skipped" if title == "skipped" else "folds"
                    lines.append(
                        f"  {kind:10s} ... and {len(of_kind) - _SHOWN} more "
                        f"(report.to_dict()['{key}'])"
                    )
        return "\n".join(lines)


def _si(value):
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g}"
