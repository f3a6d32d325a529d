"""Per-run metrics of a comparison: test errors, gradient statistics and
epochs to reach a target accuracy, from one run's `history.json` epochs.

`keras_eraserelu.experiments.comparison.compare` computes them for every run before it
summarises each variant over seeds.

Example:

```python
history = read_history("exp/runs/cifar_resnet8-last/seed0/history.json")
metrics = run_metrics(history["epochs"])
metrics["final_error"], metrics["best_epoch"]
epochs_to_reach(metrics["val_error"], 0.9)   # first epoch at 90% or None
```
"""

from __future__ import annotations

import math


def run_metrics(history):
    """Test errors and gradient statistics of one run.

    Args:
        history: list of epoch records (`history.json`'s "epochs").

    Returns:
        A dict: `final_error`, `best_error`, `best_epoch` (1-based),
        `val_error` and `loss` per epoch, `gradients` {layer: (mean norm,
        mean step-to-step std)}, `grad_norm` and `grad_cv` (layer averages
        of the norm and of std / norm; None without gradient statistics).

    Raises:
        ValueError: if an epoch has no finite `val_accuracy`.

    Example:

    ```python
    run_metrics(read_history("exp/runs/cifar_resnet8-last/seed0/history.json")
                ["epochs"])["final_error"]
    ```
    """
    accuracy = [_float(r.get("val_accuracy")) for r in history]
    if not accuracy or not all(math.isfinite(a) for a in accuracy):
        raise ValueError(
            f"A run's history has no finite val_accuracy per epoch: {accuracy}."
        )
    errors = [1.0 - a for a in accuracy]
    best = min(range(len(errors)), key=errors.__getitem__)
    layers = [k.split("/", 1)[1] for k in history[-1] if k.startswith("grad_mean/")]
    gradients = {}
    for layer in layers:
        norms = [_float(r.get(f"grad_mean/{layer}")) for r in history]
        stds = [
            math.sqrt(max(_float(r.get(f"grad_var/{layer}")), 0.0)) for r in history
        ]
        pairs = [(n, s) for n, s in zip(norms, stds) if math.isfinite(n + s)]
        if pairs:
            gradients[layer] = tuple(
                sum(p[i] for p in pairs) / len(pairs) for i in (0, 1)
            )
    norms = [n for n, _ in gradients.values()]
    ratios = [s / n for n, s in gradients.values() if n > 0]
    return {
        "final_error": errors[-1],
        "best_error": errors[best],
        "best_epoch": best + 1,
        "val_error": errors,
        "loss": [_float(r.get("loss")) for r in history],
        "gradients": gradients,
        "grad_norm": sum(norms) / len(norms) if norms else None,
        "grad_cv": sum(ratios) / len(ratios) if ratios else None,
    }


def epochs_to_reach(val_error, target_accuracy):
    """The first epoch (1-based) whose test accuracy reaches the target, or
    None.

    Example:

    ```python
    epochs_to_reach([0.5, 0.2, 0.1], 0.8)    # 2
    ```
    """
    for epoch, error in enumerate(val_error, start=1):
        if 1.0 - error >= target_accuracy - 1e-12:
            return epoch
    return None


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
