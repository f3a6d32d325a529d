"""Keras Tuner over erasure placements: spaces, the four tuners, results,
a distributed search, kill-and-resume, and the errors that stop a search.

The spaces are checked on a hand-built model whose sites are known by name:
the erased sites of a built trial model are read back with
`plan_erasure(model).erased_before`. Searches run a tiny registry model on
the offline digits data for a few steps. The distributed search and the
kill-and-resume test run `eraserelu tune` in subprocesses with hard timeouts.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from eraserelu.cli import main
from keras_eraserelu.core.plan import plan_erasure
from keras_eraserelu.core.rewrite import erase_relu
from keras_eraserelu.tuning.hypermodel import PlacementHyperModel
from keras_eraserelu.tuning.search import distributed_role, tune_placements

# A guard against hangs (a worker without chief waits an hour), well above
# the 20-80 s these subprocesses take on two busy cores.
SUBPROCESS_TIMEOUT = 300
FAST = {"epochs": 1, "batch_size": 32, "steps_per_epoch": 2, "validation_steps": 1}
CLI_FAST = [
    "--model", "cifar_vgg_tiny", "--dataset", "digits", "--space", "per_module",
    "--tuner", "random", "--epochs", "1", "--batch-size", "32",
    "--steps-per-epoch", "3", "--validation-steps", "2", "--verbose", "0",
]  # fmt: skip


def block_model():
    """Stem, then 3 residual blocks (b1 | b2 b3: two stages) of 3 ReLUs each."""
    inputs = keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    for index, (filters, strides) in enumerate([(4, 1), (8, 2), (8, 1)], start=1):
        name = f"b{index}"
        y = layers.Conv2D(filters, 3, strides, padding="same", name=f"{name}_c1")(x)
        y = layers.ReLU(name=f"{name}_relu1")(y)
        y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_c2")(y)
        y = layers.ReLU(name=f"{name}_relu2")(y)
        y = layers.Conv2D(filters, 1, name=f"{name}_c3")(y)
        if strides != 1:
            x = layers.Conv2D(filters, 1, strides, name=f"{name}_proj")(x)
        x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, x]))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="blocks")


def erased_sites(hypermodel, **values):
    """The sites that `hypermodel.build` erases for these fixed values."""
    model = hypermodel.build(_fixed(values))
    return {site.path for site in plan_erasure(model).erased_before}


def mlp():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="mlp",
    )


# -- spaces --------------------------------------------------------------------


def test_per_module_space_has_one_boolean_per_module_named_by_it():
    hypermodel = PlacementHyperModel(block_model(), "per_module", **FAST)
    hp = kt.HyperParameters()
    hypermodel.declare(hp)
    assert [p.name for p in hp.space] == ["b1_out", "b2_out", "b3_out"]
    assert {type(p).__name__ for p in hp.space} == {"Boolean"}
    assert erased_sites(hypermodel) == {"b1_out", "b2_out", "b3_out"}
    assert erased_sites(hypermodel, b1_out=False, b2_out=True, b3_out=False) == {
        "b2_out"
    }
    assert erased_sites(hypermodel, b1_out=False, b2_out=False, b3_out=False) == set()


def test_stage_space_erases_the_modules_of_the_chosen_stages():
    hypermodel = PlacementHyperModel(block_model(), "stage", **FAST)
    assert hypermodel.stages == [0, 1]
    assert erased_sites(hypermodel, stage_0=True, stage_1=False) == {"b1_out"}
    assert erased_sites(hypermodel, stage_0=False, stage_1=True) == {
        "b2_out",
        "b3_out",
    }


def test_ratio_space_takes_a_proportion_from_either_end():
    hypermodel = PlacementHyperModel(block_model(), "ratio", **FAST)
    assert hypermodel.ratios == [0.0, 0.3333, 0.6667, 1.0]
    assert erased_sites(hypermodel, ratio=0.3333, ratio_from="end") == {"b3_out"}
    assert erased_sites(hypermodel, ratio=0.6667, ratio_from="start") == {
        "b1_out",
        "b2_out",
    }
    assert erased_sites(hypermodel, ratio=0.0, ratio_from="start") == set()


@pytest.mark.parametrize(
    "where, expected",
    [
        ("last", {"b1_out", "b2_out", "b3_out"}),
        ("first", {"b1_relu1", "b2_relu1", "b3_relu1"}),
        ("1", {"b1_relu2", "b2_relu2", "b3_relu2"}),
        ("all", {f"b{i}_{s}" for i in (1, 2, 3) for s in ("relu1", "relu2", "out")}),
    ],
)
def test_position_space_chooses_the_site_inside_every_module(where, expected):
    hypermodel = PlacementHyperModel(block_model(), "position", **FAST)
    assert hypermodel.positions == ["last", "first", "all", "1"]
    assert erased_sites(hypermodel, where=where) == expected


def test_position_combines_with_ratio_and_ignores_hyperband_values():
    hypermodel = PlacementHyperModel(block_model(), ("position", "ratio"), **FAST)
    values = {"where": "first", "ratio": 0.3333, "ratio_from": "end"}
    assert erased_sites(hypermodel, **values) == {"b3_relu1"}
    hyperband = {"tuner/epochs": 3, "tuner/initial_epoch": 1, "tuner/bracket": 1}
    placement = hypermodel.placement({**values, **hyperband, "tuner/round": 1})
    assert placement == hypermodel.placement(values)
    assert placement == {
        "where": "first",
        "kinds": ["relu"],
        "ratio": 0.3333,
        "ratio_from": "end",
    }
    assert hypermodel.training_values({**values, **hyperband}) == (3, 32)


def test_every_trial_starts_from_the_same_weights_yours_or_fresh_ones():
    model = block_model()
    given = [w.copy() for w in model.get_weights()]
    kept = PlacementHyperModel(model, "per_module", reinitialize=False, **FAST)
    fresh = PlacementHyperModel(model, "per_module", **FAST)  # reinitialize=True
    starts = []
    for erase in (True, False):
        values = {"b1_out": erase, "b2_out": not erase, "b3_out": erase}
        for ours, theirs in zip(kept.build(_fixed(values)).get_weights(), given):
            np.testing.assert_array_equal(ours, theirs)
        starts.append(fresh.build(_fixed(values)).get_weights())
    for first, second in zip(*starts):
        np.testing.assert_array_equal(first, second)  # every trial: the same start
    assert any(not np.array_equal(a, b) for a, b in zip(starts[0], given))
    for now, before in zip(model.get_weights(), given):  # the user's model untouched
        np.testing.assert_array_equal(now, before)
    assert plan_erasure(model).erased_before == []


def test_a_users_model_and_data(tmp_path):
    from keras_eraserelu.data.catalogue import digits_arrays

    x, y = digits_arrays()["train"]
    train = tf.data.Dataset.from_tensor_slices((x[:256], y[:256])).batch(64)
    validation = tf.data.Dataset.from_tensor_slices((x[256:320], y[256:320])).batch(64)
    # The grid's first trial takes the defaults: erase every module's last ReLU.
    result = tune_placements(
        block_model(), (train, validation), space=("position", "stage"),
        tuner="grid", max_trials=1, epochs=1, directory=str(tmp_path), verbose=0,
    )  # fmt: skip
    [row] = result.trials
    assert (
        row["status"] == "COMPLETED" and row["batch_size"] == 64
    )  # read from the data
    # The best model is the user's model with the best placement erased: each
    # erased site an Identity layer, every other ReLU left as it was.
    plan = plan_erasure(block_model(), **result.best_placement)
    erased = {site.name for site in plan.erased}
    assert erased == {"b1_out", "b2_out", "b3_out"} and row["erased"] == 3
    relus = [f"b{b}_{n}" for b in (1, 2, 3) for n in ("relu1", "relu2", "out")]
    for name in relus:
        layer = result.best_model.get_layer(name)
        assert type(layer) is (layers.Identity if name in erased else layers.ReLU)
    assert result.best_model.get_layer("stem").activation is keras.activations.relu
    assert {s.name for s in plan_erasure(result.best_model).erased_before} == erased
    assert_scores_on(result.best_model, validation, result.best_score)


def test_fit_tunes_epochs_and_batch_size():
    hypermodel = PlacementHyperModel(
        "cifar_vgg_tiny", "per_module", epochs=[1, 2], batch_size=[16, 32],
        steps_per_epoch=2, validation_steps=1,
    )  # fmt: skip
    hp = kt.HyperParameters()
    hypermodel.declare(hp)
    assert {
        p.name: p.values for p in hp.space if p.name in ("epochs", "batch_size")
    } == {
        "epochs": [1, 2],
        "batch_size": [16, 32],
    }
    hp = _fixed({"epochs": 2, "batch_size": 16})
    history = hypermodel.fit(hp, hypermodel.build(hp), verbose=0)
    assert len(history.history["val_accuracy"]) == 2
    images, _ = next(iter(hypermodel.data(16)[0]))
    assert images.shape == (16, 8, 8, 1)


# -- the four tuners, the results ----------------------------------------------


@pytest.mark.parametrize("tuner", ["random", "bayesian", "grid", "hyperband"])
def test_each_tuner_completes_every_trial_with_a_score(tuner, tmp_path):
    # Hyperband with max_epochs 2 and factor 2 plans 2 one-epoch trials, one
    # continuing the best to 2 epochs, then 2 more; max_trials=3 stops there.
    options = {"epochs": 2, "factor": 2} if tuner == "hyperband" else {"epochs": 1}
    max_trials = 3 if tuner == "hyperband" else 2
    result = tune_placements(
        "cifar_vgg_tiny", "digits", tuner=tuner, max_trials=max_trials,
        directory=str(tmp_path), verbose=0, batch_size=32, steps_per_epoch=2,
        validation_steps=1, **options,
    )  # fmt: skip
    trials = result.tuner.oracle.trials
    assert len(trials) == max_trials
    for trial in trials.values():
        assert trial.status == "COMPLETED", trial.message
        assert np.isfinite(trial.score)
    assert [row["status"] for row in result.trials] == ["COMPLETED"] * max_trials
    best = max(result.trials, key=lambda row: row["score"])
    assert result.best_score == best["score"]
    assert best["rank"] == 1
    assert not any(key.startswith("tuner/") for key in result.best_hyperparameters)
    if tuner == "hyperband":
        assert [row["epochs"] for row in result.trials] == [1, 1, 2]
    # The best placement reproduces the best trial's erased modules.
    base = keras.models.clone_model(result.tuner.hypermodel.base_model)
    erased = plan_erasure(base, **result.best_placement).erased
    assert {site.module_name for site in erased} == set(best["erased_modules"])
    # The best model is the best trial's trained model: it was trained (its
    # weights left the base model's) and scores the best score again on the
    # validation batches the trial was scored on.
    hypermodel = result.tuner.hypermodel
    assert not all(
        np.array_equal(ours, theirs)
        for ours, theirs in zip(
            result.best_model.get_weights(), hypermodel.base_model.get_weights()
        )
    )
    _, validation = hypermodel.data(best["batch_size"])
    validation = validation.take(hypermodel.validation_steps)
    assert_scores_on(result.best_model, validation, result.best_score)
    erased_model = erase_relu(base, **result.best_placement)
    assert [s.path for s in plan_erasure(result.best_model).erased_before] == [
        s.path for s in plan_erasure(erased_model).erased_before
    ]


def test_results_print_write_csv_json_and_plot_the_heat_map(tmp_path):
    result = tune_placements(
        "cifar_vgg_tiny", "digits", tuner="grid", max_trials=3, directory=str(tmp_path),
        verbose=0, **FAST,
    )  # fmt: skip
    text = str(result)
    for row in result.trials:
        assert f"{row['score']:.4f}" in text
    assert "best val_accuracy" in text

    result.to_csv(tmp_path / "results.csv")
    with open(tmp_path / "results.csv") as handle:
        read = list(csv.DictReader(handle))
    assert [r["trial"] for r in read] == [row["trial"] for row in result.trials]
    assert [float(r["score"]) for r in read] == pytest.approx(
        [row["score"] for row in result.trials], abs=1e-4
    )
    result.to_json(tmp_path / "results.json")
    with open(tmp_path / "results.json") as handle:
        stored = json.load(handle)
    assert stored["trials"] == json.loads(json.dumps(result.trials))
    assert stored["best_placement"] == result.best_placement

    figure = result.plot(tmp_path / "results.png")
    assert (tmp_path / "results.png").stat().st_size > 0
    # Rows best first; a cell is 1 where that trial erased the module.
    ranked = sorted(result.trials, key=lambda row: row["rank"])
    expected = [[row[name] for name in result.modules] for row in ranked]
    cells = np.asarray(figure.axes[0].images[0].get_array())
    np.testing.assert_array_equal(cells, np.asarray(expected, dtype=bool))


class _Boom(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("boom at the end of the epoch")


def test_a_failed_trial_says_why_in_the_results(tmp_path):
    result = tune_placements(
        "cifar_vgg_tiny", "digits", tuner="random", max_trials=1,
        directory=str(tmp_path), verbose=0, callbacks=[_Boom()], **FAST,
    )  # fmt: skip
    [row] = result.failed
    assert row["status"] == "FAILED"
    assert row["message"] == "RuntimeError: boom at the end of the epoch"
    assert result.best_placement is None and result.best_model is None
    assert "FAILED" in str(result)


def test_a_placement_that_cannot_be_built_stops_the_search_at_once(tmp_path):
    hypermodel = PlacementHyperModel(block_model(), "position", **FAST)
    hp = kt.HyperParameters()
    hp.Fixed("where", "7")  # every module has 3 sites
    with pytest.raises(kt.errors.FatalValueError, match="where=7 is out of range"):
        tuner = kt.RandomSearch(
            hypermodel, "val_accuracy", max_trials=3, hyperparameters=hp,
            directory=str(tmp_path), project_name="p",
        )  # fmt: skip
        tuner.search(verbose=0)
    assert not list(tmp_path.glob("p/trial_*"))


# -- errors before any trial ---------------------------------------------------


@pytest.mark.parametrize(
    "model, kwargs, match",
    [
        ("cifar_vgg_tiny", {"tuner": "randm"}, "Unknown tuner='randm'.*'random'"),
        ("cifar_vgg_tiny", {"space": "per_modul"}, "Unknown space=.*'per_module'"),
        ("cifar_vgg_tiny", {"space": ("ratio", "stage")}, "cannot be combined"),
        ("cifar_vgg_tiny", {"max_trials": 0}, "`max_trials` must be a positive int"),
        ("cifar_vgg_tiny", {"objective": "val_acc"}, "Did you mean 'val_accuracy'"),
        ("cifar_vgg_tiny", {"epochs": 0}, "`epochs` must be a positive int"),
        (
            "cifar_vgg_tiny",
            {"tuner": "hyperband", "epochs": [1, 2]},
            "Hyperband chooses each trial's epochs",
        ),
        ("mlp", {}, "Model 'mlp' has no basic modules"),
        ("blocks", {"dataset": "cifar10"}, r"inputs of shape \(8, 8, 1\).*\(8, 8, 3\)"),
        ("cifar_vgg_tiny", {"dataset": ([], [])}, "`x` must be numeric images"),
    ],
)
def test_bad_configurations_raise_before_the_tuner_exists(
    model, kwargs, match, tmp_path
):
    model = {"mlp": mlp, "blocks": block_model}.get(model, lambda: model)()
    with pytest.raises(ValueError, match=match):
        tune_placements(model, directory=str(tmp_path), **{**FAST, **kwargs})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "tuner, module, package",
    [
        ("random", "tensorboard.plugins.hparams.api", "tensorboard"),
        ("bayesian", "sklearn", "scikit-learn"),
        ("bayesian", "scipy", "scipy"),
    ],
)
def test_a_missing_dependency_fails_before_any_trial(
    tuner, module, package, monkeypatch, tmp_path
):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ImportError, match=f"pip install {package}"):
        tune_placements("cifar_vgg_tiny", tuner=tuner, directory=str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_distributed_environment(monkeypatch):
    for name in (
        "KERASTUNER_TUNER_ID",
        "KERASTUNER_ORACLE_IP",
        "KERASTUNER_ORACLE_PORT",
    ):
        monkeypatch.setenv(name, "")  # recorded, so teardown restores it
        monkeypatch.delenv(name)
    assert distributed_role() == "single"
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    with pytest.raises(ValueError, match="needs KERASTUNER_TUNER_ID"):
        distributed_role()
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert distributed_role() == "chief"
    assert os.environ["KERASTUNER_ORACLE_IP"] == "127.0.0.1"  # loopback default
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    assert distributed_role() == "worker"
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "http")
    with pytest.raises(ValueError, match="port number in 1..65535.*'http'"):
        distributed_role()
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT")
    with pytest.raises(ValueError, match="needs KERASTUNER_ORACLE_PORT"):
        distributed_role()


def test_cli_reports_a_bad_configuration(tmp_path, capsys):
    code = main(["tune", *CLI_FAST, "--tuner", "hyperbnd", "--out", str(tmp_path)])
    assert code == 2
    assert "Did you mean 'hyperband'" in capsys.readouterr().err


# -- subprocesses: a distributed search, kill and resume -------------------------


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def _tune_command(out, *more):
    return [sys.executable, "-m", "eraserelu", "tune", *CLI_FAST,
            "--out", str(out), *more]  # fmt: skip


def _trial_files(project):
    """{trial_id: parsed trial.json} of the trials written so far."""
    trials = {}
    for path in project.glob("trial_*/trial.json"):
        try:
            trials[path.parent.name] = json.loads(path.read_text())
        except ValueError:  # being written
            continue
    return trials


def test_distributed_search_with_a_chief_and_two_workers(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = _tune_command(tmp_path, "--max-trials", "4")
    # The chief leaves KERASTUNER_ORACLE_IP unset: it listens on 127.0.0.1.
    roles = [("chief", {}), ("tuner0", {"KERASTUNER_ORACLE_IP": "127.0.0.1"}),
             ("tuner1", {"KERASTUNER_ORACLE_IP": "127.0.0.1"})]  # fmt: skip
    processes = [
        subprocess.Popen(
            command,
            env=_env(KERASTUNER_TUNER_ID=role, KERASTUNER_ORACLE_PORT=port, **extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for role, extra in roles
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=SUBPROCESS_TIMEOUT)[0])
    finally:
        for process in processes:
            process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    assert "worker done" in outputs[1] and "worker done" in outputs[2]

    project = tmp_path / "cifar_vgg_tiny_per_module_random"
    trials = _trial_files(project)
    assert len(trials) == 4
    assert all(
        t["status"] == "COMPLETED" and t["score"] is not None for t in trials.values()
    )
    with open(project / "results.json") as handle:
        results = json.load(handle)
    assert [row["status"] for row in results["trials"]] == ["COMPLETED"] * 4
    assert (project / "best_model.keras").exists()


def test_a_killed_search_resumes_without_redoing_completed_trials(tmp_path):
    command = _tune_command(tmp_path, "--max-trials", "3")
    project = tmp_path / "cifar_vgg_tiny_per_module_random"
    process = subprocess.Popen(
        command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    try:
        while time.monotonic() < deadline and process.poll() is None:
            statuses = [t["status"] for t in _trial_files(project).values()]
            if "COMPLETED" in statuses and "RUNNING" in statuses:
                time.sleep(0.3)  # into the running trial's training
                break
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    before = _trial_files(project)
    completed = {k: v for k, v in before.items() if v["status"] == "COMPLETED"}
    assert 1 <= len(completed) < 3, before

    resumed = subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    after = _trial_files(project)
    assert len(after) == 3
    assert all(t["status"] == "COMPLETED" for t in after.values())
    for name, trial in completed.items():
        assert after[name] == trial  # not run again: same metrics, same score
    with open(project / "oracle.json") as handle:
        run_times = json.load(handle)["run_times"]
    assert run_times == {t["trial_id"]: 1 for t in after.values()}

    # Finished: the same search again runs nothing; other settings are refused.
    options = {"tuner": "random", "max_trials": 3, "directory": str(tmp_path),
               "verbose": 0, "batch_size": 32, "steps_per_epoch": 3,
               "validation_steps": 2}  # fmt: skip
    again = tune_placements("cifar_vgg_tiny", "digits", epochs=1, **options)
    assert _trial_files(project) == after
    assert len(again.trials) == 3
    with pytest.raises(ValueError, match="holds another search.*epochs=\\[1\\]"):
        tune_placements("cifar_vgg_tiny", "digits", epochs=2, **options)


def assert_scores_on(model, data, score):
    """`model` has validation accuracy `score` on `data` (the trial's batches)."""
    metrics = model.evaluate(data, verbose=0, return_dict=True)
    assert metrics["accuracy"] == pytest.approx(score, abs=1e-6)


def _fixed(values):
    hp = kt.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp
