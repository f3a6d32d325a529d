"""LayerStatsProgbar: per-layer statistics on the console as one mean each."""

import re

import keras
import numpy as np
import pytest

from keras_eraserelu.training.callbacks import ActivationStats, GradientStats
from keras_eraserelu.training.progress import LayerStatsProgbar, summarize_layer_logs
from keras_eraserelu.training.trainer import train
from tests.test_rewrite import residual_net


def test_summarize_layer_logs_replaces_families_by_their_means():
    logs = {
        "loss": 0.5,
        "val_loss": 0.7,
        "dead/a": 0.0,
        "dead/b": 0.5,
        "grad_var/a": 2.0,
        "grad_var/b": 3.0,
        "grad_var/c": 7.0,
        "mine/a": 1.0,  # not a per-layer family of the package's: kept
    }
    assert summarize_layer_logs(logs) == {
        "loss": 0.5,
        "val_loss": 0.7,
        "mine/a": 1.0,
        "dead/mean": 0.25,
        "grad_var/mean": 4.0,
    }
    assert summarize_layer_logs(None) == {}
    assert summarize_layer_logs(logs, families=("mine",))["mine/mean"] == 1.0


def _printed(text, key):
    """The value Keras' bar printed for `key` (as ' - key: 0.1234')."""
    match = re.search(rf" - {re.escape(key)}: ([-+.0-9e]+)", text)
    assert match, f"{key!r} not in {text!r}"
    return float(match.group(1))


def test_fit_prints_means_and_keeps_every_value_in_the_history(capsys):
    model = residual_net()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 3, 16)
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=2,
        callbacks=[ActivationStats(x), GradientStats(every=1), LayerStatsProgbar()],
    ).history
    line = capsys.readouterr().out
    for family in ("dead", "zero", "grad_mean", "grad_var"):
        values = [v[0] for k, v in history.items() if k.startswith(family + "/")]
        assert len(values) >= 3  # one a site or layer, in the history
        printed = _printed(line, f"{family}/mean")
        assert printed == pytest.approx(np.mean(values), rel=1e-3, abs=1e-4)
    assert "b1_out" not in line and "stem_conv" not in line
    assert _printed(line, "loss") == pytest.approx(history["loss"][0], rel=1e-3)


def _train_briefly(**kwargs):
    train(
        "cifar_resnet8",
        "digits",
        epochs=1,
        steps_per_epoch=2,
        validation_steps=1,
        activation_stats=True,
        verbose=2,
        **kwargs,
    )


def test_train_shows_the_means_and_keeps_a_users_progress_bar(capsys):
    _train_briefly()
    line = capsys.readouterr().out
    assert "dead/mean" in line and "dead/stage" not in line

    class Counting(keras.callbacks.ProgbarLogger):
        epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            Counting.epochs += 1
            super().on_epoch_end(epoch, logs)

    _train_briefly(callbacks=[Counting()])
    assert Counting.epochs == 1
    assert "dead/stage" in capsys.readouterr().out  # theirs prints everything
