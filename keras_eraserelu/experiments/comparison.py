"""`compare`: variants x seeds through `train`, with intervals, tests and plots.

Each variant (a model and an erase placement) trains once per seed in
`out/runs/<variant>/seed<s>` through `keras_eraserelu.training.trainer.train`, which
writes `history.json` atomically per epoch and TensorBoard logs there, so
`tensorboard --logdir out` shows every variant and seed. Then, per variant:
final and best test error (1 - val_accuracy) as mean, std and an interval
inside [0, 100] % over seeds (Student t on the logit scale,
`stats.summarize_rate`), each seed's final error in the table for up to 10
seeds; epochs to reach a target accuracy; the mean and
step-to-step spread of per-layer gradient norms (`GradientStats`); and the
difference of each variant from its baseline, with Welch's interval
(clipped to [-100, 100] points) and t-test. Printed as a table, written to
`out/results.json`, `out/results.csv` and PNG plots, each file replaced
atomically.

Resumable: a run whose `history.json` says it is complete is read, not
repeated; an interrupted one resumes from its last epoch checkpoint (`train`
does that);
delete a run's directory to redo it.

The variants (`Variant`, `as_variants`, `depth_variants`, `check_fits`) live in
`keras_eraserelu.experiments.variants` and the per-run metrics (`run_metrics`,
`epochs_to_reach`) in `keras_eraserelu.experiments.metrics`.

Example:

```python
result = compare(
    [("cifar_resnet56", "none"), ("cifar_resnet56", "last")],
    "cifar10", seeds=5, out="experiments/r56",
)
print(result)                       # the table
result.differences[0]["final_error"].p_value
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import time

import keras

from keras_eraserelu.core import check_number, is_int, tensorflow_available
from keras_eraserelu.data import dataset_source
from keras_eraserelu.experiments.metrics import epochs_to_reach, run_metrics
from keras_eraserelu.experiments.report import (
    DIFFERENCES,
    LOWER_BOUNDS,
    METRICS,
    RATES,
    format_table,
    result_to_dict,
    write_results,
)
from keras_eraserelu.experiments.stats import (
    summarize,
    summarize_rate,
    welch_difference,
)
from keras_eraserelu.experiments.variants import (
    as_variants,
    check_fits,
)
from keras_eraserelu.training import (
    HISTORY_FILE,
    RunLock,
    check_output_dir,
    checkpoint_epoch,
    clear_run,
    existing_run,
    is_chief,
    read_history,
    run_identity,
    train,
)


@dataclasses.dataclass
class ExperimentResult:
    """What `compare` returns; `str(result)` is the table.

    Attributes:
        variants: list of `Variant`.
        runs: list of dict, one per (variant, seed): `variant`, `seed`,
            `out`, `history` and the run's metrics.
        summaries: dict variant name -> dict metric -> `stats.Summary`.
        differences: list of dict: `variant`, `baseline` and, per error
            metric, a `stats.Difference` (variant minus baseline).
        trained: list of (variant name, seed) trained by this call.
        config: dict. The comparison's settings.
        files: dict. Name -> path of the files written.
    """

    variants: list
    runs: list
    summaries: dict
    differences: list
    trained: list
    config: dict
    files: dict = dataclasses.field(default_factory=dict)

    def table(self):
        """The results as a text table (errors in percent)."""
        return format_table(self)

    def __str__(self):
        return self.table()

    def to_dict(self):
        """A JSON-ready dict (undefined numbers are None)."""
        return result_to_dict(self)


def compare(
    variants,
    dataset="digits",
    seeds=3,
    recipe=None,
    *,
    out,
    epochs=None,
    batch_size=None,
    strategy="auto",
    precision="auto",
    jit_compile="auto",
    steps_per_epoch=None,
    validation_steps=None,
    data_dir=None,
    manual_dir=None,
    target_accuracy=None,
    gradient_stats=10,
    confidence=0.95,
    plots=True,
    verbose=0,
    restart=False,
    reinitialize=None,
):
    """Trains every variant once per seed and compares them with statistics.

    A variant is compared with its baseline: the variant of the same model
    with erase "none" when there is one, else the first variant.

    Args:
        variants: list of `Variant`, `(model, erase)` pairs, or models:
            registry or keras.applications names, builders, keras.Model
            objects, `.keras` paths.
        dataset: anything `train` accepts: a catalogue or registered name,
            "tfds:NAME", arrays, a folder, a `.npz` file, a tf.data pair, a
            `DataSource`. Defaults to "digits".
        seeds: int n (seeds 0..n-1) or a list of ints. Defaults to 3.
        recipe: str or None. A recipe for all variants; None: each model's.
        out: str. The experiment directory, written by the chief alone
            (under several workers or JAX processes the others hold no lock
            there and write their runs in temporary directories).
        epochs, batch_size, strategy, precision, jit_compile,
            steps_per_epoch, validation_steps, data_dir, manual_dir: as in
            `train`.
        target_accuracy: float in (0, 1] or None. For "epochs to reach";
            None: the lowest mean final accuracy over the variants.
        gradient_stats: int or False. Record gradient norms every N steps.
            Defaults to 10.
        confidence: float in (0, 1). Defaults to 0.95.
        plots: bool. Write the PNG plots. Defaults to True.
        verbose: 0, 1 or 2: Keras progress of each run. Defaults to 0.
        restart: bool. Delete the runs' files under `out` and train every run
            anew. Defaults to False (finished runs are read, interrupted ones
            resumed).
        reinitialize: bool or None. A given model (keras.Model, file or
            KerasHub preset) starts each seed from fresh weights drawn under
            the seed (True), or every seed from its own weights (False:
            erasure while fine-tuning). None: True, except for a preset.
            Defaults to None.

    Returns:
        An `ExperimentResult`.

    Raises:
        TypeError, ValueError: for an unknown model or placement, seeds that
            are not distinct ints, a builder that does not fit the data set,
            or a run directory that holds another run; all before training.

    Example:

    ```python
    result = compare(["cifar_resnet8", ("cifar_resnet8", "last")], "digits",
                     seeds=2, epochs=2, out="exp")
    ```
    """
    variants = as_variants(variants, reinitialize=reinitialize)
    source = dataset_source(dataset, data_dir=data_dir)
    seeds = _seeds(seeds)
    out = _check_arguments(out, target_accuracy, confidence)
    train_kwargs = {
        "recipe": recipe,
        "epochs": epochs,
        "batch_size": batch_size,
        "strategy": strategy,
        "precision": precision,
        "jit_compile": jit_compile,
        "steps_per_epoch": steps_per_epoch,
        "validation_steps": validation_steps,
        "data_dir": data_dir,
        "manual_dir": manual_dir,
        "gradient_stats": gradient_stats,
        "verbose": verbose,
    }
    check_output_dir(out)
    chief = is_chief()  # of several workers or processes, the one that writes
    with RunLock(out, purpose="compare") if chief else contextlib.nullcontext():
        if restart and chief:
            _clear_runs(out, variants, seeds)
        plan = _plan(variants, seeds, out, source, recipe, epochs, batch_size)
        _check_fits(plan, variants, source)
        _announce(plan)
        runs, trained = _run_all(plan, source, train_kwargs)
        config = {
            "dataset": source.identity,
            "data": source.record,
            "seeds": seeds,
            "recipe": recipe,
            "epochs": epochs,
            "batch_size": batch_size,
            "steps_per_epoch": steps_per_epoch,
            "precision": precision,
            "confidence": confidence,
            "gradient_stats": gradient_stats,
            "out": out,
        }
        result = _analyse(variants, runs, trained, config, target_accuracy)
        if chief:
            write_results(result, out, plots)
    if chief:
        _print_results(result, plan, trained, out)
    return result


def _check_arguments(out, target_accuracy, confidence):
    """Checks the arguments that no other step checks; returns `out` as a str."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"`out` must be a directory path. Received: out={out!r}.")
    if target_accuracy is not None:
        check_number("target_accuracy", target_accuracy, 0, 1, open_low=True)
    summarize([], confidence)  # checks `confidence`
    return os.fspath(out)


