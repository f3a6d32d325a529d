"""`TuningResult`: what a placement search found, as a table, files and a picture.

`tune_placements` returns one: the best placement (arguments for
`erase_relu`), the best trained model, and one row per trial that prints as
a table, writes CSV and JSON, and draws a trials x modules heat map.
`result_from_search` reads it off a finished Keras Tuner search.

Example:

```python
result = tune_placements("cifar_resnet8", "digits", tuner="random",
                         max_trials=4, epochs=2, directory="tune")
print(result)                                   # one row per trial
result.to_csv("tune/results.csv")
result.plot("tune/placements.png")              # red: erased, blue: kept
erase_relu(model, **result.best_placement)      # apply the winner
```
"""

from __future__ import annotations

import csv
import dataclasses
import json
import warnings

from keras_eraserelu.core import PLAN_COLORS


@dataclasses.dataclass
class TuningResult:
    """What `tune_placements` returns.

    On a distributed worker only `role` and `project_dir` are set: the chief
    holds the results.

    Attributes:
        best_placement: dict or None. `erase_relu(model, **best_placement)`.
        best_hyperparameters: dict or None. The best trial's values.
        best_score: float or None. Its objective value.
        best_model: keras.Model or None. The best trial's trained model.
        trials: list of dict. One row per trial: `trial`, `status`, `score`,
            the hyperparameter values, `epochs`, `batch_size`, `erased` (site
            count), `erased_modules` (names), `message` (why it failed) and
            `rank` (1 for the best; None for a trial that did not complete).
        modules: list of str. The model's module names, in order.
        objective: str. The objective's name.
        role: str. `"single"`, `"chief"` or `"worker"`.
        project_dir: str. Keras Tuner's project directory.
        tuner: the Keras Tuner tuner.
    """

    best_placement: dict | None
    best_hyperparameters: dict | None
    best_score: float | None
    best_model: object
    trials: list
    modules: list
    objective: str
    role: str
    project_dir: str
    tuner: object = dataclasses.field(repr=False, default=None)

    @property
    def failed(self):
        """The rows of the trials that did not complete."""
        return [row for row in self.trials if row["status"] != "COMPLETED"]

    def to_dict(self):
        """A JSON-ready dict: the best trial and every row."""
        return {
            "objective": self.objective,
            "best_score": self.best_score,
            "best_placement": self.best_placement,
            "best_hyperparameters": self.best_hyperparameters,
            "modules": list(self.modules),
            "trials": self.trials,
        }

    def to_json(self, path):
        """Writes `to_dict()` to `path`."""
        with open(path, "w") as handle:
            json.dump(self.to_dict(), handle, indent=2)

    def to_csv(self, path):
        """Writes one line per trial to `path` (lists joined with `;`)."""
        columns = _columns(self.trials)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            for row in self.trials:
                writer.writerow({key: _cell(row.get(key), ";") for key in columns})

    def plot(self, path=None):
        """Heat map of the trials (rows, best first) by modules (columns).

        A cell is red where the trial erased a ReLU of that module; each row
        is labelled with its trial id and score.

        Args:
            path: str or None. Where to save the picture.

        Returns:
            The matplotlib Figure.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        rows = sorted(self.trials, key=_rank)
        cells = [
            [name in row["erased_modules"] for name in self.modules] for row in rows
        ]
        width = min(max(5.0, 2.5 + 0.5 * len(self.modules)), 40.0)
        fig, ax = plt.subplots(figsize=(width, max(2.5, 0.3 * len(rows) + 2.0)))
        ax.imshow(
            cells or [[False] * len(self.modules)],
            cmap=ListedColormap([PLAN_COLORS["keep"], PLAN_COLORS["erase"]]),
            vmin=0,
            vmax=1,
            aspect="auto",
        )
        ax.set_xticks(range(len(self.modules)), self.modules, rotation=90, fontsize=7)
        labels = [
            f"trial {r['trial']}  {_cell(r['score']) or r['status']}" for r in rows
        ]
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.set_title(
            f"Trials by {self.objective}, best on top\nred: erased, blue: kept",
            fontsize=9,
        )
        fig.tight_layout()
        if path:
            fig.savefig(path, dpi=120, bbox_inches="tight")
        return fig

    def __str__(self):
        if self.role == "worker":
            return f"worker: the chief holds the results ({self.project_dir})"
        columns = [c for c in _columns(self.trials) if c != "erased_modules"]
        rows = [[_cell(row.get(c), " ") for c in columns] for row in self.trials]
        widths = [max(len(x) for x in [c, *col]) for c, col in zip(columns, zip(*rows))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
            "  ".join("-" * w for w in widths),
        ]
        lines += [
            "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows
        ]
        lines.append(
            f"best {self.objective}: {_cell(self.best_score)}; placement "
            f"{self.best_placement}"
        )
        return "\n".join(lines)


def result_from_search(search, hypermodel, modules, role, project_dir):
    """The `TuningResult` of a finished search: its trials, ranked, and the best.

    Args:
        search: keras_tuner.Tuner. The tuner, after `search`.
        hypermodel: PlacementHyperModel. The hypermodel it searched.
        modules: list of str. The model's module names, in order.
        role: str. `"single"` or `"chief"`.
        project_dir: str. Keras Tuner's project directory.

    Returns:
        A `TuningResult` whose `best_model` is loaded from the best
        trial's checkpoint (None when no trial completed).
    """
    rows = []
    for trial_id in sorted(search.oracle.trials):
        trial = search.oracle.trials[trial_id]
        all_values = trial.hyperparameters.values
        values = {k: v for k, v in all_values.items() if not k.startswith("tuner/")}
        plan = hypermodel.plan(values)
        epochs, batch_size = hypermodel.training_values(all_values)
        message = (trial.message or "").strip().splitlines()
        rows.append(
            {
                "trial": trial_id,
                "status": trial.status,
                "score": None if trial.score is None else float(trial.score),
                "rank": None,
                **values,
                "epochs": epochs,
                "batch_size": batch_size,
                "erased": len(plan.erased),
                "erased_modules": sorted(
                    {s.module_name for s in plan.erased if s.module is not None},
                    key=modules.index,
                ),
                "message": message[-1] if message else "",
            }
        )
    ranked = search.oracle.get_best_trials(len(rows))
    ranked = [t.trial_id for t in ranked if t.status == "COMPLETED"]
    for row in rows:
        row["rank"] = ranked.index(row["trial"]) + 1 if row["trial"] in ranked else None
    best = search.oracle.trials[ranked[0]] if ranked else None
    best_values = best and {
        k: v
        for k, v in best.hyperparameters.values.items()
        if not k.startswith("tuner/")
    }
    return TuningResult(
        best_placement=best and hypermodel.placement(best_values),
        best_hyperparameters=best_values,
        best_score=best and float(best.score),
        best_model=best and _load_model(search, best),
        trials=rows,
        modules=modules,
        objective=search.oracle.objective.name,
        role=role,
        project_dir=project_dir,
        tuner=search,
    )


def _load_model(search, trial):
    with warnings.catch_warnings():
        # The checkpoint holds the optimizer's state too; the weights suffice.
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        return search.load_model(trial)


def _columns(rows):
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def _rank(row):
    return (row["rank"] is None, row["rank"] or 0, row["trial"])


def _cell(value, separator=" "):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return separator.join(str(v) for v in value)
    return str(value)
