"""compare(): table, files and plots that agree; resumption; bad input; CLI; demo."""

import contextlib
import csv
import io
import json
import shutil

import keras
import numpy as np
import pytest
from scipy import stats as scipy_stats

from eraserelu.cli import main
from keras_eraserelu.demo import demo
from keras_eraserelu.experiment_plots import plot_depth_sweep
from keras_eraserelu.experiments import ExperimentResult, compare
from keras_eraserelu.models.registry import create_model
from keras_eraserelu.run_record import read_history
from keras_eraserelu.stats import welch_difference
from keras_eraserelu.training import train
from keras_eraserelu.variants import Variant, depth_variants

VARIANTS = ["cifar_resnet8", ("cifar_resnet8", "last")]
NAMES = ["cifar_resnet8-none", "cifar_resnet8-last"]
# The demo's batch size, so that `demo(...)` below finds these runs complete.
SETTINGS = dict(epochs=2, batch_size=128, steps_per_epoch=3, gradient_stats=1)


def _compare(out, variants=VARIANTS, seeds=2, **overrides):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = compare(
            variants, "digits", seeds, out=out, **{**SETTINGS, **overrides}
        )
    return result, printed.getvalue()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment") / "exp"
    result, printed = _compare(out)
    return out, result, printed


def _histories(out, name):
    return [
        read_history(out / "runs" / name / f"seed{seed}" / "history.json")
        for seed in (0, 1)
    ]


def test_compare_table_json_csv_and_plots_agree(experiment):
    out, result, printed = experiment
    assert result.trained == [(n, s) for n in NAMES for s in (0, 1)]
    data = json.loads((out / "results.json").read_text())
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert [v["name"] for v in data["variants"]] == [r["name"] for r in rows] == NAMES

    finals = {}
    for entry, row in zip(data["variants"], rows):
        histories = _histories(out, entry["name"])
        assert all(h["completed"] and len(h["epochs"]) == 2 for h in histories)
        final = np.array([1 - h["epochs"][-1]["val_accuracy"] for h in histories])
        best = np.array(
            [1 - max(e["val_accuracy"] for e in h["epochs"]) for h in histories]
        )
        finals[entry["name"]] = final
        low, high = scipy_stats.t.interval(
            0.95, 1, loc=final.mean(), scale=scipy_stats.sem(final)
        )
        summary = entry["final_error"]
        assert summary["n"] == 2
        assert summary["mean"] == pytest.approx(final.mean())
        assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
        assert entry["best_error"]["mean"] == pytest.approx(best.mean())
        assert float(row["final_error_mean"]) == pytest.approx(summary["mean"])
        assert float(row["final_error_ci_high"]) == pytest.approx(summary["ci_high"])
        assert (
            f"{100 * final.mean():.2f} [{100 * low:.2f}, {100 * high:.2f}]" in printed
        )
        # Gradient norms: the layer average of the per-epoch means in history.
        norms = [
            np.mean([v for k, v in e.items() if k.startswith("grad_mean/")])
            for h in histories
            for e in h["epochs"]
        ]
        assert entry["grad_norm"]["mean"] == pytest.approx(np.mean(norms), rel=1e-6)
        assert len(entry["gradients"]) == 15  # conv, BN and Dense layers
        target = data["config"]["target_accuracy"]
        reached = [
            next(
                (
                    i + 1
                    for i, e in enumerate(h["epochs"])
                    if e["val_accuracy"] >= target
                ),
                None,
            )
            for h in histories
        ]
        assert [r["epochs_to_target"] for r in entry["runs"]] == reached

    difference = data["variants"][1]["final_error_difference"]
    test = scipy_stats.ttest_ind(*finals.values().__reversed__(), equal_var=False)
    assert data["variants"][1]["baseline"] == NAMES[0]
    assert difference["p_value"] == pytest.approx(test.pvalue)
    assert float(rows[1]["final_error_difference_p_value"]) == pytest.approx(
        test.pvalue
    )
    assert f"p={test.pvalue:.3g}" in printed
    for name in ("curves", "difference", "gradients"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / "depth_sweep.png").exists()  # one depth only
    for name in NAMES:  # one TensorBoard directory over every run
        assert list((out / "runs" / name).rglob("events.out.tfevents*"))
    assert f"tensorboard --logdir {out}" in printed
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp")]


class CrashAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated crash")


def test_resumption_trains_only_what_is_missing(experiment, tmp_path, monkeypatch):
    source, first, _ = experiment
    out = tmp_path / "exp"
    shutil.copytree(source, out)

    again, printed = _compare(out)
    assert again.trained == [] and "0 runs trained now, 4 already complete" in printed
    assert (
        again.summaries[NAMES[1]]["final_error"]
        == (first.summaries[NAMES[1]]["final_error"])
    )

    shutil.rmtree(out / "runs" / NAMES[1] / "seed1")  # deleted: redone
    crashed = out / "runs" / NAMES[0] / "seed0"  # crashed after its first epoch
    shutil.rmtree(crashed)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train("cifar_resnet8", "digits", out=str(crashed), seed=0, verbose=0,
              callbacks=[CrashAtEpoch(1)], **SETTINGS)  # fmt: skip
    before = read_history(crashed / "history.json")
    assert not before["completed"] and len(before["epochs"]) == 1
    starts = []  # the first epoch of every fit: 1 for a resumed run
    fit = keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        starts.append(kwargs.get("initial_epoch", 0))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    third, printed = _compare(out)
    assert starts == [1, 0]
    assert third.trained == [(NAMES[0], 0), (NAMES[1], 1)]
    assert "interrupted earlier; resuming" in printed
    after = read_history(crashed / "history.json")
    assert after["completed"] and len(after["epochs"]) == 2
    assert after["epochs"][0] == before["epochs"][0]
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp")]


def test_demo_configuration_path(experiment, tmp_path):
    source, _, _ = experiment
    out = tmp_path / "demo"
    shutil.copytree(source, out)  # the same runs: the demo finds them complete
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = demo(
            str(out), seeds=2, epochs=2, model="cifar_resnet8", steps_per_epoch=3
        )
    text = printed.getvalue()
    assert result.trained == [] and [v.name for v in result.variants] == NAMES
    assert "EraseReLU changed the final test error by" in text
    assert "Welch p = " in text
    assert f"tensorboard --logdir {out}" in text
    assert "eraserelu compare --models cifar_resnet20,cifar_resnet56" in text
    assert (out / "curves.png").exists()


def test_cli_compare_with_one_seed_reports_undefined_intervals(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        ["compare", "--models", "cifar_resnet8", "--erase", "none,last",
         "--dataset", "digits", "--seeds", "1", "--epochs", "1",
         "--batch-size", "64", "--steps-per-epoch", "2", "--out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "[1/2] cifar_resnet8-none seed 0" in printed
    assert "[n/a]" in printed and "p=n/a" in printed
    data = json.loads((out / "results.json").read_text())
    entry = data["variants"][1]
    assert (
        entry["final_error"]["std"] is None and entry["final_error"]["ci_low"] is None
    )
    assert entry["final_error_difference"]["p_value"] is None
    row = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))[1]
    assert row["final_error_ci_low"] == "nan" and row["final_error_mean"] != "nan"
    assert (out / "curves.png").exists()


