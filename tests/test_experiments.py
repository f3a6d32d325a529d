"""compare(): table, files and plots that agree; resumption; bad input; CLI; demo."""

import contextlib
import csv
import io
import json
import shutil

import keras
import numpy as np
import pytest
from matplotlib import image
from matplotlib.container import BarContainer
from scipy import stats as scipy_stats

from eraserelu.cli import main
from keras_eraserelu.experiments import plots as experiment_plots
from keras_eraserelu.experiments.comparison import ExperimentResult, _analyse, compare
from keras_eraserelu.experiments.digits_demo import demo
from keras_eraserelu.experiments.plots import plot_depth_sweep
from keras_eraserelu.experiments.report import format_table, write_results
from keras_eraserelu.experiments.stats import welch_difference
from keras_eraserelu.experiments.variants import Variant, as_variants, depth_variants
from keras_eraserelu.models.registry import create_model
from keras_eraserelu.training.run_files import read_history
from keras_eraserelu.training.trainer import train

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


def _logit_t_by_hand(rates, confidence=0.95):
    """The interval for a mean rate, by hand: logit(mean) +- t se / (p (1 - p))."""
    x = np.asarray(rates, dtype="float64")
    if np.all(x == x[0]):
        return x[0], x[0]
    n, p = len(x), x.mean()
    half = scipy_stats.t.ppf((1 + confidence) / 2, n - 1) * (
        x.std(ddof=1) / np.sqrt(n) / (p * (1 - p))
    )
    center = np.log(p / (1 - p))
    return 1 / (1 + np.exp(-(center - half))), 1 / (1 + np.exp(-(center + half)))


def _histories(out, name):
    return [
        read_history(out / "runs" / name / f"seed{seed}" / "history.json")
        for seed in (0, 1)
    ]


def test_compare_table_json_csv_and_plots_agree(experiment, tmp_path, monkeypatch):
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
        # Errors are rates: the interval is the logit-scale t one (it was
        # the plain Student-t interval, which can leave [0, 100] %).
        low, high = _logit_t_by_hand(final)
        summary = entry["final_error"]
        assert summary["n"] == 2 and summary["interval_method"] == "logit_delta_t"
        assert summary["mean"] == pytest.approx(final.mean())
        assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
        assert row["final_error_interval_method"] == "logit_delta_t"
        assert entry["grad_norm"]["interval_method"] == "student_t_clipped"
        assert "  ".join(f"{100 * e:.2f}" for e in final) in printed  # per seed
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
    # The plots, drawn again from the result and kept: they show the histories
    # and the numbers of results.json, and the files hold those drawings.
    save = experiment_plots._save
    figures = _figures(monkeypatch)
    experiment_plots.plot_experiment(result, str(out))
    assert sorted(figures) == ["curves.png", "difference.png", "gradients.png"]
    assert not (out / "depth_sweep.png").exists()  # one depth only
    _assert_curves(figures["curves.png"], {n: _histories(out, n) for n in NAMES})
    _assert_difference(figures["difference.png"], data["variants"][1])
    _assert_gradients(figures["gradients.png"], data["variants"])
    for name, figure in figures.items():
        pixels = image.imread(out / name)
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 200
        np.testing.assert_array_equal(
            pixels, image.imread(save(figure, str(tmp_path / name)))
        )
    for name in NAMES:  # one TensorBoard directory over every run
        assert list((out / "runs" / name).rglob("events.out.tfevents*"))
    assert f"tensorboard --logdir {out}" in printed
    assert not [p for p in out.rglob("*") if p.name.startswith(".tmp")]


