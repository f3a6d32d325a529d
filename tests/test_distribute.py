"""Strategies, TF_CONFIG, chief-only writing, precision/XLA and the Keras fix.

Anything that needs several devices or a cluster runs in fresh subprocesses
(tests/scripts/distribute_*.py) with hard timeouts: TensorFlow's devices
cannot change once it has started, and a MultiWorkerMirroredStrategy must be
created before anything else in its process.
"""

import importlib.util
import inspect
import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_eraserelu.training import compat
from keras_eraserelu.training.cluster import (
    chief_or_temp_dir,
    is_chief,
    read_tf_config,
    worker_count,
    writable_dir,
)
from keras_eraserelu.training.precision import (
    PRECISION_CHOICES,
    apply_precision,
    resolve_jit_compile,
    resolve_precision,
)
from keras_eraserelu.training.strategies import (
    STRATEGY_CHOICES,
    describe_strategy,
    make_strategy,
    per_replica_batch_size,
)

SCRIPTS = Path(__file__).parent / "scripts"
# A guard against hangs, well above the ~10-25 s these subprocesses take.
SUBPROCESS_TIMEOUT = 150


def _load_common():
    spec = importlib.util.spec_from_file_location(
        "distribute_common", SCRIPTS / "distribute_common.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load_common()


def _tf_config(workers, task_type="worker", index=0, **extra_jobs):
    cluster = {"worker": [f"localhost:{port}" for port in workers], **extra_jobs}
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _weights(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def _reference():
    """The same training on the default strategy, in this process."""
    model, history = common.train(tf.distribute.get_strategy())
    return model.get_weights(), history


def _run_workers(tmp_path, modes):
    """Runs one distribute_worker.py per mode as a 2-worker cluster on localhost."""
    ports = _free_ports(len(modes))
    out_dir, report_dir = tmp_path / "run", tmp_path / "reports"
    report_dir.mkdir()
    processes = []
    for index, mode in enumerate(modes):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env["TF_CONFIG"] = _tf_config(ports, index=index)
        log = open(tmp_path / f"worker{index}.log", "w")
        command = [sys.executable, str(SCRIPTS / "distribute_worker.py")]
        command += [str(out_dir), str(report_dir), mode]
        processes.append(
            (
                subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env=env
                ),
                log,
            )
        )
    try:
        for process, _ in processes:
            process.wait(timeout=SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"The workers did not finish in {SUBPROCESS_TIMEOUT} s.")
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(len(modes))]
    return out_dir, report_dir, [p.returncode for p, _ in processes], logs


class _FakeStrategy:
    """Stands in for a strategy where only devices and replicas are read."""

    def __init__(self, devices=("CPU:0",), replicas=None):
        self.extended = type("Extended", (), {"worker_devices": tuple(devices)})()
        self.num_replicas_in_sync = replicas or len(devices)


class TPUStrategyFake(_FakeStrategy):
    """Named like a TPU strategy, which is how Keras recognises one too."""


@pytest.fixture
def no_cluster(monkeypatch):
    for name in ("TF_CONFIG", "TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE"):
        monkeypatch.delenv(name, raising=False)


# Multi-worker training through `fit` (subprocesses).


def test_multiworker_fit_gives_identical_weights_and_chief_only_files(tmp_path):
    # Worker 0 asks for "multiworker", worker 1 for "auto": TF_CONFIG names two
    # workers, so both end with a patched MultiWorkerMirroredStrategy.
    out_dir, report_dir, codes, logs = _run_workers(tmp_path, ["multiworker", "auto"])
    assert codes == [0, 0], "\n\n".join(logs)[-5000:]
    reports = [json.loads((report_dir / f"worker{i}.json").read_text()) for i in (0, 1)]
    for index, report in enumerate(reports):
        assert report["patched"] is True
        assert report["describe"]["strategy"] == "MultiWorkerMirroredStrategy"
        assert report["describe"]["replicas"] == 2
        assert report["describe"]["workers"] == 2
        assert report["describe"]["is_chief"] is (index == 0)
        assert report["per_replica_batch"] == common.GLOBAL_BATCH // 2
    reference, reference_history = _reference()
    # Loss and metrics (train and validation) are means over both workers'
    # replicas: the same numbers as on one device.
    for report in reports:
        assert report["history"].keys() == reference_history.keys()
        for key, values in reference_history.items():
            np.testing.assert_allclose(report["history"][key], values, rtol=1e-5)
    loss = reports[0]["history"]["loss"]
    assert loss[-1] < loss[0]
    chief, other = (_weights(report_dir / f"worker{i}.npz") for i in (0, 1))
    for a, b, ref in zip(chief, other, reference):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-6)
    # Only the chief wrote the run directory; the other worker's temporary
    # directory is gone.
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "history.json",
        "model.weights.h5",
    ]
    assert reports[0]["run_dir"] == str(out_dir)
    assert not Path(reports[1]["run_dir"]).exists()


