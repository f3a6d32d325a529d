"""PNG plots of a comparison (`keras_eraserelu.experiments.comparison.compare`).

- `curves.png`: test error and training loss against epoch; one colour per
  variant, a thin line per seed, the mean in bold with its confidence band
  (for the error the same interval as the table, inside [0, 100] %:
  `stats.summarize_rate`; for the loss Student t).
- `difference.png`: each variant's final and best test error minus its
  baseline's, with the Welch interval (clipped to [-100, 100] points, as
  `stats.welch_difference(..., rates=True)` gives it) and p-value.
- `depth_sweep.png`: the gain of erasing (baseline error minus variant
  error) against depth, when the erased variants come in several depths.
- `gradients.png`: per layer, the mean training-gradient norm and its
  step-to-step spread, one colour per variant.

Each `plot_<name>(result, path)` takes an `ExperimentResult` and the PNG file
to write, and returns `path` (`plot_depth_sweep` None when there is a single
depth). Every file is written to a temporary name and moved into place, so an
interrupted run never leaves half a picture.

Example:

```python
files = plot_experiment(result, "experiments/r56")   # {"curves": ".../curves.png", ...}
```
"""

from __future__ import annotations

import os
import re

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_eraserelu.experiments.stats import summarize, summarize_rate  # noqa: E402

DPI = 110


def plot_experiment(result, directory):
    """Writes every plot that applies to `result` into `directory`.

    Args:
        result: an `ExperimentResult`.
        directory: str. Where the PNG files go.

    Returns:
        A dict: plot name -> path, for the plots written.
    """
    files = {"curves": plot_curves(result, os.path.join(directory, "curves.png"))}
    if result.differences:
        path = os.path.join(directory, "difference.png")
        files["difference"] = plot_difference(result, path)
    sweep = plot_depth_sweep(result, os.path.join(directory, "depth_sweep.png"))
    if sweep:
        files["depth_sweep"] = sweep
    gradients = plot_gradients(result, os.path.join(directory, "gradients.png"))
    if gradients:
        files["gradients"] = gradients
    return files