def _assert_curves(figure, histories, confidence=0.95):
    """curves.png: per variant a thin line per seed and the bold mean, with
    its band, of the test error (%) and of the training loss."""
    error, loss = figure.axes
    assert error.get_title() == (
        f"Test error: seeds (thin), mean and {100 * confidence:g}% CI (logit t)"
    )
    assert error.get_ylabel() == "test error (%)"
    assert loss.get_ylabel() == "training loss"
    assert (loss.get_title(), loss.get_yscale()) == ("Training loss", "log")
    assert [t.get_text() for t in error.get_legend().get_texts()] == [
        f"{name} ({len(runs)} seeds)" for name, runs in histories.items()
    ]
    for axis, value, interval in (
        (error, lambda e: 100 * (1 - e["val_accuracy"]), _logit_t_by_hand),
        (loss, lambda e: e["loss"], _student_t_by_hand),
    ):
        lines = axis.get_lines()
        assert len(lines) == sum(len(runs) + 1 for runs in histories.values())
        bands = [c for c in axis.collections if c.get_paths()]
        assert len(bands) == len(histories)
        colors = []
        for runs, band in zip(histories.values(), bands):
            curves = np.array([[value(e) for e in h["epochs"]] for h in runs])
            *seeds, mean = lines[: len(runs) + 1]
            lines = lines[len(runs) + 1 :]
            for line, curve in zip(seeds, curves):
                assert line.get_linewidth() < mean.get_linewidth()
                np.testing.assert_allclose(line.get_xdata(), [1, 2])
                np.testing.assert_allclose(line.get_ydata(), curve)
            np.testing.assert_allclose(mean.get_ydata(), curves.mean(axis=0))
            assert {line.get_color() for line in seeds} == {mean.get_color()}
            assert band.get_facecolor()[0][:3] == pytest.approx(mean.get_color()[:3])
            colors.append(mean.get_color())
            y = band.get_paths()[0].vertices[:, 1]
            scale = 100.0 if axis is error else 1.0
            for column in curves.T / scale:
                low, high = interval(column, confidence)
                assert np.isclose(y, scale * low).any()
                assert np.isclose(y, scale * high).any()
        assert len(set(colors)) == len(colors)  # a colour per variant


def _student_t_by_hand(values, confidence=0.95):
    x = np.asarray(values, dtype="float64")
    half = scipy_stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1)
    return x.mean() - half / np.sqrt(len(x)), x.mean() + half / np.sqrt(len(x))


def _assert_difference(figure, entry):
    """difference.png: a bar per error metric at the variant-minus-baseline
    difference (points), its interval as the error bar and its p-value."""
    [axis] = figure.axes
    labels = [t.get_text() for t in axis.get_yticklabels()]
    assert labels == [f"{entry['name']}\n- {entry['baseline']}"]
    assert [t.get_text() for t in axis.get_legend().get_texts()] == [
        "final error",
        "best error",
    ]
    assert "95% CI (Welch" in axis.get_xlabel()
    texts = [t.get_text() for t in axis.texts]
    containers = [c for c in axis.containers if isinstance(c, BarContainer)]
    for bars, metric in zip(containers, ("final_error", "best_error"), strict=True):
        difference = entry[f"{metric}_difference"]
        [bar] = bars.patches
        assert bar.get_width() == pytest.approx(100 * difference["mean"])
        [segment] = bars.errorbar.lines[2][0].get_segments()
        assert segment[:, 0] == pytest.approx(
            [100 * difference["ci_low"], 100 * difference["ci_high"]]
        )
        assert f"p={difference['p_value']:.3g}" in texts


def _assert_gradients(figure, entries):
    """gradients.png: per variant, the layers' mean gradient norms (top) and
    their relative spread (bottom), in layer order."""
    norms, spreads = figure.axes
    assert norms.get_title().startswith("Per-layer training-gradient norm")
    for entry in entries:
        layers = list(entry["gradients"].values())
        assert len(layers) == 15
        norm = [layer["norm_mean"] for layer in layers]
        spread = [layer["norm_std"] / layer["norm_mean"] for layer in layers]
        for axis, expected in ((norms, norm), (spreads, spread)):
            points = sorted(
                (x, y)
                for line in axis.get_lines()
                if line.get_label().startswith(entry["name"] + " ")
                for x, y in zip(line.get_xdata(), line.get_ydata())
            )
            assert [x for x, _ in points] == list(range(1, 16))
            assert [y for _, y in points] == pytest.approx(expected, rel=1e-6)


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
    assert f"read (complete): {NAMES[0]} seed 1, {NAMES[1]} seed 0\n" in printed
    assert f"resumed: {NAMES[0]} seed 0 (after epoch 1)\n" in printed
    assert f"started: {NAMES[1]} seed 1\n" in printed
    assert f"resuming {crashed} at epoch 2 of 2" in printed
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
    with pytest.raises(TypeError, match="registry name, a builder.*42"):
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


