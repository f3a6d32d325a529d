"""`tune_placements`: Keras Tuner searches where to erase, on one machine or many.

One call runs one of Keras Tuner's own tuners over a `PlacementHyperModel`
and returns a `TuningResult` (`keras_eraserelu.tuning.result`, also
importable from here): the best placement (arguments for `erase_relu`), the
best trained model, and one row per trial that prints as a table, writes
CSV and JSON, and draws a trials x modules heat map.

Reliability: the packages a tuner needs are checked before anything runs
(`tensorboard`, without which every Keras Tuner trial fails on TensorFlow;
`scipy` and `scikit-learn` for Bayesian optimisation). A search stopped at
any point and started again with the same arguments and `directory`
resumes: finished trials are kept, the interrupted one runs again, and the
total stays `max_trials`; other arguments for that directory are refused.
Bad configurations raise before the tuner exists, and a placement that
cannot be built raises `keras_tuner.errors.FatalValueError`, which stops the
search at once. A trial that fails anyway keeps its status and reason.

Distributed search (Keras Tuner's gRPC oracle): run the same call or command
in every process with `KERASTUNER_TUNER_ID` (`chief` for the oracle,
`tuner0`, `tuner1`, ... for the workers) and `KERASTUNER_ORACLE_PORT`. The
chief listens on `KERASTUNER_ORACLE_IP`, by default the loopback address
127.0.0.1 (this machine only); to accept workers from other machines set it
to an address of the chief's machine, and share `directory` (NFS, GCS).

Example:

```python
result = tune_placements("cifar_resnet20", "cifar10", space="per_module",
                         tuner="bayesian", max_trials=20, epochs=10,
                         directory="runs/tune")
print(result)                                   # one row per trial
erase_relu(model, **result.best_placement)      # apply the winner
result.plot("runs/tune/placements.png")
```
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from contextlib import nullcontext

import keras
import keras_tuner

from keras_eraserelu.core import check_choice, is_int
from keras_eraserelu.training import (
    RunLock,
    check_output_dir,
    check_same_run,
    read_json,
)
from keras_eraserelu.tuning.hypermodel import PlacementHyperModel, check_space
from keras_eraserelu.tuning.result import TuningResult, result_from_search

TUNERS = ("bayesian", "random", "hyperband", "grid")
_TUNER_CLASSES = {
    "bayesian": "BayesianOptimization",
    "random": "RandomSearch",
    "grid": "GridSearch",
}
# What `fit` reports for the trial models (compiled with "accuracy").
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
LOOPBACK = "127.0.0.1"
SETTINGS_FILE = "eraserelu_search.json"
# What a resumed search must share with the one it continues.
_SETTINGS = ("model_name", "spaces", "epochs", "batch_size", "where", "kinds",
             "steps_per_epoch", "validation_steps", "splits", "seed")  # fmt: skip
_DEPENDENCIES = {
    "tensorboard.plugins.hparams.api": "tensorboard",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
}


def tune_placements(
    model_or_name,
    dataset="digits",
    *,
    space="per_module",
    tuner="bayesian",
    max_trials=10,
    objective="val_accuracy",
    directory=None,
    project_name=None,
    overwrite=False,
    seed=0,
    factor=3,
    callbacks=(),
    verbose=1,
    **hypermodel_kwargs,
):
    """Searches where to erase with one of Keras Tuner's tuners.

    Args:
        model_or_name: a registry or keras.applications name, a builder, a
            built keras.Model or a `.keras` path (see `PlacementHyperModel`).
        dataset: a data set name, "tfds:NAME", arrays, a folder, a `.npz`
            file or a (train, validation) tf.data pair; see
            `PlacementHyperModel`. Defaults to `"digits"`.
        space: str or sequence of str. `"per_module"`, `"ratio"`,
            `"position"`, `"stage"`, or `"position"` with one of the others.
            Defaults to `"per_module"`.
        tuner: str. `"bayesian"`, `"random"`, `"hyperband"` or `"grid"`.
            Defaults to `"bayesian"`.
        max_trials: int. Number of trials (for Hyperband, a cap on the
            schedule that `epochs` and `factor` make). Defaults to 10.
        objective: str or keras_tuner.Objective. One of `OBJECTIVES`.
            Defaults to `"val_accuracy"`.
        directory: str or None. Where Keras Tuner keeps the search; the same
            directory resumes it. None: a new temporary directory.
        project_name: str or None. Defaults to `<model>_<space>_<tuner>`.
        overwrite: bool. Start over instead of resuming (ignored by
            distributed workers). Defaults to False.
        seed: int. Seeds the tuner, the initial weights and the data order.
        factor: int. Hyperband's reduction factor. Defaults to 3.
        callbacks: Keras callbacks for every trial's `fit`.
        verbose: 0, 1 or 2, as in `fit`. Defaults to 1.
        **hypermodel_kwargs: `recipe`, `epochs`, `batch_size`, `where`,
            `kinds`, `steps_per_epoch`, ...: see `PlacementHyperModel`.

    Returns:
        A `TuningResult`.

    Raises:
        ImportError: if a dependency of the tuner is missing.
        ValueError: for an unknown tuner, space or objective, a `max_trials`
            that is not a positive int, a model without modules, a bad
            distributed environment, or a directory holding another search.
        keras_tuner.errors.FatalError: if a trial's model cannot be built.

    Example:

    ```python
    result = tune_placements("cifar_resnet8", "digits", tuner="random",
                             max_trials=4, epochs=2, directory="tune")
    result.to_csv("tune/results.csv")
    ```
    """
    spaces = _check_arguments(tuner, space, max_trials, objective)
    role = distributed_role()
    if directory is not None and role != "worker":
        check_output_dir(directory)
    check_dependencies(tuner)
    hypermodel = _hypermodel(
        model_or_name, spaces, dataset, seed, tuner, hypermodel_kwargs
    )
    directory = directory or tempfile.mkdtemp(prefix="eraserelu-tune-")
    project_name = project_name or f"{hypermodel.model_name}_{'+'.join(spaces)}_{tuner}"
    project_dir = os.path.join(directory, project_name)
    settings_path = os.path.join(project_dir, SETTINGS_FILE)
    settings = _settings(hypermodel, tuner, objective)
    with _project_lock(directory, project_name, role):
        if role != "worker" and not overwrite:
            _check_settings(settings_path, settings)
        search = _make_tuner(
            tuner,
            hypermodel,
            objective=objective,
            directory=directory,
            project_name=project_name,
            overwrite=overwrite and role != "worker",  # never delete the chief's files
            seed=seed,
            max_trials=max_trials,
            factor=factor,
        )
        if role != "worker":
            _write_settings(settings_path, settings)
        search.search(callbacks=list(callbacks), verbose=verbose)
        return _result(search, hypermodel, objective, role, project_dir)


def _check_arguments(tuner, space, max_trials, objective):
    """Checks the search's own arguments; returns the normalised spaces."""
    check_choice("tuner", tuner, TUNERS)
    spaces = check_space(space)
    if not is_int(max_trials) or max_trials < 1:
        raise ValueError(
            f"`max_trials` must be a positive int. Received: max_trials={max_trials!r}."
        )
    check_choice("objective", getattr(objective, "name", objective), OBJECTIVES)
    return spaces