def test_unknown_variants_are_refused_before_training(tmp_path):
    with pytest.raises(
        ValueError, match="Unknown model 'cifar_resnet9'.*cifar_resnet8"
    ):
        compare([("cifar_resnet9", "last")], "digits", 2, out=tmp_path)
    with pytest.raises(ValueError, match="Unknown erase=3.5"):
        compare([("cifar_resnet8", 3.5)], "digits", 2, out=tmp_path)
    with pytest.raises(ValueError, match="'cifar_resnet8-middle'.*'middle' matched no"):
        compare([("cifar_resnet8", "middle")], "digits", 2, out=tmp_path)
    with pytest.raises(TypeError, match="registry name or a builder.*42"):
        compare([42], "digits", 2, out=tmp_path)
    with pytest.raises(ValueError, match=r"names must be distinct.*cifar_resnet8-last"):
        compare([("cifar_resnet8", "last")] * 2, "digits", 2, out=tmp_path)
    with pytest.raises(ValueError, match="Unknown data set name='digitz'"):
        compare(VARIANTS, "digitz", 2, out=tmp_path)
    with pytest.raises(ValueError, match="`seeds` must be at least 1"):
        compare(VARIANTS, "digits", 0, out=tmp_path)
    with pytest.raises(ValueError, match=r"distinct.*\[1, 1\]"):
        compare(VARIANTS, "digits", [1, 1], out=tmp_path)
    with pytest.raises(TypeError, match="`seeds` must be an int n"):
        compare(VARIANTS, "digits", "3", out=tmp_path)
    assert not list(tmp_path.iterdir())


def test_builders_that_do_not_fit_the_data_are_refused_before_training(tmp_path):
    def fixed_input(input_shape=None, classes=10, erase=None):
        return create_model("cifar_resnet8", input_shape=(32, 32, 3), classes=classes)

    def hundred_classes(input_shape=None, classes=10, erase=None):
        return create_model("cifar_resnet8", input_shape=input_shape, classes=100)

    with pytest.raises(
        ValueError,
        match=r"'fixed_input-none' does not fit the data set 'digits'.*"
        r"\(32, 32, 3\).*\(8, 8, 1\)",
    ):
        compare([fixed_input], "digits", 2, "he_cifar", out=tmp_path)
    with pytest.raises(ValueError, match=r"predicts 100 classes.*10 classes"):
        compare([hundred_classes], "digits", 2, "he_cifar", out=tmp_path)
    with pytest.raises(ValueError, match="cannot be built for the data set 'digits'"):
        compare(["resnet_tiny"], "digits", 2, out=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_a_directory_of_other_runs_is_refused_before_training(experiment, tmp_path):
    source, _, _ = experiment
    out = tmp_path / "exp"
    shutil.copytree(source, out)
    with pytest.raises(ValueError, match=r"holds another run \(epochs=2\).*epochs=3"):
        _compare(out, epochs=3)


def test_depth_variants_and_the_depth_sweep_plot(tmp_path):
    variants = depth_variants([8, 14])
    assert [v.name for v in variants] == [
        "cifar_resnet8-none",
        "cifar_resnet8-last",
        "cifar_resnet14-none",
        "cifar_resnet14-last",
    ]
    assert variants[0].model == "cifar_resnet8" and variants[2].depth == 14
    assert create_model("cifar_resnet8").count_params() < (
        variants[2].model(input_shape=(8, 8, 1), classes=10).count_params()
    )
    with pytest.raises(ValueError, match=r"6n \+ 2.*Received: 10"):
        depth_variants([10])
    differences = [
        {
            "variant": f"cifar_resnet{d}-last",
            "baseline": f"cifar_resnet{d}-none",
            "final_error": welch_difference([0.05, 0.06, 0.055], [0.07, 0.08, 0.075]),
        }
        for d in (8, 14)
    ]
    result = ExperimentResult(variants, [], {}, differences, [], {"confidence": 0.95})
    path = plot_depth_sweep(result, str(tmp_path / "sweep.png"))
    assert open(path, "rb").read(4) == b"\x89PNG"
    one_depth = ExperimentResult(variants[:2], [], {}, differences[:1], [], {})
    assert plot_depth_sweep(one_depth, str(tmp_path / "none.png")) is None
    assert Variant("cifar_resnet8", 2).name == "cifar_resnet8-k2"


def test_cli_compare_errors(capsys):
    assert main(["compare", "--out", "x"]) == 2
    assert "Nothing to compare: give --models" in capsys.readouterr().err
    assert main(["compare", "--depths", "20,x", "--out", "x"]) == 2
    assert "argument --depths: expected comma-separated depths, each 6n + 2" in (
        capsys.readouterr().err
    )