@pytest.mark.skipif(
    not compat.needs_multiworker_fix(), reason="this Keras needs no multi-worker fix"
)
def test_multiworker_fit_fails_without_the_fix(tmp_path):
    out_dir, report_dir, codes, logs = _run_workers(tmp_path, ["nofix", "nofix"])
    assert all(code != 0 for code in codes), "\n\n".join(logs)[-5000:]
    for log in logs:
        assert "Attempt to convert a value (PerReplica" in log, log[-3000:]
    assert not list(report_dir.iterdir())
    assert not out_dir.exists()


def test_mirrored_over_two_logical_cpus_matches_one_device(tmp_path):
    command = [sys.executable, str(SCRIPTS / "distribute_mirrored.py"), str(tmp_path)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["describe"] == {
        "strategy": "MirroredStrategy",
        "replicas": 2,
        "workers": 1,
        "is_chief": True,
        "devices": [
            "/job:localhost/replica:0/task:0/device:CPU:0",
            "/job:localhost/replica:0/task:0/device:CPU:1",
        ],
    }
    assert any("no GPU found" in w and "2 logical CPU" in w for w in report["warnings"])
    assert report["per_replica_batch"] == common.GLOBAL_BATCH // 2
    assert (
        "global batch size 17 is not divisible by the 2 replicas"
        in (report["batch_error"])
    )
    assert (report["precision"], report["jit_compile"]) == ("float32", False)
    # Two replicas each average the loss over half the global batch and the
    # strategy sums their gradients: the same update as the full batch.
    for key, values in report["default_history"].items():
        np.testing.assert_allclose(report["history"][key], values, rtol=1e-5)
    mirrored = _weights(tmp_path / "mirrored.npz")
    default = _weights(tmp_path / "default.npz")
    initial = common.build_model().get_weights()
    for a, b, start in zip(mirrored, default, initial):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert not np.allclose(a, start)


# The compat guard, in this process (monkeypatch restores Keras afterwards).


@pytest.fixture
def trainer(monkeypatch):
    """Keras' TF trainer module, unpatched now and restored after the test."""
    from keras.src.backend.tensorflow import trainer

    build = trainer.TensorFlowTrainer._maybe_symbolic_build
    monkeypatch.setattr(
        trainer.TensorFlowTrainer, "_maybe_symbolic_build", inspect.unwrap(build)
    )
    monkeypatch.setattr(
        trainer, "reduce_per_replica", inspect.unwrap(trainer.reduce_per_replica)
    )
    return trainer


needs_fix = pytest.mark.skipif(
    not compat.needs_multiworker_fix(), reason="this Keras needs no multi-worker fix"
)


@needs_fix
def test_patch_is_idempotent_and_leaves_single_device_fit_alone(trainer):
    reference, reference_history = _reference()  # before patching
    assert not compat.is_patched()
    assert compat.patch_multiworker_fit() is True
    assert compat.is_patched()
    assert compat.patch_multiworker_fit() is False
    weights, history = _reference()
    for a, b in zip(weights, reference):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    for key, values in reference_history.items():
        np.testing.assert_allclose(history[key], values, rtol=1e-6)


def test_patch_switches_off_when_keras_is_newer(trainer, monkeypatch):
    build, reduce = (
        trainer.TensorFlowTrainer._maybe_symbolic_build,
        (trainer.reduce_per_replica),
    )
    monkeypatch.setattr(keras, "version", lambda: "3.16.0")
    assert compat.keras_version() == (3, 16, 0)
    assert compat.needs_multiworker_fix() is False
    assert compat.patch_multiworker_fit() is False
    assert trainer.TensorFlowTrainer._maybe_symbolic_build is build
    assert trainer.reduce_per_replica is reduce
    assert compat.patch_multiworker_fit(version=(4, 0, 0)) is False


@needs_fix
def test_patch_only_wraps_what_is_still_broken(trainer, monkeypatch):
    def reduce_per_replica(values, strategy, reduction):  # an upstream fix
        return values

    monkeypatch.setattr(trainer, "reduce_per_replica", reduce_per_replica)
    assert compat.patch_multiworker_fit() is True
    assert trainer.reduce_per_replica is reduce_per_replica
    assert compat.is_patched()


# Strategies by name.


def test_cpu_strategy_description_is_json_ready(no_cluster):
    strategy = make_strategy("cpu")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    description = describe_strategy(strategy)
    assert json.loads(json.dumps(description)) == description
    assert description["strategy"] == "OneDeviceStrategy"
    assert (description["replicas"], description["workers"]) == (1, 1)
    assert description["is_chief"] is True
    assert description["devices"][0].endswith("CPU:0")


def test_auto_on_a_cpu_box_is_the_default_strategy(no_cluster):
    strategy = make_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert describe_strategy(strategy)["strategy"] == "DefaultStrategy"


def test_mirrored_on_one_cpu_says_so(no_cluster):
    with pytest.warns(UserWarning, match=r"no GPU found.*Split the CPU"):
        strategy = make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == len(tf.config.list_logical_devices("CPU"))


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="has a GPU")
def test_gpu_without_gpu_lists_devices():
    with pytest.raises(ValueError, match=r"needs a GPU.*Devices found: \[.*CPU:0"):
        make_strategy("gpu")


def test_tpu_without_tpu_is_a_clear_error(no_cluster):
    with pytest.raises(ValueError, match=r"no TPU reachable with tpu=None"):
        make_strategy("tpu")


def test_unknown_strategy_name_suggests_a_close_one():
    with pytest.raises(ValueError, match=r"Unknown strategy='mirored'.*'mirrored'"):
        make_strategy("mirored")
    with pytest.raises(TypeError, match=r"must be a str.*Received: strategy=2"):
        make_strategy(2)
    assert "multiworker" in STRATEGY_CHOICES


def test_per_replica_batch_size_errors_suggest_valid_sizes():
    strategy = _FakeStrategy(replicas=4)
    assert per_replica_batch_size(32, strategy) == 8
    with pytest.raises(
        ValueError, match=r"30 is not divisible by the 4 replicas.*28 or 32\."
    ):
        per_replica_batch_size(30, strategy)
    with pytest.raises(ValueError, match=r"sizes: 4\."):
        per_replica_batch_size(3, strategy)
    with pytest.raises(ValueError, match=r"`global_batch_size` must be an int >= 1"):
        per_replica_batch_size(0, strategy)
    with pytest.raises(TypeError, match=r"must be an int.*32\.0"):
        per_replica_batch_size(32.0, strategy)


# TF_CONFIG and the chief.


def test_read_tf_config(monkeypatch, no_cluster):
    assert read_tf_config() is None
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], index=1))
    assert read_tf_config()["task"] == {"type": "worker", "index": 1}


@pytest.mark.parametrize(
    "tf_config, match",
    [
        ("{'cluster': {}}", r"not valid JSON.*Expected an object"),
        ("[1, 2]", r"must be a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', r"TF_CONFIG\['cluster'\] must"),
        ('{"cluster": {"worker": ["a:1"]}}', r"TF_CONFIG\['task'\] must say"),
        (
            '{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}',
            r"TF_CONFIG\['cluster'\]\['worker'\] must be a list of 'host:port'",
        ),
        (
            _tf_config([1, 2], index=2),
            r"\['index'\]=2 is not a task of job 'worker', which has 2 task\(s\): "
            r"expected an int from 0 to 1",
        ),
        (
            _tf_config([1, 2], task_type="wroker"),
            r"\['type'\]='wroker' is not a job.*\['worker'\].*Did you mean 'worker'",
        ),
    ],
)
def test_bad_tf_config_names_the_field(monkeypatch, tf_config, match):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=match):
        read_tf_config()
    with pytest.raises(ValueError, match=match):
        make_strategy("multiworker")


