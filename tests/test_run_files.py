"""Run directories: one process at a time, checked before work, damage named."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eraserelu.cli import main
from keras_eraserelu.experiments.comparison import compare
from keras_eraserelu.training import run_files as run_record
from keras_eraserelu.training import trainer as training
from keras_eraserelu.training.run_files import DamagedRunFileError, check_output_dir
from keras_eraserelu.training.run_lock import LOCK_FILE, RunLock, RunLockedError
from keras_eraserelu.training.trainer import train
from keras_eraserelu.tuning.search import tune_placements

ROOT = Path(__file__).parents[1]
TINY = dict(epochs=2, batch_size=64, steps_per_epoch=2, verbose=0)

# Waits for the test's "go" file, then trains; prints the outcome as JSON.
RACER = """
import json, os, sys, time
from keras_eraserelu.training.run_lock import RunLockedError
from keras_eraserelu.training.trainer import train
out, ready, go = sys.argv[1:4]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
try:
    train("cifar_resnet8", "digits", epochs=2, batch_size=64, steps_per_epoch=3,
          out=out, verbose=0)
    print(json.dumps({"pid": os.getpid(), "trained": True}))
except RunLockedError as error:
    print(json.dumps({"pid": os.getpid(), "trained": False, "error": str(error)}))
"""

HOLDER = """
import os, signal, sys, time
from keras_eraserelu.training.run_lock import RunLock
with RunLock(sys.argv[1], purpose="train"):
    print(os.getpid(), flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(120)
"""


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _hold(directory, how="wait"):
    """A process holding the lock of `directory` (or dying while holding it)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), how],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = int(process.stdout.readline())
    return process, pid


def test_two_processes_started_together_one_trains_the_other_is_told(tmp_path):
    out, go = tmp_path / "run", tmp_path / "go"
    racers = []
    for index in range(2):
        ready = tmp_path / f"ready{index}"
        command = [sys.executable, "-c", RACER, str(out), str(ready), str(go)]
        racers.append(subprocess.Popen(command, env=_env(), stdout=-1, text=True))
    deadline = time.time() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.time() < deadline, "the racers did not start"
        time.sleep(0.05)
    go.touch()
    outcomes = [
        json.loads(p.communicate(timeout=300)[0].splitlines()[-1]) for p in racers
    ]
    winner, loser = sorted(outcomes, key=lambda o: not o["trained"])
    assert winner["trained"] and not loser["trained"]
    assert (
        f"is in use by another process: pid {winner['pid']} on host" in (loser["error"])
    )
    assert "train since" in loser["error"]
    history = json.loads((out / "history.json").read_text())
    assert history["completed"] and [r["epoch"] for r in history["epochs"]] == [0, 1]
    assert len(list((out / "tensorboard" / "train").glob("events.*"))) == 1
    assert not (out / LOCK_FILE).exists()  # released cleanly


def test_lock_of_a_killed_process_is_taken_over_with_a_note(tmp_path, capsys):
    process, pid = _hold(tmp_path, "die")
    process.wait()
    with RunLock(tmp_path):
        note = capsys.readouterr().err
        held = json.loads((tmp_path / LOCK_FILE).read_text())
    assert f"taking over the lock of pid {pid} on host" in note
    assert "ended without releasing it" in note
    assert held["pid"] == os.getpid()


def test_train_compare_and_tune_refuse_a_directory_in_use(tmp_path):
    process, pid = _hold(tmp_path / "run")
    try:
        with pytest.raises(
            RunLockedError, match=f"in use by another process: pid {pid}"
        ):
            train("cifar_resnet8", "digits", out=str(tmp_path / "run"), **TINY)
        assert not (tmp_path / "run" / "history.json").exists()
        with pytest.raises(RunLockedError, match=f"pid {pid} on host .* train since"):
            compare(["cifar_resnet8"], "digits", seeds=1, out=str(tmp_path / "run"))
    finally:
        process.kill()
        process.wait()
    with RunLock(tmp_path / "tune", name=".vgg_ratio_random.lock"):
        # The lock is in this process: a second search here must still refuse.
        with pytest.raises(RunLockedError, match="in use by another process"):
            tune_placements(
                "cifar_vgg_tiny",
                "digits",
                space="ratio",
                tuner="random",
                max_trials=1,
                epochs=1,
                steps_per_epoch=1,
                directory=str(tmp_path / "tune"),
                project_name="vgg_ratio_random",
            )


