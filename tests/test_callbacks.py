"""ErasableReLU, make_erasable / finalize_erasure, and the callbacks."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

import keras_eraserelu as ker
from keras_eraserelu.core.erasable import (
    erasable_layers,
    finalize_erasure,
    make_erasable,
)
from keras_eraserelu.core.erasable_relu import ErasableReLU
from keras_eraserelu.training.callbacks import (
    ActivationStats,
    GradientStats,
    ProgressiveErase,
)
from tests.test_rewrite import residual_net


@pytest.fixture
def x16():
    return np.random.default_rng(2).normal(size=(4, 16, 16, 3)).astype("float32")


def test_erasable_relu_interpolates_between_relu_and_identity(tmp_path):
    x = np.array([[-4.0, -1.0, 0.0, 2.0]], "float32")
    for alpha in (0.0, 0.25, 1.0):
        layer = ErasableReLU(alpha)
        np.testing.assert_allclose(
            layer(x), np.maximum(x, 0) + alpha * np.minimum(x, 0)
        )
    assert ErasableReLU().trainable_weights == []
    inputs = keras.Input((4,))
    model = keras.Model(inputs, ErasableReLU(0.5, name="e")(inputs))
    model.get_layer("e").alpha.assign(0.75)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert float(loaded.get_layer("e").alpha.numpy()) == 0.75
    np.testing.assert_allclose(loaded(x), model(x))


def test_make_erasable_keeps_outputs_and_finalize_matches_erase_relu(x16):
    model = residual_net(fused_stem=True)
    erasable = make_erasable(model, select=["stem_conv", "b1_out", "b2_out"])
    assert [layer.name for layer in erasable_layers(erasable)] == [
        "stem_conv_erasable",
        "b1_out",
        "b2_out",
    ]
    np.testing.assert_allclose(erasable(x16), model(x16), atol=1e-6)
    for layer in erasable_layers(erasable):
        layer.alpha.assign(1.0)
    final = finalize_erasure(erasable)
    reference = ker.erase_relu(model, select=["stem_conv", "b1_out", "b2_out"])
    np.testing.assert_allclose(final(x16), reference(x16), atol=1e-5)
    assert isinstance(final.get_layer("b1_out"), layers.Identity)
    assert {s.name for s in ker.plan_erasure(final).erased_before} >= {
        "b1_out",
        "b2_out",
    }


def test_finalize_restores_relu_at_zero_and_refuses_undecided(x16):
    model = residual_net()
    erasable = make_erasable(model)
    restored = finalize_erasure(erasable)
    assert isinstance(restored.get_layer("b1_out"), layers.ReLU)
    np.testing.assert_allclose(restored(x16), model(x16), atol=1e-6)
    erasable.get_layer("b1_out").alpha.assign(0.4)
    with pytest.raises(ValueError, match=r"b1_out \(alpha=0.4\).*undecided="):
        finalize_erasure(erasable)
    kept = finalize_erasure(erasable, undecided="keep")
    np.testing.assert_allclose(kept(x16), erasable(x16), atol=1e-6)
    with pytest.warns(UserWarning, match="changes the outputs"):
        rounded = finalize_erasure(erasable, undecided="round")
    assert isinstance(rounded.get_layer("b1_out"), layers.ReLU)


def test_progressive_erase_schedule_at_the_window_edges():
    linear = ProgressiveErase(2, 6)
    assert [linear.alpha_at(e) for e in (0, 2, 4, 6, 9)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    cosine = ProgressiveErase(2, 6, schedule="cosine")
    assert cosine.alpha_at(2) == 0.0 and cosine.alpha_at(6) == 1.0
    assert cosine.alpha_at(3) == pytest.approx(0.5 * (1 - np.cos(np.pi / 4)))


def _tiny_data(n=32):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 16, 16, 3)).astype("float32"), rng.integers(0, 3, n)


def test_progressive_erase_in_fit_logs_alpha_and_reaches_identity():
    model = make_erasable(residual_net())
    model.compile(optimizer="sgd", loss=keras.losses.MeanSquaredError())
    x, _ = _tiny_data()
    y = np.zeros((32, 3), "float32")
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=5,
        verbose=0,
        callbacks=[ProgressiveErase(1, 3, per="step")],
    )
    assert history.history["alpha"][0] == 0.0
    assert history.history["alpha"][1] == pytest.approx(
        0.375
    )  # epoch 1, last of 4 steps
    assert history.history["alpha"][3:] == [1.0, 1.0]
    assert all(float(layer.alpha.numpy()) == 1.0 for layer in erasable_layers(model))


def test_activation_stats_against_a_numpy_count():
    inputs = keras.Input((5,))
    hidden = layers.Dense(6, activation="relu", name="fc")(inputs)
    model = keras.Model(inputs, layers.Dense(1, name="out")(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    x = np.random.default_rng(3).normal(size=(16, 5)).astype("float32")
    history = model.fit(
        x,
        np.zeros((16, 1)),
        epochs=2,
        verbose=0,
        callbacks=[ActivationStats(x, every=1)],
    )
    kernel, bias = model.get_layer("fc").get_weights()
    pre = x @ kernel + bias
    assert history.history["dead/fc"][-1] == pytest.approx(
        np.mean(pre.max(axis=0) <= 0)
    )
    assert history.history["zero/fc"][-1] == pytest.approx(np.mean(pre <= 0))


def test_gradient_stats_against_gradient_tape():
    inputs = keras.Input((4,))
    hidden = layers.Dense(3, activation="relu", name="fc1")(inputs)
    model = keras.Model(inputs, layers.Dense(2, name="fc2")(hidden))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    rng = np.random.default_rng(4)
    x, y = (
        rng.normal(size=(8, 4)).astype("float32"),
        rng.normal(size=(8, 2)).astype("float32"),
    )
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[GradientStats(every=1)],
    )
    norms = {"fc1": [], "fc2": []}
    for batch in (slice(0, 4), slice(4, 8)):
        with tf.GradientTape() as tape:
            loss = keras.losses.mean_squared_error(y[batch], model(x[batch]))
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss, model.trainable_variables)
        for name in norms:
            squares = [
                tf.reduce_sum(g**2)
                for g, v in zip(grads, model.trainable_variables)
                if v.path.startswith(name + "/")
            ]
            norms[name].append(float(tf.sqrt(tf.add_n(squares))))
    for name, values in norms.items():
        assert history.history[f"grad_mean/{name}"][0] == pytest.approx(
            np.mean(values), rel=1e-4
        )
        assert history.history[f"grad_var/{name}"][0] == pytest.approx(
            np.var(values), rel=1e-3, abs=1e-9
        )
    assert "apply_gradients" not in model.optimizer.__dict__


def test_callback_errors():
    with pytest.raises(ValueError, match="must end after it starts.*end_epoch=2"):
        ProgressiveErase(3, 2)
    with pytest.raises(ValueError, match="Unknown schedule='cos'"):
        ProgressiveErase(0, 2, schedule="cos")
    model = residual_net()
    model.compile(optimizer="sgd", loss="mse")
    x, _ = _tiny_data(8)
    with pytest.raises(ValueError, match="no ErasableReLU layer.*make_erasable"):
        model.fit(x, np.zeros((8, 3)), verbose=0, callbacks=[ProgressiveErase(0, 1)])
    with pytest.raises(ValueError, match="No site of model 'resnet' to make erasable"):
        make_erasable(model, modules=[0], where="last", exclude="b1_*")
    with pytest.raises(ValueError, match="no ErasableReLU layer to finalize"):
        finalize_erasure(model)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from keras_eraserelu.training.callbacks import (
        ActivationStats, GradientStats, ProgressiveErase)
    from keras_eraserelu.core.erasable import erasable_layers, make_erasable
    from tests.test_rewrite import residual_net
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = make_erasable(residual_net())
        model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 16, 16, 3)).astype("float32")
    history = model.fit(x, np.zeros((16, 3)), batch_size=8, epochs=3, verbose=0,
                        callbacks=[ProgressiveErase(0, 2), ActivationStats(x[:4]),
                                   GradientStats(every=1)])
    read = lambda layer: strategy.experimental_local_results(
        strategy.run(lambda: tf.identity(layer.alpha.value)))
    alphas = [[float(v) for v in read(layer)] for layer in erasable_layers(model)]
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "alpha": history.history["alpha"],
                      "per_replica": alphas, "keys": sorted(history.history)}))
    """
)


def test_callbacks_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    root = str(Path(__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=root,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["alpha"] == [0.0, 0.5, 1.0]
    assert all(values == [1.0, 1.0] for values in report["per_replica"])
    assert "dead/b1_relu1" in report["keys"] and "grad_mean/b1_conv1" in report["keys"]


def test_history_stats_plot_and_its_error(tmp_path):
    from keras_eraserelu.training.history_plot import plot_history_stats

    records = [
        {"epoch": e, "dead/a": 0.1 * e, "dead/b": 0.05, "loss": 1.0} for e in range(3)
    ]
    figure = plot_history_stats(records, "dead/", tmp_path / "dead.png")
    assert len(figure.axes[0].lines) == 2
    assert (tmp_path / "dead.png").stat().st_size > 5_000
    with pytest.raises(
        ValueError, match="No logged series starts with 'grad_mean/'.*GradientStats"
    ):
        plot_history_stats({"loss": [1.0]}, "grad_mean/")
