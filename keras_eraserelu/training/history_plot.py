"""Plots of per-site and per-layer statistics logged during training.

`ActivationStats` logs `dead/<site>` and `zero/<site>`, `GradientStats`
`grad_mean/<layer>` and `grad_var/<layer>`, `ProgressiveErase` `alpha`: one
line per site or layer against epoch, coloured from input (light) to output
(dark) so depth reads at a glance.

Example:

```python
history = model.fit(..., callbacks=[ActivationStats(x_probe)])
plot_history_stats(history, "dead/", "dead_units.png")
```
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

TITLES = {
    "dead/": "dead units (never positive on the probe batch)",
    "zero/": "zero outputs",
    "grad_mean/": "gradient norm, mean over the epoch's steps",
    "grad_var/": "gradient norm, variance over the epoch's steps",
}


def plot_history_stats(history, prefix="dead/", path=None, log_scale=None):
    """Draws every logged series whose name starts with `prefix`.

    Args:
        history: a `keras.callbacks.History`, its `.history` dict, or a list
            of per-epoch records (as `TrainResult.history`).
        prefix: str. `"dead/"`, `"zero/"`, `"grad_mean/"`, `"grad_var/"` or
            any other prefix of logged keys.
        path: str or None. Where to save the picture.
        log_scale: bool or None. Log y axis; None: for gradient statistics.

    Returns:
        The matplotlib Figure.

    Raises:
        ValueError: when no logged series starts with `prefix`.
    """
    series = _series(history, prefix)
    if not series:
        raise ValueError(
            f"No logged series starts with {prefix!r}. Logged keys: "
            f"{sorted(_keys(history))[:10]}. Add the callback that logs them "
            "(ActivationStats for dead/ and zero/, GradientStats for grad_*)."
        )
    figure, axes = plt.subplots(figsize=(8, 4.5))
    colours = plt.cm.viridis_r
    count = len(series)
    for i, (name, values) in enumerate(series.items()):
        axes.plot(
            range(len(values)),
            values,
            color=colours(0.15 + 0.8 * i / max(count - 1, 1)),
            lw=1.2,
            label=name[len(prefix) :] if count <= 12 else None,
        )
    if log_scale if log_scale is not None else prefix.startswith("grad_"):
        axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_title(
        TITLES.get(prefix, prefix) + f" ({count} series, light = near the input)",
        fontsize=10,
    )
    if count <= 12:
        axes.legend(fontsize=7, ncol=2, frameon=False)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    plt.close(figure)
    return figure


def _records_to_dict(records):
    keys = {}
    for record in records:
        for key, value in record.items():
            keys.setdefault(key, []).append(value)
    return keys


def _as_dict(history):
    if hasattr(history, "history"):
        return history.history
    if isinstance(history, list):
        return _records_to_dict(history)
    return history


def _keys(history):
    return _as_dict(history).keys()


def _series(history, prefix):
    return {k: v for k, v in _as_dict(history).items() if k.startswith(prefix)}