def test_output_paths_are_checked_before_any_data_or_model(tmp_path, monkeypatch):
    def not_now(*args, **kwargs):
        raise AssertionError("data loaded before the output path was checked")

    monkeypatch.setattr(training, "distributed_dataset", not_now)
    monkeypatch.setattr(training, "_steps", not_now)
    existing_file = tmp_path / "a_file"
    existing_file.write_text("x")
    with pytest.raises(ValueError, match="'.*a_file' is an existing file, not a dir"):
        train("cifar_resnet8", "digits", out=str(existing_file), **TINY)
    with pytest.raises(ValueError, match="cannot be created: '.*a_file' is a file"):
        train("cifar_resnet8", "digits", out=str(existing_file / "run"), **TINY)
    with pytest.raises(ValueError, match="'.*a_file' is an existing file, not a dir"):
        compare(["cifar_resnet8"], "digits", seeds=1, out=str(existing_file))
    with pytest.raises(ValueError, match="'.*a_file' is an existing file, not a dir"):
        tune_placements("cifar_vgg_tiny", "digits", directory=str(existing_file))

    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: path != str(tmp_path) and real_access(path, mode),
    )
    with pytest.raises(ValueError, match="not writable: no permission to write in"):
        train("cifar_resnet8", "digits", out=str(tmp_path / "new"), **TINY)
    monkeypatch.setattr(os, "access", real_access)

    usage = run_record.shutil.disk_usage(tmp_path)._replace(free=3 * 2**20)
    monkeypatch.setattr(run_record.shutil, "disk_usage", lambda path: usage)
    with pytest.raises(ValueError, match="No space left .* 3.0 MiB free .* 64 MiB"):
        check_output_dir(tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run directory as a kill after epoch 1 of 2 leaves it."""
    out = tmp_path_factory.mktemp("interrupted") / "run"
    train("cifar_resnet8", "digits", out=str(out), **{**TINY, "epochs": 1})
    history = json.loads((out / "history.json").read_text())
    history["completed"] = False
    history["config"]["epochs"] = 2
    (out / "history.json").write_text(json.dumps(history))
    return out


def _copy(source, target):
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    return target


def test_damaged_files_are_named_with_the_way_out(interrupted_run, tmp_path):
    # A finished run's checkpoint is removed; give this one a checkpoint.
    out = _copy(interrupted_run, tmp_path / "run")
    (out / "backup").mkdir()
    weights = out / "backup" / "epoch-1.weights.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # truncated
    (out / "backup" / "state.json").write_text(
        json.dumps({"epoch": 1, "weights": weights.name})
    )
    with pytest.raises(
        DamagedRunFileError, match=f"{weights} is damaged .*cannot be loaded.*--restart"
    ):
        train("cifar_resnet8", "digits", out=str(out), **TINY)

    (out / "backup" / "state.json").write_text('{"epoch": 1, "wei')
    with pytest.raises(
        DamagedRunFileError,
        match="state.json is damaged \\(not valid JSON.*Delete it .*--restart",
    ):
        train("cifar_resnet8", "digits", out=str(out), **TINY)

    (out / "history.json").write_text('{"config": {"mod')
    with pytest.raises(DamagedRunFileError, match="history.json is damaged"):
        train("cifar_resnet8", "digits", out=str(out), **TINY)

    result = train("cifar_resnet8", "digits", out=str(out), restart=True, **TINY)
    assert [r["epoch"] for r in result.history] == [0, 1]
    assert not result.resumed


def test_a_damaged_model_file_of_a_finished_run_is_named(tmp_path):
    out = tmp_path / "run"
    train("cifar_resnet8", "digits", out=str(out), **{**TINY, "epochs": 1})
    (out / "model.keras").write_bytes(b"")
    with pytest.raises(DamagedRunFileError, match="model.keras is damaged .*Keras"):
        train("cifar_resnet8", "digits", out=str(out), **{**TINY, "epochs": 1})


def _damage(out, case):
    """Damages a copy of an interrupted run as the user found it damaged."""
    backup = out / "backup"
    backup.mkdir(exist_ok=True)
    (backup / "epoch-1.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    (backup / "state.json").write_text('{"epoch": 1, "weights": "epoch-1.weights.h5"}')
    if case == "history":
        (out / "history.json").write_text('{"config": {"mod')
        return out / "history.json"
    if case == "state":
        (backup / "state.json").write_text('{"epoch": 1, "wei')
        return backup / "state.json"
    return backup / "epoch-1.weights.h5"


@pytest.mark.parametrize("case", ["history", "state", "weights"])
def test_cli_names_a_damaged_file_and_exits_2(interrupted_run, tmp_path, case, capsys):
    out = _copy(interrupted_run, tmp_path / "run")
    damaged = _damage(out, case)
    argv = "train --model cifar_resnet8 --dataset digits --epochs 2 --batch-size 64"
    argv = [*argv.split(), "--steps-per-epoch", "2", "--out", str(out)]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"eraserelu train: error: {damaged} is damaged" in error
    assert "Delete it" in error and "--restart" in error
    assert "Traceback" not in error


def test_cli_refuses_unusable_or_busy_output_directories(tmp_path, capsys):
    train_argv = ["train", "--model", "cifar_resnet8", "--dataset", "digits"]
    existing_file = tmp_path / "a_file"
    existing_file.write_text("x")
    assert main([*train_argv, "--out", str(existing_file)]) == 2
    assert "is an existing file, not a directory" in capsys.readouterr().err
    process, pid = _hold(tmp_path / "busy")
    try:
        assert main([*train_argv, "--out", str(tmp_path / "busy")]) == 2
        assert f"in use by another process: pid {pid}" in capsys.readouterr().err
        compare_argv = ["compare", "--models", "cifar_resnet8", "--dataset", "digits"]
        assert main([*compare_argv, "--out", str(tmp_path / "busy")]) == 2
        assert f"in use by another process: pid {pid}" in capsys.readouterr().err
    finally:
        process.kill()
        process.wait()


def test_cli_refuses_an_unwritable_or_full_output_directory(
    tmp_path, monkeypatch, capsys
):
    argv = ["train", "--model", "cifar_resnet8", "--dataset", "digits"]
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: path != str(tmp_path) and real_access(path, mode),
    )
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("eraserelu train: error: The output directory ")
    assert "is not writable: no permission to write in" in error
    monkeypatch.setattr(os, "access", real_access)

    usage = run_record.shutil.disk_usage(tmp_path)._replace(free=2**20)
    monkeypatch.setattr(run_record.shutil, "disk_usage", lambda path: usage)
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    assert "No space left for the output directory" in capsys.readouterr().err
    assert main(["compare", "--models", "cifar_resnet8", "--out", str(tmp_path)]) == 2
    assert "1.0 MiB free" in capsys.readouterr().err
