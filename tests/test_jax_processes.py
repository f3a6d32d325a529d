"""Several JAX processes train one model, and a JAX run killed after an
epoch resumes to the uninterrupted run's weights.

Each `train()` is its own process (tests/jax_process_checks.py), as a
user's would be: two processes on localhost with one host device each, and
one process with two host devices, train the same global batches to the same
weights; only process 0 writes the run directory. The same run on two
devices, SIGKILLed in its second epoch (its first epoch's checkpoint
complete) and started again, ends where the one that never stopped ends.
The checks of Keras' process variables and of the command-line flags need
no JAX.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from eraserelu import arguments
from eraserelu.cli import build_parser, main
from eraserelu.commands import set_process_environment
from keras_eraserelu.training.batch_shares import ShareBatches, batch_share
from keras_eraserelu.training.cluster import is_chief, worker_count, writable_dir
from keras_eraserelu.training.distribution import BackendStrategy
from keras_eraserelu.training.processes import ProcessSettings, read_process_settings
from keras_eraserelu.training.run_files import read_history

ROOT = Path(__file__).parents[1]
SCRIPT = Path(__file__).with_name("jax_process_checks.py")
TIMEOUT = 120  # seconds a round may take; a lost peer would wait for minutes
# float32: two processes sum the global batch in another order than one.
TOLERANCE = dict(rtol=1e-5, atol=1e-6)
# Every run: 2 epochs of 8 steps of 16 images from 128, so an epoch is one
# pass and the resumed run skips a whole pass; 21 test images (a last batch
# of 5, which does not split over 2 devices).
RUN = {"epochs": 2, "steps": 8, "train": 128, "validation": 21}


def _free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def _run(work, name, out=None, devices=1, processes=None, kill_at=None):
    """One entry of the plan: run `name` (its files named after `out`, by
    default `name`) on `devices` host devices; `processes` = (port, count,
    id) joins it to others."""
    out = out or name
    env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "TMPDIR": str(work / f"{name}-tmp")}  # fmt: skip
    if processes:
        port, count, process_id = processes
        env.update(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"localhost:{port}",
                   KERAS_DISTRIBUTION_NUM_PROCESSES=str(count),
                   KERAS_DISTRIBUTION_PROCESS_ID=str(process_id))  # fmt: skip
    os.makedirs(env["TMPDIR"])
    files = {"out": str(work / out), "weights": str(work / f"{name}.npz"),
             "report": str(work / f"{name}.json")}  # fmt: skip
    args = {**files, "kill_at": kill_at, **RUN}
    return {"name": name, "env": env, "args": args, "log": str(work / f"{name}.log")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run, from one process that imported everything once: first
    together (they share the 2 cores) the two processes of one run, one
    process with two devices (also the run that never stops) and the same
    run to be killed during its second epoch; then the killed run again.
    Yields (work directory, {name: exit status})."""
    pytest.importorskip("jax", reason="jax is not installed (pip install -e '.[test]')")
    work = tmp_path_factory.mktemp("jax-processes")
    port = _free_port()
    first = [
        _run(work, "process0", processes=(port, 2, 0)),
        # Its own `out`: a non-chief must write nothing there.
        _run(work, "process1", processes=(port, 2, 1)),
        _run(work, "two_devices", devices=2),
        _run(work, "killed", devices=2, kill_at=[1, 0]),
    ]
    at_kill = [  # what the kill left, before the resumed run changes it
        [str(work / "killed" / "history.json"), str(work / "killed-history.json")],
        [
            str(work / "killed" / "backup" / "state.json"),
            str(work / "killed-state.json"),
        ],
    ]
    then = [_run(work, "resumed", "killed", devices=2)]
    plan = {"rounds": [{"runs": first, "then_copy": at_kill}, {"runs": then}],
            "timeout": TIMEOUT}  # fmt: skip
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KERAS_DISTRIBUTION_", "XLA_FLAGS"))}  # fmt: skip
    env.update(
        KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
        TF_CPP_MIN_LOG_LEVEL="3",
        # The runs of one device layout compile once.
        JAX_COMPILATION_CACHE_DIR=str(work / "jax-cache"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), json.dumps(plan)], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=2 * TIMEOUT + 60)
    finally:
        if process.poll() is None:  # it and the runs it forked
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, stderr[-3000:]
    return work, json.loads(stdout.splitlines()[-1])


def _succeeded(runs, *names):
    work, statuses = runs
    for name in names:
        assert statuses[name] == 0, (work / f"{name}.log").read_text()[-3000:]