def test_depth_variants_and_the_depth_sweep_plot(tmp_path, monkeypatch):
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
            "final_error": final_error,
        }
        for d, final_error in (
            (8, welch_difference([0.05, 0.06, 0.055], [0.07, 0.08, 0.075])),
            # Clipped at -100 points: an interval that is not symmetric.
            (14, welch_difference([0.04, 0.06], [0.3, 0.5], rates=True)),
        )
    ]
    result = ExperimentResult(variants, [], {}, differences, [], {"confidence": 0.95})
    figures = _figures(monkeypatch)
    path = plot_depth_sweep(result, str(tmp_path / "sweep.png"))
    assert path == str(tmp_path / "sweep.png")
    # One line over the depths: the gain (baseline error minus variant error,
    # in points) with its Welch interval as error bars.
    [axis] = figures["sweep.png"].axes
    [line] = axis.containers
    data, _, (bars,) = line.lines
    assert line.get_label() == "erase=last"
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["erase=last"]
    gains = [-100 * d["final_error"].mean for d in differences]
    assert list(data.get_xdata()) == [8, 14]
    np.testing.assert_allclose(data.get_ydata(), gains)
    assert gains[1] > gains[0] + 1 and differences[1]["final_error"].ci_low == -1
    for segment, entry, depth in zip(bars.get_segments(), differences, (8, 14)):
        difference = entry["final_error"]
        np.testing.assert_allclose(
            segment,
            [[depth, -100 * difference.ci_high], [depth, -100 * difference.ci_low]],
        )
    assert axis.get_xscale() == "log" and list(axis.get_xticks()) == [8, 14]
    assert axis.get_title() == "Does a deeper network gain more? (95% CI)"
    assert axis.get_xlabel() == "depth (layers)"
    assert axis.get_ylabel() == "gain: error without - with (points)"
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


# The analysis of made-up runs: what `compare` does after training.
DEMO_FINALS = {  # the README demo's final errors per seed
    ("cifar_resnet32", "none"): [0.069, 0.092, 0.29, 0.55],
    ("cifar_resnet32", "last"): [0.044, 0.061, 0.05, 0.048],
}


def _epoch(error, loss):
    return {"val_accuracy": 1 - error, "loss": loss, "grad_mean/conv1": 0.2,
            "grad_var/conv1": 0.01}  # fmt: skip


def _analysed(finals, seeds=None):
    """`_analyse` of runs with two epochs each: {(model, erase): final errors}."""
    variants = as_variants(list(finals))
    runs = []
    for variant, errors in zip(variants, finals.values()):
        for seed, error in zip(seeds or range(len(errors)), errors):
            history = [_epoch(min(1.0, 0.1 + 2 * error), 1.0), _epoch(error, 0.5)]
            runs.append({"variant": variant.name, "seed": seed, "out": "",
                         "history": history})  # fmt: skip
    seeds = sorted({r["seed"] for r in runs})
    config = {"dataset": "digits", "seeds": seeds, "confidence": 0.95}
    return _analyse(variants, runs, [], config, None)


def _figures(monkeypatch):
    """The figures the plot functions save, kept open for their data."""
    figures = {}

    def keep(figure, path):
        figures[path.rsplit("/", 1)[-1]] = figure
        return path

    monkeypatch.setattr(experiment_plots, "_save", keep)
    return figures


def test_demo_errors_get_intervals_inside_0_100_everywhere(tmp_path, monkeypatch):
    result = _analysed(DEMO_FINALS)
    figures = _figures(monkeypatch)
    write_results(result, str(tmp_path), plots=True)
    table = format_table(result)
    data = json.loads((tmp_path / "results.json").read_text())
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    for entry, row, finals in zip(data["variants"], rows, DEMO_FINALS.values()):
        low, high = _logit_t_by_hand(finals)
        for metric in ("final_error", "best_error"):  # final = best here
            summary = entry[metric]
            assert summary["interval_method"] == "logit_delta_t"
            assert row[f"{metric}_interval_method"] == "logit_delta_t"
            assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
            assert 0 <= summary["ci_low"] <= summary["mean"] <= summary["ci_high"] <= 1
        mean = 100 * np.mean(finals)
        assert f"{mean:.2f} [{100 * low:.2f}, {100 * high:.2f}]" in table
        for metric, least in (("epochs_to_target", 1), ("grad_norm", 0)):
            assert entry[metric]["interval_method"] == "student_t_clipped"
            assert entry[metric]["ci_low"] is None or entry[metric]["ci_low"] >= least
    assert "25.02 [4.79, 68.89]" in table  # Student t: 25.02 [-10.48, 60.53]
    assert "Student t on the logit scale" in table
    difference = data["variants"][1]["final_error_difference"]
    assert difference["interval_method"] == "welch_t_clipped"
    assert -1 <= difference["ci_low"] <= difference["ci_high"] <= 1
    # Each seed's final error, in the table.
    lines = table.splitlines()
    start = lines.index("Final test error % per seed:")
    assert lines[start + 1].split() == ["seed", "0", "1", "2", "3"]
    assert lines[start + 2].split() == [
        "cifar_resnet32-none", "6.90", "9.20", "29.00", "55.00"
    ]  # fmt: skip
    assert lines[start + 3].split()[1:] == ["4.40", "6.10", "5.00", "4.80"]
    # The error band of curves.png: the same interval per epoch, in percent.
    axis = figures["curves.png"].axes[0]
    bands = [c for c in axis.collections if c.get_paths()]
    assert len(bands) == 2
    for band, finals in zip(bands, DEMO_FINALS.values()):
        y = band.get_paths()[0].vertices[:, 1]
        assert 0 <= y.min() and y.max() <= 100
        first = [min(1.0, 0.1 + 2 * e) for e in finals]
        for epoch_errors in (first, finals):
            low, high = _logit_t_by_hand(epoch_errors)
            assert np.isclose(y, 100 * low).any() and np.isclose(y, 100 * high).any()