def test_multiworker_needs_a_training_task(monkeypatch, no_cluster):
    with pytest.raises(ValueError, match=r"needs the TF_CONFIG.*not set"):
        make_strategy("multiworker")
    monkeypatch.setenv(
        "TF_CONFIG", _tf_config([1, 2], task_type="evaluator", evaluator=["e:3"])
    )
    with pytest.raises(ValueError, match=r"'evaluator' does not train"):
        make_strategy("multiworker")


@pytest.mark.parametrize(
    "task_type, index, extra, chief, workers",
    [
        ("worker", 0, {}, True, 2),
        ("worker", 1, {}, False, 2),
        ("chief", 0, {"chief": ["c:9"]}, True, 3),
        ("worker", 0, {"chief": ["c:9"]}, False, 3),
        ("evaluator", 0, {"evaluator": ["e:9"]}, False, 2),
    ],
)
def test_chief_and_worker_count(monkeypatch, task_type, index, extra, chief, workers):
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], task_type, index, **extra))
    assert is_chief() is chief
    assert worker_count() == workers


def test_without_tf_config_this_process_is_the_chief(no_cluster):
    assert is_chief() is True
    assert worker_count() == 1


def test_writable_dir_only_the_chief_writes_out_dir(monkeypatch, tmp_path):
    out_dir = tmp_path / "run"
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], index=1))
    with writable_dir(out_dir) as path:
        assert Path(path).is_dir() and Path(path) != out_dir
        (Path(path) / "checkpoint").write_text("x")
    assert not Path(path).exists()
    assert not out_dir.exists()
    temp = chief_or_temp_dir(out_dir)
    assert Path(temp).is_dir() and not out_dir.exists()
    os.rmdir(temp)

    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], index=0))
    with writable_dir(out_dir) as path:
        (Path(path) / "checkpoint").write_text("x")
    assert path == str(out_dir)
    assert (out_dir / "checkpoint").read_text() == "x"
    assert chief_or_temp_dir(out_dir) == str(out_dir)


# Precision and XLA.


def test_precision_auto_follows_the_device():
    assert resolve_precision("auto", make_strategy("cpu")) == "float32"
    assert resolve_precision("auto", _FakeStrategy(["GPU:0"])) == "mixed_float16"
    assert resolve_precision("auto", TPUStrategyFake(["TPU:0"])) == "mixed_bfloat16"
    assert resolve_precision("float32", _FakeStrategy(["GPU:0"])) == "float32"
    assert "mixed_bfloat16" in PRECISION_CHOICES


def test_16_bit_precision_on_cpu_warns_unless_it_is_fast(monkeypatch):
    from keras_eraserelu.training import precision

    cpu = make_strategy("cpu")
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match=r"no bfloat16 instructions"):
        assert resolve_precision("mixed_bfloat16", cpu) == "mixed_bfloat16"
    with pytest.warns(UserWarning, match=r"float16 arithmetic is emulated"):
        resolve_precision("mixed_float16", cpu)
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("mixed_bfloat16", cpu) == "mixed_bfloat16"


def test_bad_precision():
    with pytest.raises(ValueError, match=r"precision='mixed_float'.*'mixed_float16'"):
        resolve_precision("mixed_float")
    with pytest.raises(TypeError, match=r"must be a str.*precision=16"):
        resolve_precision(16)


def test_apply_precision_sets_the_global_policy():
    try:
        assert apply_precision("mixed_bfloat16", make_strategy("cpu")) == (
            "mixed_bfloat16"
        )
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        layer = keras.layers.Dense(2)
        assert (layer.compute_dtype, layer.variable_dtype) == ("bfloat16", "float32")
        assert apply_precision("auto", make_strategy("cpu")) == "float32"
        assert keras.config.dtype_policy().name == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


def test_jit_compile_auto_only_on_a_single_gpu():
    assert resolve_jit_compile("auto", make_strategy("cpu")) is False
    assert resolve_jit_compile("auto", _FakeStrategy(["GPU:0"])) is True
    assert resolve_jit_compile("auto", _FakeStrategy(["GPU:0", "GPU:1"])) is False
    assert resolve_jit_compile("auto", TPUStrategyFake(["TPU:0"])) is False
    assert resolve_jit_compile(True, make_strategy("cpu")) is True
    assert resolve_jit_compile(False, _FakeStrategy(["GPU:0"])) is False
    with pytest.raises(ValueError, match=r"True, False or 'auto'.*'yes'"):
        resolve_jit_compile("yes")