def _clear_runs(out, variants, seeds):
    """Deletes the files of every run of the comparison (`restart=True`)."""
    for variant in variants:
        for seed in seeds:
            clear_run(_run_dir(out, variant, seed))


def _check_fits(plan, variants, source):
    """Builds each variant that still has a run to train, once, to check it
    fits the data set before any training."""
    for variant in variants:
        if not all(done for v, _, _, done in plan if v is variant):
            check_fits(variant, source)


def _print_results(result, plan, trained, out):
    """The table, what was trained now, and where the files are."""
    print(result.table())
    print(
        f"\n{len(trained)} runs trained now, {len(plan) - len(trained)} already "
        f"complete. Results: {result.files['json']}, {result.files['csv']}."
    )
    for name in ("curves", "difference", "depth_sweep", "gradients"):
        if name in result.files:
            print(f"  {name} plot: {result.files[name]}")
    if tensorflow_available():  # Keras writes the logs with TensorFlow
        print(f"Every run's training curves: tensorboard --logdir {out}")


def _plan(variants, seeds, out, dataset, recipe, epochs, batch_size):
    """(variant, seed, run directory, complete?) per run; raises before any
    training if a run directory holds another run."""
    plan = []
    for variant in variants:
        for seed in seeds:
            run_dir = _run_dir(out, variant, seed)
            identity = run_identity(
                variant.source,
                dataset,
                variant.erase,
                epochs,
                batch_size,
                recipe,
                seed,
            )
            previous = existing_run(run_dir, identity)
            done = bool(previous and previous.get("completed"))
            plan.append((variant, seed, run_dir, done))
    return plan