@pytest.mark.parametrize("seeds, listed", [(10, True), (11, False)])
def test_the_table_lists_each_seed_up_to_ten_seeds(seeds, listed):
    errors = [0.05 + 0.001 * i for i in range(seeds)]
    table = format_table(_analysed({("cifar_resnet8", "none"): errors}))
    assert ("Final test error % per seed:" in table) is listed
    assert (f"{100 * errors[-1]:.2f}" in table) is listed
    assert ("Each seed's final error: in results.json" in table) is not listed


def test_the_table_lists_the_seeds_each_variant_has():
    result = _analysed({("cifar_resnet8", "none"): [0.1, 0.2]}, seeds=[3, 7])
    lines = format_table(result).splitlines()
    start = lines.index("Final test error % per seed:")
    assert lines[start + 1].split() == ["seed", "3", "7"]
    assert lines[start + 2].split() == ["cifar_resnet8-none", "10.00", "20.00"]


def test_differences_of_errors_stay_inside_100_points(tmp_path, monkeypatch):
    # Two seeds far apart: Welch's t(1) interval would reach beyond -100 points.
    finals = {}
    for depth in (8, 20):
        finals[(f"cifar_resnet{depth}", "none")] = [0.3, 0.5]
        finals[(f"cifar_resnet{depth}", "last")] = [0.04, 0.06]
    result = _analysed(finals)
    raw = welch_difference([0.04, 0.06], [0.3, 0.5])
    assert raw.ci_low < -1  # what the old table showed
    difference = result.differences[0]["final_error"]
    assert difference.ci_low == -1.0
    assert difference.ci_high == pytest.approx(raw.ci_high)
    assert difference.p_value == pytest.approx(raw.p_value)
    table = format_table(result)
    assert f"final error {100 * raw.mean:+.2f} [-100.00, {100 * raw.ci_high:+.2f}]" in (
        table
    )
    assert "clipped to +-100" in table
    figures = _figures(monkeypatch)
    write_results(result, str(tmp_path), plots=True)
    for name, axis in (("difference.png", 0), ("depth_sweep.png", 1)):
        ends = np.concatenate(
            [
                np.concatenate([s[:, axis] for s in c.get_segments()])
                for c in figures[name].axes[0].collections
                if hasattr(c, "get_segments")
            ]
        )
        assert ends.size and -100 <= ends.min() and ends.max() <= 100
        assert np.isclose(ends, -100.0).any() or np.isclose(ends, 100.0).any()


def test_a_worker_that_is_not_the_chief_writes_nothing_in_out(tmp_path, monkeypatch):
    # Worker 1 of two (TF_CONFIG): the chief alone holds the lock and writes
    # the results; this worker trains its runs in temporary directories.
    cluster = {"worker": ["localhost:12345", "localhost:12346"]}
    task = {"type": "worker", "index": 1}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    out = tmp_path / "compare"
    out.mkdir()
    (out / "mine.txt").write_text("the chief's")
    result = compare([("cifar_vgg_tiny", "none")], "digits", seeds=1, out=str(out),
                     epochs=1, steps_per_epoch=1, strategy="cpu",
                     verbose=0)  # fmt: skip
    assert len(result.runs) == 1 and result.trained and not result.files
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
