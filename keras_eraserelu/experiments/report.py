"""The results of `compare`: the table, `results.json` and `results.csv`.

Errors are in percent in the table, with intervals inside [0, 100] %
(`stats.summarize_rate`) and, for up to `PER_SEED_MAX` seeds, each seed's
final error; differences of errors have Welch intervals clipped to
[-100, 100] points. Every summary names its `interval_method` in
`results.json` and `results.csv`. Intervals that one seed leaves undefined
read "n/a" in the table and are None (JSON) or "nan" (CSV) in the files,
which are written atomically.

Example:

```python
print(format_table(result))
write_results(result, "runs/exp", plots=True)
```
"""

from __future__ import annotations

import csv
import io
import json
import math
import os

from keras_eraserelu.experiments.plots import plot_experiment
from keras_eraserelu.experiments.stats import json_number
from keras_eraserelu.training import atomic_write_text

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
# Per-variant metrics summarised over seeds, and those compared between variants.
METRICS = ("final_error", "best_error", "epochs_to_target", "grad_norm", "grad_cv")
DIFFERENCES = ("final_error", "best_error")
# The metrics that are rates in [0, 1], so their intervals stay inside it.
RATES = ("final_error", "best_error")
# The least value each other metric can take, where its interval is cut.
LOWER_BOUNDS = {"epochs_to_target": 1, "grad_norm": 0.0, "grad_cv": 0.0}
# The table lists each seed's final error up to this many seeds.
PER_SEED_MAX = 10


def write_results(result, out, plots):
    os.makedirs(out, exist_ok=True)
    result.files["json"] = os.path.join(out, RESULTS_JSON)
    result.files["csv"] = os.path.join(out, RESULTS_CSV)
    if plots:
        result.files.update(plot_experiment(result, out))
    atomic_write_text(result.files["csv"], _csv(result))
    atomic_write_text(result.files["json"], json.dumps(result.to_dict(), indent=2))


def result_to_dict(result):
    differences = {d["variant"]: d for d in result.differences}
    variants = []
    for variant in result.variants:
        summaries = result.summaries[variant.name]
        own = [r for r in result.runs if r["variant"] == variant.name]
        entry = {
            "name": variant.name,
            "model": variant.model_name,
            "erase": variant.erase,
            "depth": variant.depth,
            **{metric: summaries[metric].to_dict() for metric in METRICS},
            "target_reached": sum(r["epochs_to_target"] is not None for r in own),
            "gradients": _mean_gradients(own),
            "runs": [
                _json_ready({k: v for k, v in r.items() if k != "history"}) for r in own
            ],
        }
        difference = differences.get(variant.name)
        if difference is not None:
            entry["baseline"] = difference["baseline"]
            for metric in DIFFERENCES:
                entry[f"{metric}_difference"] = difference[metric].to_dict()
        variants.append(entry)
    return {
        "config": _json_ready(result.config),
        "variants": variants,
        "trained": [list(t) for t in result.trained],
        "files": dict(result.files),
    }


def _mean_gradients(runs):
    """Per layer: the seed-average of mean norm and step-to-step std."""
    layers = {}
    for run in runs:
        for layer, (norm, std) in run["gradients"].items():
            layers.setdefault(layer, []).append((norm, std))
    return {
        layer: {
            "norm_mean": sum(p[0] for p in pairs) / len(pairs),
            "norm_std": sum(p[1] for p in pairs) / len(pairs),
        }
        for layer, pairs in layers.items()
    }


def _csv(result):
    rows = []
    for entry in result_to_dict(result)["variants"]:
        row = {k: entry[k] for k in ("name", "model", "erase", "depth")}
        row["seeds"] = entry["final_error"]["n"]
        for metric in METRICS:
            for field in ("mean", "std", "ci_low", "ci_high", "interval_method"):
                row[f"{metric}_{field}"] = entry[metric][field]
        row["target_reached"] = entry["target_reached"]
        row["baseline"] = entry.get("baseline")
        for metric in DIFFERENCES:
            difference = entry.get(f"{metric}_difference") or {}
            for field in ("mean", "ci_low", "ci_high", "p_value"):
                row[f"{metric}_difference_{field}"] = difference.get(field)
        rows.append({k: "nan" if v is None else v for k, v in row.items()})
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return stream.getvalue()


