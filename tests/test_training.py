"""train(): files, resumption after a kill, multi-replica runs, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest
import tensorflow_datasets as tfds

from keras_eraserelu.training.run_files import read_history
from keras_eraserelu.training.trainer import train

ROOT = Path(__file__).parents[1]


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def test_train_writes_model_history_and_tensorboard(tmp_path):
    out = tmp_path / "run"
    result = train(
        "cifar_resnet8",
        "digits",
        erase="last",
        epochs=2,
        batch_size=64,
        out=str(out),
        verbose=0,
    )
    history = read_history(out / "history.json")
    assert history["completed"] is True
    assert [r["epoch"] for r in history["epochs"]] == [0, 1]
    assert (
        history["config"]["recipe"] == "he_cifar" and history["config"]["epochs"] == 2
    )
    assert history["strategy"]["replicas"] == 1
    assert set(history["versions"]) >= {"keras", "tensorflow", "keras_eraserelu"}
    assert history["epochs"][-1]["val_accuracy"] > 0.3  # 10 classes: chance is 0.1
    assert list((out / "tensorboard").rglob("events.out.tfevents*"))
    loaded = keras.models.load_model(out / "model.keras")
    assert isinstance(loaded.get_layer("stage1_block1_out"), keras.layers.Identity)
    assert not (out / "backup").exists()
    assert result.final == history["epochs"][-1]

    again = train(
        "cifar_resnet8",
        "digits",
        erase="last",
        epochs=2,
        batch_size=64,
        out=str(out),
        verbose=0,
    )
    assert again.resumed and again.history == history["epochs"]
    with pytest.raises(
        ValueError, match="holds another run.*erase='last'.*erase='none'"
    ):
        train("cifar_resnet8", "digits", epochs=2, batch_size=64, out=str(out))


def test_train_on_tfds_data_offline_with_progressive_erasure(tmp_path):
    with tfds.testing.mock_data(num_examples=64):
        result = train(
            "cifar_vgg_tiny",
            "cifar10",
            epochs=2,
            batch_size=32,
            steps_per_epoch=2,
            validation_steps=1,
            progressive_erase=(0, 1),
            activation_stats=True,
            gradient_stats=1,
            verbose=0,
        )
    assert [r["alpha"] for r in result.history] == [0.0, 1.0]
    assert any(key.startswith("dead/") for key in result.final)
    assert any(key.startswith("grad_mean/") for key in result.final)


def test_killed_run_resumes_without_lost_or_repeated_epochs(tmp_path):
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "eraserelu",
        "train",
        "--model",
        "cifar_resnet8",
        "--dataset",
        "digits",
        "--epochs",
        "6",
        "--batch-size",
        "16",
        "--out",
        str(out),
        "--verbose",
        "0",
    ]
    process = subprocess.Popen(
        command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 240
    history = None
    while time.time() < deadline and process.poll() is None:
        history = (
            read_history(out / "history.json")
            if (out / "history.json").exists()
            else None
        )
        if history and len(history["epochs"]) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = len(read_history(out / "history.json")["epochs"])
    assert 2 <= killed_at < 6

    result = subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    history = read_history(out / "history.json")
    assert history["completed"] is True
    assert [r["epoch"] for r in history["epochs"]] == list(range(6))
    assert (out / "model.keras").exists() and not (out / "backup").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
devices = [tf.config.LogicalDeviceConfiguration()] * 2
tf.config.set_logical_device_configuration(cpu, devices)
import json, sys
from keras_eraserelu.training.trainer import train
try:
    train("cifar_resnet8", "digits", epochs=1, batch_size=63, strategy="mirrored",
          verbose=0)
except ValueError as error:
    print("ERROR", error)
result = train("cifar_resnet8", "digits", epochs=2, batch_size=64, strategy="mirrored",
               out=sys.argv[1], verbose=0)
from keras_eraserelu.data.pipelines import load_dataset
examples = sum(len(y) for _, y in load_dataset("digits", "test", 50))
# After fit, the metrics hold the last validation's totals.
seen = {v.path: float(v.numpy()) for m in result.model.metrics for v in m.variables}
# A user's arrays (read per replica) and tf.data pair (distributed by data).
import numpy as np
x = np.random.default_rng(0).integers(0, 256, (96, 8, 8, 1), dtype="uint8")
y = np.arange(96) % 10
pair = (tf.data.Dataset.from_tensor_slices((x[:80], y[:80])).batch(16),
        tf.data.Dataset.from_tensor_slices((x[80:], y[80:])))
validated = {}
for kind, data in (("arrays", (x, y)), ("tf.data", pair)):
    user = train("cifar_resnet8", data, epochs=1, batch_size=16, strategy="mirrored",
                 verbose=0)
    totals = {v.path: float(v.numpy()) for m in user.model.metrics for v in m.variables}
    validated[kind] = totals["accuracy/count"]
print(json.dumps({"fit": result.final, "seen": seen, "examples": examples,
                  "validated": validated}))
"""


def test_train_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ERROR" in result.stdout and "63" in result.stdout
    history = read_history(tmp_path / "run" / "history.json")
    assert history["strategy"]["replicas"] == 2 and history["completed"]
    # Each validation covers the test set exactly once and says nothing
    # about running out of data.
    assert "ran out of data" not in result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    seen = metrics["seen"]
    assert seen["accuracy/count"] == metrics["examples"] == 360
    assert metrics["fit"]["val_accuracy"] == pytest.approx(
        seen["accuracy/total"] / metrics["examples"]
    )
    # A user's data too: each test example validated once over the 2 replicas.
    assert metrics["validated"] == {"arrays": 10, "tf.data": 16}


def test_bad_input_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="Unknown.*'cifar11'.*cifar10"):
        train("cifar_resnet8", "cifar11")
    with pytest.raises(ValueError, match="'he_cifr'.*he_cifar"):
        train("cifar_resnet8", "digits", recipe="he_cifr")
    with pytest.raises(ValueError, match="'cifar_resnet9'"):
        train("cifar_resnet9", "digits")
    with pytest.raises(ValueError, match="'lst' matched no site.*stage1_block1_out"):
        train("cifar_resnet8", "digits", erase="lst")
    with pytest.raises(ValueError, match="window must end after it starts"):
        train("cifar_resnet8", "digits", progressive_erase=(3, 1))
    with pytest.raises(ValueError, match="strategy.*'mirored'"):
        train("cifar_resnet8", "digits", epochs=1, strategy="mirored")


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_multiworker_run_only_the_chief_writes_the_run_directory(tmp_path):
    out = tmp_path / "run"
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    command = [
        sys.executable,
        "-m",
        "eraserelu",
        "train",
        "--model",
        "cifar_resnet8",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--strategy",
        "multiworker",
        "--out",
        str(out),
        "--verbose",
        "0",
    ]
    workers = []
    for index in range(2):
        tf_config = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        workers.append(
            subprocess.Popen(
                command,
                env=_env(TF_CONFIG=tf_config),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [worker.communicate(timeout=240) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    history = read_history(out / "history.json")
    assert history["strategy"]["workers"] == 2 and history["strategy"]["replicas"] == 2
    assert [r["epoch"] for r in history["epochs"]] == [0, 1] and history["completed"]
    assert sorted(p.name for p in out.iterdir()) == [
        "history.json",
        "model.keras",
        "tensorboard",
    ]  # the chief's lock (the other worker takes none) released