def _weights(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def _report(work, name):
    return json.loads((work / f"{name}.json").read_text())


def test_two_processes_train_the_weights_of_one_process_with_two_devices(runs):
    names = ("process0", "process1", "two_devices")
    _succeeded(runs, *names)
    work = runs[0]
    # 21 test images, batches of 16: the last batch of 5 loses 1 on 2 devices.
    assert "does not split over 2 devices" in (work / "process0.log").read_text()

    reports = [_report(work, name) for name in names]
    print("seconds per run:", [r["seconds"] for r in reports])
    assert [r["process"] for r in reports] == [[0, 2], [1, 2], [0, 1]]
    assert [r["devices"] for r in reports] == [[1, 2], [1, 2], [2, 2]]
    assert [(r["is_chief"], r["worker_count"]) for r in reports] == [
        (True, 2), (False, 2), (True, 1)]  # fmt: skip
    described = reports[1]["strategy"]
    assert described["strategy"] == "DataParallel" and described["replicas"] == 2
    assert (described["workers"], described["is_chief"]) == (2, False)

    first, second, one = (_weights(work / f"{name}.npz") for name in names)
    assert len(first) == 8  # conv (2), batch norm (4), logits (2)
    for a, b, c in zip(first, second, one):
        np.testing.assert_array_equal(b, a)  # one replicated model
        np.testing.assert_allclose(a, c, **TOLERANCE)
    assert [r["val_loss"] for r in reports[0]["history"]] == pytest.approx(
        [r["val_loss"] for r in reports[2]["history"]], rel=1e-5
    )

    history = read_history(work / "process0" / "history.json")
    assert history["strategy"]["workers"] == 2 and history["strategy"]["is_chief"]
    assert {"history.json", "model.keras"} <= set(os.listdir(work / "process0"))
    assert not (work / "process1").exists()
    left = os.listdir(work / "process1-tmp")  # where its run directory was
    assert not [name for name in left if name.startswith("keras_eraserelu_worker_")]


def test_jax_run_killed_after_an_epoch_resumes_to_the_uninterrupted_weights(runs):
    work, statuses = runs
    _succeeded(runs, "two_devices")  # the run that never stopped
    assert statuses["killed"] == -9, (work / "killed.log").read_text()[-3000:]
    # What the kill left: the first epoch's checkpoint and record, complete.
    assert json.loads((work / "killed-state.json").read_text())["epoch"] == 1
    kept = read_history(work / "killed-history.json")["epochs"]
    assert [r["epoch"] for r in kept] == [0]

    _succeeded(runs, "resumed")
    out = work / "killed"
    resumed = (work / "resumed.log").read_text()
    assert f"resuming {out} at epoch 2 of 2 (1 finished epochs kept)" in resumed
    assert _report(work, "resumed")["resumed"] is True
    epochs = read_history(out / "history.json")["epochs"]
    assert [r["epoch"] for r in epochs] == [0, 1]  # each epoch once

    for got, expected in zip(_weights(work / "resumed.npz"),
                             _weights(work / "two_devices.npz")):  # fmt: skip
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    reference = read_history(work / "two_devices" / "history.json")["epochs"]
    assert [r["val_loss"] for r in epochs] == pytest.approx(
        [r["val_loss"] for r in reference], rel=1e-6
    )


# Keras' process variables and the command-line flags: no JAX needed.

PROCESSES = {
    "KERAS_DISTRIBUTION_JOB_ADDRESSES": "host0:1234",
    "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
    "KERAS_DISTRIBUTION_PROCESS_ID": "1",
}


def test_process_variables_are_read_and_checked():
    assert read_process_settings({}) is None
    assert read_process_settings({"KERAS_DISTRIBUTION_NUM_PROCESSES": "1"}) is None
    assert read_process_settings(PROCESSES) == ProcessSettings("host0:1234", 2, 1)
    every = {**PROCESSES, "KERAS_DISTRIBUTION_JOB_ADDRESSES": "h0:1, h1:2"}
    assert read_process_settings(every).coordinator == "h0:1"


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"KERAS_DISTRIBUTION_PROCESS_ID": ""},
         "missing here: KERAS_DISTRIBUTION_PROCESS_ID"),
        ({"KERAS_DISTRIBUTION_PROCESS_ID": "2"},
         r"PROCESS_ID must be an int from 0 to 1. Received: .*='2'"),
        ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "two"},
         r"NUM_PROCESSES must be an int >= 1. Received: .*='two'"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "host0"},
         r"the coordinator's host:port .* Received: .*='host0'"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "h0:1,h1:2,h2:3"},
         "lists 3 addresses but KERAS_DISTRIBUTION_NUM_PROCESSES=2"),
        ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "1"},
         r"PROCESS_ID must be an int from 0 to 0. Received: .*='1'"),
    ],
)  # fmt: skip
def test_bad_process_variables_name_the_variable(changes, match):
    with pytest.raises(ValueError, match=match):
        read_process_settings({**PROCESSES, **changes})