def format_table(result):
    """The table of an `ExperimentResult`: errors in percent, "n/a" where
    an interval is undefined (one seed), each seed's final error for up to
    `PER_SEED_MAX` seeds."""
    config = result.config
    level = f"{100 * config['confidence']:g}%"
    target = f"{100 * config['target_accuracy']:.1f}%"
    header = [
        "variant",
        "seeds",
        "final error %",
        "best error %",
        f"epochs to {target}",
        "grad norm",
        "grad CV",
    ]
    rows = [header]
    for variant in result.variants:
        summary = result.summaries[variant.name]
        own = [r for r in result.runs if r["variant"] == variant.name]
        reached = f"({sum(r['epochs_to_target'] is not None for r in own)}/{len(own)})"
        rows.append(
            [
                variant.name,
                str(len(own)),
                _interval(summary["final_error"], 100, 2),
                _interval(summary["best_error"], 100, 2),
                f"{_interval(summary['epochs_to_target'], 1, 1)} {reached}",
                _interval(summary["grad_norm"], 1, 3),
                _interval(summary["grad_cv"], 1, 2),
            ]
        )
    lines = [
        f"Test error on {config['dataset']} over seeds {config['seeds']}: mean "
        f"[{level} CI; errors: Student t on the logit scale, inside 0-100%; "
        "others: Student t, cut at their least possible value]; grad norm and "
        "CV (step-to-step std / mean) averaged over layers.",
        *_aligned(rows),
        *_per_seed(result),
    ]
    if result.differences:
        lines.append(
            f"\nVariant minus baseline, percentage points [{level} CI, Welch, "
            "clipped to +-100]; p: Welch's t-test of equal means."
        )
    for entry in result.differences:
        parts = [f"{entry['variant']} - {entry['baseline']}:"]
        for metric in DIFFERENCES:
            difference = entry[metric]
            p_value = (
                "n/a" if math.isnan(difference.p_value) else f"{difference.p_value:.3g}"
            )
            parts.append(
                f"{metric.replace('_', ' ')} {_interval(difference, 100, 2, sign=True)}"
                f" p={p_value}"
            )
        lines.append("  ".join(parts))
    return "\n".join(lines)


def _aligned(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]


def _per_seed(result):
    """Lines listing each seed's final error (%), or a pointer to
    `results.json` beyond `PER_SEED_MAX` seeds."""
    by_variant = {
        v.name: {
            r["seed"]: r["final_error"] for r in result.runs if r["variant"] == v.name
        }
        for v in result.variants
    }
    seeds = sorted({s for errors in by_variant.values() for s in errors})
    if not seeds:
        return []
    if max(len(errors) for errors in by_variant.values()) > PER_SEED_MAX:
        return [
            f"\nEach seed's final error: in {RESULTS_JSON} (more than "
            f"{PER_SEED_MAX} seeds)."
        ]
    rows = [["seed", *map(str, seeds)]]
    for name, errors in by_variant.items():
        rows.append(
            [name, *(f"{100 * errors[s]:.2f}" if s in errors else "-" for s in seeds)]
        )
    return ["\nFinal test error % per seed:", *_aligned(rows)]


def _interval(summary, scale, digits, sign=False):
    if math.isnan(summary.mean):
        return "n/a"
    number = f"{{:{'+' if sign else ''}.{digits}f}}"
    text = number.format(scale * summary.mean)
    if math.isnan(summary.ci_low):
        return f"{text} [n/a]"
    return f"{text} [{number.format(scale * summary.ci_low)}, " + (
        f"{number.format(scale * summary.ci_high)}]"
    )


def _json_ready(value):
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return json_number(value)
