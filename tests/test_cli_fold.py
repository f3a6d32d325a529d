"""`eraserelu fold`: the parsed values reach fold_linear, the report is
printed, the folded model is written atomically and computes what the model
did."""

import json

import keras
import numpy as np
import pytest

from eraserelu import names
from eraserelu.cli import build_parser, main

L = keras.layers


def test_chain_words_equal_the_library_choices():
    from keras_eraserelu.folding import CHAIN_CHOICES

    assert names.FOLD_CHAINS == tuple(
        "none" if c is False else c for c in CHAIN_CHOICES
    )


def test_options_parse_to_what_fold_linear_takes(tmp_path):
    out = str(tmp_path / "folded.keras")
    args = build_parser().parse_args(
        ["fold", "m.keras", "--out", out, "--chains", "none", "--no-batch-norm",
         "--residuals", "--input-shape", "32,32,3"]
    )  # fmt: skip
    assert (args.runner, args.out, args.chains) == ("run_fold", out, "none")
    assert args.no_batch_norm and args.residuals and args.input_shape == (32, 32, 3)
    defaults = build_parser().parse_args(["fold", "m.keras", "--out", out])
    assert (defaults.chains, defaults.no_batch_norm, defaults.residuals) == (
        "cheaper",
        False,
        False,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--chains", "sometimes"], "argument --chains: expected one of ['cheaper', "
         "'always', 'none']. Received: 'sometimes'."),
        (["--chains", "alway"], "Did you mean 'always'?"),
        (["--out", "folded.h5"], "argument --out: expected a path ending in '.keras'"),
    ],
)  # fmt: skip
def test_bad_values_stop_before_any_model_is_read(argv, message, capsys):
    argv = ["fold", "missing.keras", "--out", "folded.keras", *argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def saved_model(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Conv2D(4, 1, name="project")(L.Identity(name="erased")(x))
    model = keras.Model(inputs, L.ReLU(name="relu")(x))
    rng = np.random.default_rng(0)
    bn = model.get_layer("bn")
    bn.moving_mean.assign(rng.normal(size=8))
    bn.moving_variance.assign(rng.uniform(0.5, 2, size=8))
    path = tmp_path / "model.keras"
    model.save(path)
    return model, path


def test_fold_prints_the_report_and_writes_the_folded_model(saved_model, capsys):
    model, path = saved_model
    out, report = path.parent / "folded.keras", path.parent / "report.json"
    assert main(["fold", str(path), "--out", str(out), "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "1 identities removed, 1 batch norms folded, 1 chains merged" in printed
    assert f"written to {out}" in printed and f"report written to {report}" in printed
    folded = keras.models.load_model(out)
    assert [type(layer).__name__ for layer in folded.layers] == [
        "InputLayer",
        "Conv2D",
        "ReLU",
    ]
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(folded(x), model(x), rtol=1e-5, atol=1e-5)
    assert json.loads(report.read_text())["layer_calls"] == [5, 2]
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "folded.keras",
        "model.keras",
        "report.json",
    ]


def test_no_batch_norm_and_no_chains_reach_fold_linear(saved_model, capsys):
    _, path = saved_model
    out = str(path.parent / "kept.keras")
    assert main(["fold", str(path), "--out", out, "--no-batch-norm", "--chains",
                 "none"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "1 identities removed, 0 batch norms folded, 0 chains merged" in printed


def test_an_interrupted_save_leaves_the_previous_file(saved_model, monkeypatch, capsys):
    _, path = saved_model
    out = path.parent / "folded.keras"
    out.write_bytes(b"previous")

    def broken_save(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as stream:
            stream.write(b"half")
        raise PermissionError("disk gone")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    assert main(["fold", str(path), "--out", str(out)]) == 2
    assert "eraserelu fold: error: disk gone" in capsys.readouterr().err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "folded.keras",
        "model.keras",
    ]