def test_batch_share_splits_each_global_batch_in_place():
    assert [batch_share(16, i, 2, 2) for i in (0, 1)] == [(0, 8), (8, 16)]
    assert [batch_share(16, i, 2, 4) for i in (0, 1)] == [(0, 8), (8, 16)]
    assert [batch_share(5, i, 2, 2) for i in (0, 1)] == [(0, 2), (2, 4)]
    assert batch_share(5, 0, 1, 2) == (0, 4) and batch_share(1, 0, 1, 2) == (0, 0)


def test_share_batches_cuts_every_batch_of_a_py_dataset():
    import keras

    class Batches(keras.utils.PyDataset):
        num_batches = 2

        def __getitem__(self, index):
            rows = np.arange(16 * index, 16 * index + (16 if index == 0 else 5))
            return rows[:, None], rows

    batches = [ShareBatches(Batches(), i, 2, 2) for i in (0, 1)]
    assert [b.num_batches for b in batches] == [2, 2]
    assert [b[0][1].tolist() for b in batches] == [list(range(8)),
                                                   list(range(8, 16))]  # fmt: skip
    assert [b[1][1].tolist() for b in batches] == [[16, 17], [18, 19]]
    assert batches[1][1][0].shape == (2, 1)


def test_a_non_chief_jax_process_writes_to_a_temporary_directory(tmp_path):
    second = BackendStrategy("DataParallel", "jax", "cpu", ("cpu:0", "cpu:1"),
                             process_id=1, num_processes=2)  # fmt: skip
    assert (is_chief(second), worker_count(second)) == (False, 2)
    assert second.describe()["workers"] == 2 and not second.describe()["is_chief"]
    with writable_dir(tmp_path / "run", second) as directory:
        assert Path(directory).exists() and not (tmp_path / "run").exists()
    assert not Path(directory).exists()
    first = BackendStrategy("DataParallel", "jax", "cpu", ("cpu:0", "cpu:1"),
                            process_id=0, num_processes=2)  # fmt: skip
    assert (is_chief(first), worker_count(first)) == (True, 2)


def test_process_flags_parse_and_become_keras_variables(monkeypatch):
    argv = ["train", "--out", "run", "--coordinator-address", "10.0.0.1:1234",
            "--num-processes", "2", "--process-id", "1"]  # fmt: skip
    args = build_parser().parse_args(argv)
    assert (args.coordinator_address, args.num_processes, args.process_id) == (
        "10.0.0.1:1234", 2, 1)  # fmt: skip
    monkeypatch.setattr("keras.backend.backend", lambda: "jax")
    environ = {}
    assert (
        set_process_environment(args, environ)
        == environ
        == {
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234",
            "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
            "KERAS_DISTRIBUTION_PROCESS_ID": "1",
        }
    )
    assert read_process_settings(environ) == ProcessSettings("10.0.0.1:1234", 2, 1)
    none = types.SimpleNamespace(coordinator_address=None, num_processes=None,
                                 process_id=None)  # fmt: skip
    assert set_process_environment(none, environ) == {}


@pytest.mark.parametrize(
    "flags, match",
    [
        (["--num-processes", "2", "--process-id", "0"],
         "go together .*missing: --coordinator-address"),
        (["--coordinator-address", "h:1", "--num-processes", "2", "--process-id",
          "2"], r"--process-id: expected an int from 0 to 1 .*Received: 2"),
        (["--coordinator-address", "h:1", "--num-processes", "2", "--process-id",
          "0"], "the Keras backend is tensorflow. Set KERAS_BACKEND=jax"),
    ],
)  # fmt: skip
def test_process_flags_that_do_not_fit_stop_with_exit_2(flags, match, capsys):
    assert main(["train", "--out", "unused-run", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eraserelu train: error: ") and err.count("\n") == 1
    assert re.search(match, err), err


def test_a_bad_coordinator_address_stops_the_parser():
    with pytest.raises(argparse.ArgumentTypeError, match="HOST:PORT with a port"):
        arguments.host_port("10.0.0.1:99999")
    assert main(["train", "--out", "x", "--coordinator-address", "host"]) == 2
