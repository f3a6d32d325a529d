"""The command line checks every value as it parses, fast and without Keras.

Bad values stop with exit status 2 and `eraserelu CMD: error: argument
--FLAG: expected ... Received: 'VALUE'.` before any model, data or Keras is
touched; the parser's name lists equal the library's registries; a user's
mistake inside a command is one line on stderr, never a traceback.
"""

import json
import re
import subprocess
import sys
import types
import zipfile

import keras
import numpy as np
import pytest

from eraserelu import arguments, names
from eraserelu.cli import build_parser, main

OUT = ["--out", "unused-run-dir"]


def test_name_lists_equal_the_library_registries():
    from keras_eraserelu.core.plan import RATIO_FROM_CHOICES, WHERE_CHOICES
    from keras_eraserelu.core.sites import _ALIASES, KNOWN_KINDS
    from keras_eraserelu.data.catalogue import DATASETS
    from keras_eraserelu.training.distribution import BACKEND_STRATEGY_CHOICES
    from keras_eraserelu.training.paper_recipes import list_recipes
    from keras_eraserelu.training.precision import PRECISION_CHOICES
    from keras_eraserelu.training.strategies import STRATEGY_CHOICES
    from keras_eraserelu.tuning.hypermodel import SPACES
    from keras_eraserelu.tuning.search import OBJECTIVES, TUNERS

    assert list(names.DATASETS) == sorted(DATASETS)
    assert list(names.RECIPES) == list_recipes()
    assert names.BACKEND_STRATEGIES == BACKEND_STRATEGY_CHOICES
    assert names.BACKEND_STRATEGIES["tensorflow"] == STRATEGY_CHOICES
    assert names.STRATEGIES == tuple(
        dict.fromkeys(n for c in BACKEND_STRATEGY_CHOICES.values() for n in c)
    )
    assert names.PRECISIONS == PRECISION_CHOICES
    assert names.POSITIONS == WHERE_CHOICES
    assert names.ERASE_WORDS == ("none", *WHERE_CHOICES)
    assert names.RATIO_FROM == RATIO_FROM_CHOICES
    assert names.KINDS == KNOWN_KINDS
    assert list(names.KIND_ALIASES) == sorted(_ALIASES)
    assert names.SPACES == SPACES
    assert names.TUNERS == TUNERS
    assert names.OBJECTIVES == OBJECTIVES


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["export", "--help"],
        ["train", "--batch-size", "0", *OUT],
        ["frobnicate"],
    ],
    ids=["help", "train-help", "export-help", "bad-value", "bad-command"],
)
def test_help_and_argument_errors_import_neither_tensorflow_nor_keras(argv):
    """`python -X importtime -m eraserelu ...` lists every module it imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "eraserelu", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == (0 if "--help" in argv else 2)
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "eraserelu.cli" in imported  # the listing is real
    heavy = sorted(
        m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "numpy")
    )
    assert heavy == []


# (argv, flag, value, what the message must also say; ".*" skips text)
BAD_VALUES = [
    (["train", "--batch-size", "0", *OUT], "--batch-size", "0", "an int >= 1"),
    (["train", "--batch-size", "-3", *OUT], "--batch-size", "-3", "an int >= 1"),
    (["train", "--batch-size", "big", *OUT], "--batch-size", "big", "an int >= 1"),
    (["train", "--epochs", "0", *OUT], "--epochs", "0", "an int >= 1"),
    (["train", "--steps-per-epoch", "0", *OUT], "--steps-per-epoch", "0", ">= 1"),
    (["train", "--seed", "-1", *OUT], "--seed", "-1", "an int >= 0"),
    (["train", "--gradient-stats", "-1", *OUT], "--gradient-stats", "-1", ">= 0"),
    (
        ["train", "--verbose", "loud", *OUT],
        "--verbose",
        "loud",
        "one of ['auto', '0', '1', '2']",
    ),
    (
        ["train", "--erase", "bogus", *OUT],
        "--erase",
        "bogus",
        "one of ['none', 'last', 'first', 'all'] or an int k",
    ),
    (
        ["train", "--dataset", "cifar11", *OUT],
        "--dataset",
        "cifar11",
        "cifar10, cifar100, digits.*tfds:NAME.*Received: 'cifar11'. "
        "Did you mean 'cifar10'?",
    ),
    (
        ["train", "--strategy", "gpus", *OUT],
        "--strategy",
        "gpus",
        "'mirrored', 'multiworker', 'tpu'.*Received: 'gpus'. Did you mean 'gpu'?",
    ),
    (["train", "--precision", "fp16", *OUT], "--precision", "fp16", "'float32'"),
    (["train", "--recipe", "he", *OUT], "--recipe", "he", "'he_cifar'"),
    (["train", "--jit-compile", "yes", *OUT], "--jit-compile", "yes", "'on', 'off'"),
    (
        ["train", "--progressive-erase", "5:2", *OUT],
        "--progressive-erase",
        "5:2",
        "0 <= START < END",
    ),
    (
        ["train", "--progressive-erase", "2-8", *OUT],
        "--progressive-erase",
        "2-8",
        "START:END",
    ),
    (
        ["train", "--manual-dir", "no/such/folder", *OUT],
        "--manual-dir",
        "no/such/folder",
        "an existing folder",
    ),
    (
        ["compare", "--erase", "none,bogus", *OUT],
        "--erase",
        "none,bogus",
        "entries of ['none', 'last', 'first', 'all'] or ints k",
    ),
    (["compare", "--erase", "last,last", *OUT], "--erase", "last,last", "each once"),
    (["compare", "--seeds", "0", *OUT], "--seeds", "0", "an int >= 1"),
    (
        ["compare", "--target-accuracy", "1", *OUT],
        "--target-accuracy",
        "1",
        "a number in (0, 1)",
    ),
    (
        ["compare", "--target-accuracy", "0", *OUT],
        "--target-accuracy",
        "0",
        "a number in (0, 1)",
    ),
    (["compare", "--depths", "20,21", *OUT], "--depths", "20,21", "each 6n + 2"),
    (["compare", "--models", ",", *OUT], "--models", ",", "comma-separated names"),
    (["compare", "--batch-size", "0", *OUT], "--batch-size", "0", "an int >= 1"),
    (["compare", "--verbose", "3", *OUT], "--verbose", "3", "one of ['0', '1', '2']"),
    (["compare", "--dataset", "svhn", *OUT], "--dataset", "svhn", "svhn_cropped"),
    (["tune", "--tuner", "bayes", *OUT], "--tuner", "bayes", "'bayesian', 'random'"),
    (["tune", "--space", "foo", *OUT], "--space", "foo", "'per_module', 'ratio'"),
    (
        ["tune", "--space", "per_module,ratio", *OUT],
        "--space",
        "per_module,ratio",
        "'position' with one of the others",
    ),
    (["tune", "--max-trials", "0", *OUT], "--max-trials", "0", "an int >= 1"),
    (["tune", "--factor", "1", *OUT], "--factor", "1", "an int >= 2"),
    (["tune", "--epochs", "0,2", *OUT], "--epochs", "0,2", "comma-separated ints"),
    (["tune", "--batch-size", "64,x", *OUT], "--batch-size", "64,x", "an int >= 1"),
    (["tune", "--where", "middle", *OUT], "--where", "middle", "'last', 'first'"),
    (["tune", "--kinds", "relu,relu7", *OUT], "--kinds", "relu,relu7", "'relu6'"),
    (["tune", "--objective", "acc", *OUT], "--objective", "acc", "'val_accuracy'"),
    (["tune", "--validation-steps", "0", *OUT], "--validation-steps", "0", ">= 1"),
    (["tune", "--seed", "x", *OUT], "--seed", "x", "an int >= 0"),
    (["tune", "--verbose", "5", *OUT], "--verbose", "5", "one of ['0', '1', '2']"),
    (["inspect", "VGG16", "--where", "bogus"], "--where", "bogus", "or an int k"),
    (["inspect", "VGG16", "--ratio", "0"], "--ratio", "0", "a number in (0, 1]"),
    (["inspect", "VGG16", "--ratio", "1.5"], "--ratio", "1.5", "in (0, 1]"),
    (["inspect", "VGG16", "--ratio", "half"], "--ratio", "half", "in (0, 1]"),
    (
        ["inspect", "VGG16", "--ratio-from", "middle"],
        "--ratio-from",
        "middle",
        "one of ['start', 'end']",
    ),
    (
        ["inspect", "VGG16", "--input-shape", "0,32,3"],
        "--input-shape",
        "0,32,3",
        "positive ints like 224,224,3",
    ),
    (["inspect", "VGG16", "--kinds", "rleu"], "--kinds", "rleu", "'relu'"),
    (["inspect", "VGG16", "--select", "re:("], "--select", "re:(", "regular expr"),
    (["inspect", "VGG16", "--modules", "re:[a"], "--modules", "re:[a", "regular"),
    (
        ["export", "VGG16", "plain.h5"],
        "OUT",
        "plain.h5",
        "a path ending in '.keras'",
    ),
    (["demo", "--seeds", "0"], "--seeds", "0", "an int >= 1"),
    (["demo", "--epochs", "-2"], "--epochs", "-2", "an int >= 1"),
]


@pytest.mark.parametrize(
    "argv, flag, value, expected", BAD_VALUES, ids=[" ".join(c[0]) for c in BAD_VALUES]
)
def test_bad_value_names_flag_value_and_choices(argv, flag, value, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    fragments = ".*".join(re.escape(part) for part in expected.split(".*"))
    pattern = (
        rf"eraserelu {argv[0]}: error: argument {re.escape(flag)}: expected "
        rf".*{fragments}"
    )
    assert re.search(pattern, err), err
    assert f"Received: {value!r}." in err


@pytest.mark.parametrize(
    "factory, text, match",
    [
        (lambda: arguments.int_at_least(1), "0", r"an int >= 1. Received: '0'"),
        (lambda: arguments.number_in(0, 1), "0", r"in \(0, 1\]. Received: '0'"),
        (lambda: arguments.placement(("last",)), "1.5", "or an int k"),
        (lambda: arguments.window, "3:3", "0 <= START < END"),
        (lambda: arguments.shape, "", "positive ints"),
    ],
)
def test_type_functions_raise_argument_type_errors(factory, text, match):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match=match):
        factory()(text)


def test_good_values_parse_to_what_the_library_takes():
    parse = build_parser().parse_args
    args = parse(
        ["inspect", "m.keras", "--where", "-1", "--modules", "2", "--modules", "s*"]
    )
    assert (args.where, args.modules, args.kinds, args.ratio) == (
        -1,
        [2, "s*"],
        ("relu",),
        1.0,
    )
    args = parse(["train", *OUT, "--erase", "0", "--verbose", "2"])
    assert (args.erase, args.verbose, args.dataset, args.strategy) == (
        0,
        2,
        "cifar10",
        "auto",
    )
    args = parse(["train", *OUT, "--progressive-erase", "0:4", "--verbose", "auto"])
    assert (args.progressive_erase, args.verbose) == ((0, 4), "auto")
    args = parse(["compare", *OUT, "--erase", "none, last,2", "--depths", "8,20"])
    assert (args.erase, args.depths, args.seeds) == (["none", "last", 2], [8, 20], 5)
    args = parse(["tune", *OUT, "--space", "position,ratio", "--epochs", "1,2"])
    assert (args.space, args.epochs, args.batch_size) == (
        ("position", "ratio"),
        [1, 2],
        None,
    )


def _commands():
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if a.dest == "command"]
    return subparsers.choices


def test_every_command_is_offered_and_every_option_has_help():
    commands = _commands()
    assert set(commands) == {
        "inspect",
        "export",
        "fold",
        "models",
        "train",
        "tune",
        "compare",
        "demo",
    }
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, command in commands.items()
        for action in command._actions
        if not action.help
    ]
    assert missing == []


def test_restart_reaches_train_with_the_parsed_values(monkeypatch, tmp_path, capsys):
    import keras_eraserelu.training

    calls = []

    def fake_train(*args, **kwargs):
        calls.append((args, kwargs))
        return types.SimpleNamespace(history=[{}], final={"val_accuracy": 0.5})

    monkeypatch.setattr(keras_eraserelu.training, "train", fake_train)
    argv = ["train", "--out", str(tmp_path), "--restart", "--erase", "2"]
    argv += ["--verbose", "1", "--progressive-erase", "1:3", "--jit-compile", "off"]
    assert main(argv) == 0
    ((args, kwargs),) = calls
    assert args == ("cifar_resnet20", "cifar10")
    assert kwargs["restart"] is True and kwargs["erase"] == 2
    assert kwargs["verbose"] == 1 and kwargs["progressive_erase"] == (1, 3)
    assert kwargs["jit_compile"] is False and kwargs["batch_size"] is None
    assert "val_accuracy 0.5000" in capsys.readouterr().out
    calls.clear()
    assert main(["train", "--out", str(tmp_path)]) == 0
    assert calls[0][1]["restart"] is False


def test_restart_reaches_compare(monkeypatch, tmp_path):
    import keras_eraserelu.experiments

    calls = []
    monkeypatch.setattr(
        keras_eraserelu.experiments,
        "compare",
        lambda *a, **k: calls.append((a, k)),
    )
    argv = ["compare", "--out", str(tmp_path), "--models", "cifar_resnet8"]
    assert main([*argv, "--restart", "--erase", "none,2"]) == 0
    ((args, kwargs),) = calls
    assert args[0] == [("cifar_resnet8", "none"), ("cifar_resnet8", 2)]
    assert kwargs["restart"] is True
    assert main(argv) == 0
    assert calls[1][1]["restart"] is False


@pytest.mark.parametrize(
    "error",
    [
        PermissionError(13, "Permission denied", "/root/run"),
        IsADirectoryError(21, "Is a directory", "run"),
        NotADirectoryError(20, "Not a directory", "file/run"),
        FileExistsError(17, "File exists", "run"),
        FileNotFoundError(2, "No such file or directory", "run"),
        ValueError("bad value"),
        TypeError("bad type"),
        IndexError("bad index"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_user_errors_inside_a_command_exit_2_without_traceback(
    error, monkeypatch, capsys
):
    from eraserelu import commands as cli_commands

    def fail(args):
        raise error

    monkeypatch.setattr(cli_commands, "run_models", fail)
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err == f"eraserelu models: error: {error}\n"


def test_unwritable_or_folder_paths_stop_before_the_model_is_built(tmp_path, capsys):
    missing = tmp_path / "no_such_folder" / "plan.json"
    # "NoSuchModel" would fail when loaded: the path check comes first.
    assert main(["inspect", "NoSuchModel", "--json", str(missing)]) == 2
    err = capsys.readouterr().err
    folder = repr(str(missing.parent))
    assert f"argument --json: expected a path in an existing folder ({folder} " in err
    assert f"does not exist). Received: {str(missing)!r}." in err
    assert "Unknown model" not in err
    assert main(["inspect", "NoSuchModel", "--plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    expected = f"expected a file path, not a folder. Received: {str(tmp_path)!r}."
    assert f"argument --plot: {expected}" in err
    out = str(tmp_path / "gone" / "plain.keras")
    assert main(["export", "NoSuchModel", out]) == 2
    err = capsys.readouterr().err
    assert (
        "eraserelu export: error: argument OUT: expected a path in an existing" in err
    )


def test_folder_without_write_permission_is_refused(tmp_path, monkeypatch, capsys):
    # Root may write anywhere, so the permission answer is simulated.
    monkeypatch.setattr(arguments.os, "access", lambda path, mode: False)
    assert main(["inspect", "VGG16", "--json", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert f"a path this user may write ({str(tmp_path)!r} is not writable)" in err


def _zip_without_config(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.weights.h5", b"weights")


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda p: p.write_bytes(b""), "it is empty"),
        (lambda p: p.write_text("not a zip"), "9 bytes of something else"),
        (_zip_without_config, "bytes of something else"),
    ],
    ids=["empty", "text", "zip-without-config"],
)
def test_a_file_that_is_no_keras_archive_is_named_as_such(make, what, tmp_path, capsys):
    path = tmp_path / "model.keras"
    make(path)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"eraserelu inspect: error: {str(path)!r} is not a Keras archive (.keras zip)"
    )
    assert what in err and "not found" not in err


def test_a_folder_named_like_an_archive_is_no_archive(tmp_path, capsys):
    folder = tmp_path / "model.keras"
    folder.mkdir()
    assert main(["export", str(folder), str(tmp_path / "out.keras")]) == 2
    assert "is a folder, not a Keras archive" in capsys.readouterr().err


def test_export_writes_a_model_of_standard_keras_layers(tmp_path, capsys):
    pytest.importorskip("keras_eraserelu.models.export")
    from keras_eraserelu.models.registry import create_model

    model = create_model("cifar_resnet8", erase="last")
    source, target = tmp_path / "r8.keras", tmp_path / "r8_plain.keras"
    model.save(source)
    assert main(["export", str(source), str(target)]) == 0
    out = capsys.readouterr().out
    assert f"written to {target}" in out and "FusedBatchNormalization" in out
    plain = keras.models.load_model(target)
    modules = {type(layer).__module__.split(".")[0] for layer in plain.layers}
    assert modules == {"keras"}
    images = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(plain(images), model(images), rtol=1e-5, atol=1e-6)


def test_inspect_json_is_written(tmp_path, capsys):
    path = tmp_path / "plan.json"
    assert main(["inspect", "cifar_resnet8", "--where", "-1", "--json", str(path)]) == 0
    assert f"plan written to {path}" in capsys.readouterr().out
    assert json.loads(path.read_text())["settings"]["where"] == -1


def test_a_strategy_of_another_backend_is_refused_naming_what_each_offers(
    tmp_path, capsys
):
    argv = ["train", "--model", "cifar_resnet8", "--dataset", "digits",
            "--strategy", "data_parallel", "--epochs", "1",
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "strategy='data_parallel' is not available on the tensorflow backend" in err
    assert "jax: auto, cpu, data_parallel; torch: auto, cpu" in err
    assert not (tmp_path / "run" / "history.json").exists()