def _hypermodel(model_or_name, spaces, dataset, seed, tuner, hypermodel_kwargs):
    """The `PlacementHyperModel` of the search, checked against the tuner."""
    hypermodel = PlacementHyperModel(
        model_or_name, spaces, dataset=dataset, seed=seed, **hypermodel_kwargs
    )
    if tuner == "hyperband" and len(hypermodel.epochs) > 1:
        raise ValueError(
            "Hyperband chooses each trial's epochs itself: give one int `epochs` "
            f"(its max_epochs). Received: epochs={list(hypermodel.epochs)}."
        )
    return hypermodel


def _project_lock(directory, project_name, role):
    """The chief (or a lone search) holds the project, workers share it; the
    lock lies beside the project folder, which overwrite=True deletes."""
    if role == "worker":
        return nullcontext()
    return RunLock(directory, "tune", name=f".{project_name}.lock")


def _make_tuner(tuner, hypermodel, *, max_trials, factor, **common):
    """The Keras Tuner tuner of that name; `common` are the arguments every
    tuner takes (objective, directory, project_name, overwrite, seed)."""
    if tuner == "hyperband":
        search = keras_tuner.Hyperband(
            hypermodel=hypermodel,
            max_epochs=hypermodel.epochs[0],
            factor=factor,
            **common,
        )
        search.oracle.max_trials = max_trials
        return search
    tuner_class = getattr(keras_tuner, _TUNER_CLASSES[tuner])
    return tuner_class(hypermodel=hypermodel, max_trials=max_trials, **common)