def plot_curves(result, path):
    """Test error (%) and training loss per epoch, per seed and on average."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    confidence = result.config["confidence"]
    for index, variant in enumerate(result.variants):
        color = _color(index)
        own = [r for r in result.runs if r["variant"] == variant.name]
        for axis, key, scale, interval in (
            (axes[0], "val_error", 100.0, summarize_rate),  # inside [0, 100] %
            (axes[1], "loss", 1.0, summarize),
        ):
            length = min(len(r[key]) for r in own)
            values = np.array([r[key][:length] for r in own], dtype="float64")
            curves = values * scale
            epochs = np.arange(1, length + 1)
            for curve in curves:
                axis.plot(epochs, curve, color=color, linewidth=0.7, alpha=0.35)
            axis.plot(
                epochs,
                curves.mean(axis=0),
                color=color,
                linewidth=2.0,
                label=f"{variant.name} ({len(own)} seeds)",
            )
            if len(own) > 1 and np.isfinite(curves).all():
                bands = [interval(list(column), confidence) for column in values.T]
                axis.fill_between(
                    epochs,
                    [scale * b.ci_low for b in bands],
                    [scale * b.ci_high for b in bands],
                    color=color,
                    alpha=0.18,
                    linewidth=0,
                )
    level = f"{100 * confidence:g}%"
    axes[0].set(
        xlabel="epoch",
        ylabel="test error (%)",
        title=f"Test error: seeds (thin), mean and {level} CI (logit t)",
    )
    axes[1].set(xlabel="epoch", ylabel="training loss", title="Training loss")
    axes[1].set_yscale("log")
    axes[0].set_ylim(bottom=0)
    for axis in axes:
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0].legend(fontsize="small")
    return _save(figure, path)


def plot_difference(result, path):
    """Variant minus baseline test error (percentage points) with intervals."""
    entries = result.differences
    figure, axis = plt.subplots(figsize=(7.5, 1.2 + 0.75 * len(entries)))
    rows = np.arange(len(entries))
    for offset, metric, color in (
        (-0.18, "final_error", "#1f77b4"),
        (0.18, "best_error", "#ff7f0e"),
    ):
        differences = [entry[metric] for entry in entries]
        means = np.array([100 * d.mean for d in differences])
        low = np.array([100 * d.ci_low for d in differences])
        high = np.array([100 * d.ci_high for d in differences])
        errors = np.nan_to_num(np.vstack([means - low, high - means]))
        label = metric.replace("_", " ")
        axis.barh(
            rows + offset,
            means,
            height=0.34,
            color=color,
            label=label,
            xerr=errors,
            capsize=4,
        )
        for row, difference in zip(rows, differences):
            p_value = (
                "n/a" if np.isnan(difference.p_value) else f"{difference.p_value:.3g}"
            )
            axis.annotate(
                f"p={p_value}",
                (1.01, row + offset),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize="small",
                color=color,
            )
    axis.axvline(0.0, color="black", linewidth=0.8)
    axis.set_yticks(rows, [f"{e['variant']}\n- {e['baseline']}" for e in entries])
    axis.invert_yaxis()
    level = f"{100 * result.config['confidence']:g}%"
    axis.set(
        xlabel=f"test error difference (points), {level} CI (Welch, within "
        "+-100); < 0: the variant errs less"
    )
    axis.legend(fontsize="small")
    return _save(figure, path)


def plot_depth_sweep(result, path):
    """Gain of erasing against depth; None unless there are several depths.

    The gain is the baseline's final test error minus the erased variant's,
    in percentage points, for pairs of the same depth.
    """
    depth = {v.name: v.depth for v in result.variants}
    erased = {v.name: v for v in result.variants if v.erased}
    points = {}
    for entry in result.differences:
        variant = erased.get(entry["variant"])
        if variant is None or variant.depth is None:
            continue
        if depth[entry["baseline"]] != variant.depth:
            continue
        points.setdefault(str(variant.erase), []).append(
            (variant.depth, entry["final_error"])
        )
    if len({d for values in points.values() for d, _ in values}) < 2:
        return None
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for index, (erase, values) in enumerate(sorted(points.items())):
        values.sort(key=lambda item: item[0])
        depths = [d for d, _ in values]
        gains = np.array([-100 * diff.mean for _, diff in values])
        errors = np.nan_to_num(
            np.array(
                [
                    [100 * (diff.ci_high - diff.mean), 100 * (diff.mean - diff.ci_low)]
                    for _, diff in values
                ]
            ).T
        )
        axis.errorbar(
            depths,
            gains,
            yerr=errors,
            color=_color(index),
            marker="o",
            capsize=4,
            label=f"erase={erase}",
        )
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xscale("log")
    axis.set_xticks(sorted({d for values in points.values() for d, _ in values}))
    axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    level = f"{100 * result.config['confidence']:g}%"
    axis.set(
        xlabel="depth (layers)",
        ylabel="gain: error without - with (points)",
        title=f"Does a deeper network gain more? ({level} CI)",
    )
    axis.legend(fontsize="small")
    return _save(figure, path)


def plot_gradients(result, path):
    """Per layer: mean gradient norm (band: step-to-step std) and the relative
    spread std / mean; None when no run recorded gradient statistics.

    Layers of one kind (the last word of the name without digits: conv, bn,
    fc, ...) are joined by one line style, so a conv-BN network reads as two
    lines per variant instead of a zigzag.
    """
    series = []
    for variant in result.variants:
        layers = {}
        for run in result.runs:
            if run["variant"] == variant.name:
                for layer, pair in run["gradients"].items():
                    layers.setdefault(layer, []).append(pair)
        if layers:
            pairs = np.array([np.mean(v, axis=0) for v in layers.values()])
            series.append((variant.name, list(layers), pairs[:, 0], pairs[:, 1]))
    if not series:
        return None
    figure, axes = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    styles = ("-", "--", ":", "-.")
    for index, (name, layers, norms, spreads) in enumerate(series):
        kinds = [re.sub(r"\d+$", "", layer.rsplit("_", 1)[-1]) for layer in layers]
        groups = sorted(set(kinds), key=kinds.index)
        if len(groups) > len(styles):
            groups, kinds = ["layer"], ["layer"] * len(layers)
        for style, kind in zip(styles, groups):
            where = np.array([k == kind for k in kinds])
            positions = np.arange(1, len(layers) + 1)[where]
            norm, spread = norms[where], spreads[where]
            options = dict(
                color=_color(index),
                linestyle=style,
                linewidth=1.0,
                marker="o",
                markersize=2.5,
                label=f"{name} {kind}",
            )
            axes[0].plot(positions, norm, **options)
            axes[0].fill_between(
                positions,
                np.maximum(norm - spread, norm * 1e-3),
                norm + spread,
                color=_color(index),
                alpha=0.15,
                linewidth=0,
            )
            axes[1].plot(positions, spread / np.maximum(norm, 1e-12), **options)
    axes[0].set_yscale("log")
    axes[0].set(
        ylabel="gradient norm",
        title="Per-layer training-gradient norm: mean over steps, band ± "
        "step-to-step std (averaged over seeds)",
    )
    axes[1].set(
        xlabel="layer with weights (input to output)",
        ylabel="std / mean (relative spread)",
    )
    axes[0].legend(fontsize="x-small", ncol=2)
    return _save(figure, path)


def _color(index):
    return plt.get_cmap("tab10")(index % 10)


def _save(figure, path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        figure.tight_layout()
        figure.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight")
        os.replace(temporary, path)
    finally:
        plt.close(figure)
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
