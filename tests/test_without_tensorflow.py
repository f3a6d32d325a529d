"""JAX without TensorFlow: the package imports, trains on in-memory data,
resumes, searches placements and runs the demo where `import tensorflow`
fails.

One subprocess with KERAS_BACKEND=jax and a `tensorflow` package on its path
whose import raises ImportError (as on a machine with JAX and Keras alone).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

CHECKS = r"""
import json, sys, warnings
from pathlib import Path

import numpy as np

work = Path(sys.argv[1])
found = {}
import keras_eraserelu as ker
from keras_eraserelu.models import create_model

model = create_model("cifar_resnet8", input_shape=(8, 8, 1), classes=10)
found["erased"] = len(ker.plan_erasure(model).erased)
found["tensorflow_after_import"] = "tensorflow" in sys.modules

from keras_eraserelu.data import load_dataset
from keras_eraserelu.training import train

found["engine"] = type(load_dataset("digits", "train", 32)).__name__
try:
    load_dataset("cifar10", "train", 32)
except ImportError as error:
    found["cifar10"] = str(error)

rng = np.random.default_rng(0)
x = rng.integers(0, 256, (40, 8, 8, 1)).astype("uint8")
arrays = ((x[:30], np.arange(30) % 10), (x[30:], np.arange(10)))
import keras


class Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("crashed in epoch 2")


for attempt, callbacks in enumerate([[Crash()], []]):  # the second resumes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = train("cifar_resnet8", arrays, erase="last", epochs=2,
                           batch_size=16, verbose=0, out=str(work / "run"),
                           activation_stats=True, callbacks=callbacks)
            found["resumed"] = result.resumed
        except RuntimeError as error:
            found["crash"] = str(error)
found["warnings"] = [str(w.message) for w in caught]
found["files"] = sorted(p.name for p in (work / "run").iterdir())
found["history"] = json.loads((work / "run" / "history.json").read_text())["epochs"]

from keras_eraserelu.tuning import tune_placements

search = tune_placements("cifar_resnet8", "digits", tuner="random", max_trials=2,
                         directory=str(work / "tune"), verbose=0, epochs=1,
                         steps_per_epoch=2)  # fmt: skip
found["trials"] = [trial["status"] for trial in search.trials]

from eraserelu.cli import main
found["cli_cifar10"] = main(["train", "--model", "cifar_resnet8", "--dataset",
                             "cifar10", "--out", str(work / "cifar10")])
found["cifar10_dir"] = (work / "cifar10").exists()
found["demo"] = main(["demo", "--seeds", "1", "--epochs", "1", "--out",
                      str(work / "demo")])
found["tensorflow_at_the_end"] = "tensorflow" in sys.modules
(work / "found.json").write_text(json.dumps(found, default=str))
"""


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    pytest.importorskip("jax")
    work = tmp_path_factory.mktemp("without-tensorflow")
    shadow = work / "shadow" / "tensorflow"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        'raise ImportError("TensorFlow is made unimportable for this test")\n'
    )
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(ROOT)])}  # fmt: skip
    process = subprocess.run(
        [sys.executable, "-c", CHECKS, str(work)], env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    found = json.loads((work / "found.json").read_text())
    found["stdout"], found["stderr"] = process.stdout, process.stderr
    return found


def test_importing_the_package_and_rewriting_import_no_tensorflow(found):
    assert found["erased"] > 0
    assert found["tensorflow_after_import"] is False
    assert found["tensorflow_at_the_end"] is False


def test_in_memory_data_come_as_a_keras_py_dataset(found):
    assert found["engine"] == "ArrayBatches"


def test_data_that_need_tensorflow_say_so_and_what_works_without(found):
    message = found["cifar10"]
    assert "'cifar10'" in message and "TensorFlow cannot be imported" in message
    assert "'digits', (x, y) arrays" in message


def test_the_command_line_refuses_them_with_exit_2_and_no_run_directory(found):
    assert found["cli_cifar10"] == 2
    assert "eraserelu train: error: The data set 'cifar10'" in found["stderr"]
    assert found["cifar10_dir"] is False


def test_train_writes_its_run_directory_and_resumes(found):
    assert found["crash"] == "crashed in epoch 2" and found["resumed"] is True
    assert [epoch["epoch"] for epoch in found["history"]] == [0, 1]
    assert any(key.startswith("dead/") for key in found["history"][-1])
    assert {"history.json", "model.keras"} <= set(found["files"])
    assert "tensorboard" not in found["files"]  # Keras writes TensorBoard logs with TF
    assert any("No TensorBoard logs" in message for message in found["warnings"])


def test_a_placement_search_completes_its_trials(found):
    assert found["trials"] == ["COMPLETED", "COMPLETED"]


def test_the_demo_runs_and_reports(found):
    assert found["demo"] in (0, None)
    assert "cifar_resnet32-last" in found["stdout"]
    assert "Final test error % per seed" in found["stdout"]
    assert "tensorboard --logdir" not in found["stdout"]