def _write_settings(path, settings):
    """Writes the settings a resumed search must share (chief or lone search)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(settings, handle, indent=2)


def _result(search, hypermodel, objective, role, project_dir):
    """The `TuningResult` of the search; on a worker, an empty one (the chief
    holds the trials)."""
    modules = [module.name for module in hypermodel.modules]
    if role == "worker":
        name = getattr(objective, "name", objective)
        return TuningResult(
            None, None, None, None, [], modules, name, role, project_dir
        )
    return result_from_search(search, hypermodel, modules, role, project_dir)


def distributed_role():
    """`"single"`, `"chief"` or `"worker"`, from Keras Tuner's variables.

    A distributed search is asked for with `KERASTUNER_ORACLE_PORT` (and
    `KERASTUNER_TUNER_ID`); `KERASTUNER_ORACLE_IP` defaults to 127.0.0.1 and
    is then set in `os.environ` for Keras Tuner.

    Raises:
        ValueError: for a port without tuner id, an address without port, or
            a port that is not an int in 1..65535.
    """
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    port = os.environ.get("KERASTUNER_ORACLE_PORT")
    address = os.environ.get("KERASTUNER_ORACLE_IP")
    if port is None and address is None:
        return "single"
    if port is None or not tuner_id:
        missing = "KERASTUNER_ORACLE_PORT" if port is None else "KERASTUNER_TUNER_ID"
        raise ValueError(
            f"A distributed search needs {missing}: set KERASTUNER_TUNER_ID "
            "('chief' for the oracle, 'tuner0', 'tuner1', ... for workers) and "
            "KERASTUNER_ORACLE_PORT (KERASTUNER_ORACLE_IP defaults to "
            f"{LOOPBACK}). Received: KERASTUNER_TUNER_ID={tuner_id!r}, "
            f"KERASTUNER_ORACLE_IP={address!r}, KERASTUNER_ORACLE_PORT={port!r}."
        )
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(
            "KERASTUNER_ORACLE_PORT must be a port number in 1..65535. Received: "
            f"KERASTUNER_ORACLE_PORT={port!r}."
        )
    if address is None:
        os.environ["KERASTUNER_ORACLE_IP"] = LOOPBACK
    return "chief" if "chief" in tuner_id else "worker"


def check_dependencies(tuner):
    """Raises ImportError naming the pip command if `tuner` lacks a package.

    Keras Tuner logs hyperparameters through tensorboard on the TensorFlow
    backend only; Bayesian optimisation needs scipy and scikit-learn.
    """
    on_tensorflow = keras.backend.backend() == "tensorflow"
    needed = ["tensorboard.plugins.hparams.api"] if on_tensorflow else []
    if tuner == "bayesian":
        needed += ["scipy", "sklearn"]
    missing = []
    for module in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(_DEPENDENCIES[module])
    if missing:
        raise ImportError(
            f"tune_placements(tuner={tuner!r}) needs {missing}, which cannot be "
            "imported: Keras Tuner on TensorFlow fails every trial without "
            "tensorboard, and Bayesian optimisation needs scipy and "
            f"scikit-learn. Install them: pip install {' '.join(missing)}"
        )


def _settings(hypermodel, tuner, objective):
    settings = {name: getattr(hypermodel, name) for name in _SETTINGS}
    settings.update(
        dataset=hypermodel.source.identity,
        recipe=hypermodel.recipe.name,
        tuner=tuner,
        objective=getattr(objective, "name", objective),
    )
    return json.loads(json.dumps(settings))  # tuples as lists, as stored


def _check_settings(path, settings):
    stored = read_json(path)
    if stored is not None:
        check_same_run(
            os.path.dirname(path),
            stored,
            settings,
            what="search",
            way_out="Resume with the same arguments, choose another directory or "
            "project_name, or pass overwrite=True to start over.",
        )