def _run_dir(out, variant, seed):
    return os.path.join(out, "runs", variant.name, f"seed{seed}")


def _announce(plan):
    """Says which runs are read, which resumed and which started."""
    lines = {"read (complete)": [], "resumed": [], "started": []}
    for variant, seed, run_dir, done in plan:
        finished = 0 if done else checkpoint_epoch(run_dir)
        label = f"{variant.name} seed {seed}"
        if done:
            lines["read (complete)"].append(label)
        elif finished:
            lines["resumed"].append(f"{label} (after epoch {finished})")
        else:
            lines["started"].append(label)
    for how, labels in lines.items():
        if labels:
            print(f"{how}: {', '.join(labels)}", flush=True)


def _run_all(plan, dataset, train_kwargs):
    """Trains the runs not complete; one progress line per run."""
    policy = keras.config.dtype_policy()  # `train` sets the global policy
    runs, trained = [], []
    try:
        for index, (variant, seed, run_dir, done) in enumerate(plan):
            start = time.time()
            if done:
                history = read_history(os.path.join(run_dir, HISTORY_FILE))["epochs"]
                how = "already complete"
            else:
                history = _train(variant, dataset, seed, run_dir, train_kwargs)
                trained.append((variant.name, seed))
                how = f"trained in {time.time() - start:.0f} s"
            run = {"variant": variant.name, "seed": seed, "out": run_dir}
            runs.append({**run, "history": history})
            metrics = run_metrics(history)
            print(
                f"[{index + 1}/{len(plan)}] {variant.name} seed {seed}: test error "
                f"{100 * metrics['final_error']:.2f}% (best "
                f"{100 * metrics['best_error']:.2f}%), {how}",
                flush=True,
            )
    finally:
        keras.config.set_dtype_policy(policy)
    return runs, trained


def _train(variant, dataset, seed, run_dir, train_kwargs):
    result = train(
        variant.source,
        dataset,
        erase=variant.erase,
        seed=seed,
        out=run_dir,
        model_kwargs=variant.model_kwargs,
        **train_kwargs,
    )
    history = result.history
    del result
    keras.backend.clear_session()
    gc.collect()
    return history


def _analyse(variants, runs, trained, config, target_accuracy):
    runs = [{**r, **run_metrics(r["history"])} for r in runs]
    by_variant = _by_variant(variants, runs)
    if target_accuracy is None:  # the lowest mean final accuracy of a variant
        target_accuracy = min(
            1.0 - sum(r["final_error"] for r in own) / len(own)
            for own in by_variant.values()
        )
    for run in runs:
        run["epochs_to_target"] = epochs_to_reach(run["val_error"], target_accuracy)
    confidence = config["confidence"]
    summaries = {  # errors are rates: an interval inside [0, 1]
        name: {metric: _summary(metric, own, confidence) for metric in METRICS}
        for name, own in by_variant.items()
    }
    differences = []
    for variant in variants:
        baseline = _baseline(variant, variants)
        if baseline is None:
            continue
        entry = {"variant": variant.name, "baseline": baseline.name}
        for metric in DIFFERENCES:
            entry[metric] = welch_difference(
                [r[metric] for r in by_variant[variant.name]],
                [r[metric] for r in by_variant[baseline.name]],
                confidence,
                rates=metric in RATES,
            )
        differences.append(entry)
    config = {**config, "target_accuracy": target_accuracy}
    return ExperimentResult(variants, runs, summaries, differences, trained, config)


def _summary(metric, runs, confidence):
    values = [r[metric] for r in runs if r[metric] is not None]
    if metric in RATES:
        return summarize_rate(values, confidence)
    return summarize(values, confidence, lower=LOWER_BOUNDS[metric])


def _by_variant(variants, runs):
    return {v.name: [r for r in runs if r["variant"] == v.name] for v in variants}


def _baseline(variant, variants):
    """The same model with erase "none", else the first variant (None for
    the first variant itself)."""
    for other in variants:
        if (
            not other.erased
            and other.model_name == variant.model_name
            and other.model_kwargs == variant.model_kwargs
            and other is not variant
        ):
            return other
    return None if variant is variants[0] else variants[0]


def _seeds(seeds):
    """The list of seeds that `seeds` (a count or a list) means."""
    if is_int(seeds):
        if seeds < 1:
            raise ValueError(f"`seeds` must be at least 1. Received: seeds={seeds}.")
        return list(range(seeds))
    if not isinstance(seeds, (list, tuple)) or not all(
        is_int(s) and s >= 0 for s in seeds
    ):
        raise TypeError(
            "`seeds` must be an int n (seeds 0..n-1) or a list of ints >= 0. "
            f"Received: seeds={seeds!r}."
        )
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"`seeds` must be distinct and non-empty. Received: {seeds!r}."
        )
    return [int(s) for s in seeds]
