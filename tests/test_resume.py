"""A run killed mid-epoch and resumed ends where the uninterrupted run ends.

Each run is its own process, as a user's would be: one uninterrupted, one
SIGKILLed in the middle of an epoch and then started again. The data order,
the augmentation and dropout's random state must continue exactly, so the
final weights are identical (float32 on one CPU: same ops, same order).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_eraserelu.data.pipelines import load_dataset
from keras_eraserelu.training.run_files import read_history

ROOT = Path(__file__).parents[1]

# A wide ResNet with dropout (seed generators), digits with random shifts
# (augmentation seeds), 5 epochs of 6 steps; KILL_AT = (epoch, batch).
TRAIN = """
import os, sys
from keras_eraserelu.training.trainer import train
from kill_at import KillAt

kill = os.environ.get("KILL_AT")
callbacks = [KillAt(*map(int, kill.split(",")))] if kill else []
result = train("wrn10_1", "digits", erase="last", epochs=5, batch_size=32,
               steps_per_epoch=6, seed=3, out=sys.argv[1], verbose=0,
               model_kwargs={"dropout_rate": 0.3}, callbacks=callbacks)
result.model.save_weights(sys.argv[2])
"""


def _run(out, weights, kill_at=None):
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests")])  # kill_at.py
    env = {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KILL_AT", None)
    if kill_at:
        env["KILL_AT"] = ",".join(map(str, kill_at))
    return subprocess.run(
        [sys.executable, "-c", TRAIN, str(out), str(weights)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _weights(path):
    import h5py

    arrays = {}
    with h5py.File(path) as handle:
        handle.visititems(
            lambda name, item: (
                arrays.__setitem__(name, item[()]) if hasattr(item, "shape") else None
            )
        )
    return arrays


def test_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    straight = _run(tmp_path / "straight", tmp_path / "straight.weights.h5")
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed = _run(tmp_path / "killed", tmp_path / "unused.weights.h5", (2, 3))
    assert killed.returncode == -9, killed.stderr[-3000:]
    stopped = read_history(tmp_path / "killed" / "history.json")
    assert [r["epoch"] for r in stopped["epochs"]] == [0, 1]

    resumed = _run(tmp_path / "killed", tmp_path / "resumed.weights.h5")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {tmp_path / 'killed'} at epoch 3 of 5" in resumed.stdout

    expected = _weights(tmp_path / "straight.weights.h5")
    got = _weights(tmp_path / "resumed.weights.h5")
    assert expected.keys() == got.keys() and len(expected) > 20
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    history = read_history(tmp_path / "killed" / "history.json")["epochs"]
    reference = read_history(tmp_path / "straight" / "history.json")["epochs"]
    assert [r["val_accuracy"] for r in history] == [
        r["val_accuracy"] for r in reference
    ]


@pytest.mark.parametrize("augment", [False, True])
def test_skipped_pipeline_continues_the_full_one(augment):
    full = load_dataset("digits", "train", 64, seed=5, repeat=True, augment=augment)
    part = load_dataset(
        "digits", "train", 64, seed=5, repeat=True, augment=augment, skip_batches=30
    )
    expected = [batch for _, batch in zip(range(34), full)][30:]
    got = [batch for _, batch in zip(range(4), part)]
    for (x_expected, y_expected), (x_got, y_got) in zip(expected, got):
        np.testing.assert_array_equal(x_got.numpy(), x_expected.numpy())
        np.testing.assert_array_equal(y_got.numpy(), y_expected.numpy())


def test_skip_must_be_a_count():
    with pytest.raises(ValueError, match="`skip_batches` must be an int >= 0.*=-1"):
        load_dataset("digits", "train", 64, skip_batches=-1)
