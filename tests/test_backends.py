"""Keras 3 on every backend: the same model file, the same step, on JAX and torch.

The TensorFlow side (this process) saves a cifar_resnet8 built with
FusedBatchNormalization as `.keras`, its outputs and the weights after one
step of `train`; one subprocess per backend (tests/backend_checks.py) loads
that file, trains the same step from the same weights and batch, and on JAX
also over two host devices with `keras.distribution.DataParallel`, runs
`compare`, `tune_placements` and a resumed run. One subprocess per backend
keeps the imports (several seconds each) to two.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from test_recipes import BIAS, KERNEL, L2, LR, MOMENTUM, X, Y, numpy_steps

from keras_eraserelu.models import create_model
from keras_eraserelu.training import make_strategy, train

ROOT = Path(__file__).parents[1]
SCRIPT = Path(__file__).with_name("backend_checks.py")
# float32 after one SGD step of a small ResNet: the backends sum in other orders.
STEP_TOLERANCE = dict(rtol=1e-4, atol=2e-5)


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The TensorFlow reference: model file, data, outputs, one step."""
    work = tmp_path_factory.mktemp("backends")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 96).astype("int32")
    np.savez(work / "data.npz", x=x[:64], y=y[:64], x_val=x[64:], y_val=y[64:])
    keras.utils.set_random_seed(3)
    model = create_model("cifar_resnet8", input_shape=(8, 8, 1), classes=10)
    model.save(work / "initial.keras")
    np.savez(
        work / "tensorflow-outputs.npz",
        inference=model(x[:64], training=False).numpy(),
        training=model(x[:64], training=True).numpy(),
    )
    result = train(
        str(work / "initial.keras"), ((x[:64], y[:64]), (x[64:], y[64:])),
        reinitialize=False, recipe="he_cifar", epochs=1, batch_size=64,
        steps_per_epoch=1, strategy="cpu", verbose=0, out=str(work / "tf-one"),
    )  # fmt: skip
    np.savez(work / "tensorflow-one.npz", *result.model.get_weights())
    return work


def _start_checks(work, backend, checks, extra_env=None):
    arguments = {
        "work": str(work),
        "initial": str(work / "initial.keras"),
        "checks": checks,
        "coupled_sgd": [a.tolist() for a in (X, Y, KERNEL, BIAS)] + [LR, MOMENTUM, L2],
    }
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT),
           "TF_CPP_MIN_LOG_LEVEL": "3", **(extra_env or {})}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), json.dumps(arguments)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _results(work, backend, process, timeout=600):
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, stderr[-3000:]
    results = json.loads((work / f"{backend}-results.json").read_text())
    print(backend, "seconds per check:", results["seconds"])
    return results


@pytest.fixture(scope="module")
def processes(work):
    """Both backends' checks, started together (they share the 2 cores)."""
    started = {}
    if _importable("jax"):
        checks = [
            "load",
            "one_step",
            "data_parallel",
            "coupled_sgd",
            "errors",
            "workflows",
        ]  # fmt: skip (the callbacks run within "resume")
        flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2",
                 # The runs of one architecture compile once.
                 "JAX_COMPILATION_CACHE_DIR": str(work / "jax-cache"),
                 "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                 "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}  # fmt: skip
        started["jax"] = _start_checks(work, "jax", checks, flags)
    if _importable("torch"):
        checks = ["load", "one_step", "coupled_sgd", "errors", "callbacks"]
        started["torch"] = _start_checks(work, "torch", checks)
    yield started
    for process in started.values():
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="module")
def jax_results(work, processes):
    if "jax" not in processes:
        pytest.skip("jax is not installed (pip install -e '.[test]')")
    return _results(work, "jax", processes["jax"])


@pytest.fixture(scope="module")
def torch_results(work, processes):
    if "torch" not in processes:
        pytest.skip("torch is not installed (pip install -e '.[test]')")
    return _results(work, "torch", processes["torch"])


@pytest.fixture(params=["jax", "torch"])
def results(request):
    return request.getfixturevalue(f"{request.param}_results")


def _done(results, name):
    assert name not in results["errors"], results["errors"][name]
    return results.get(name)


def _weights(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def test_fused_batch_norm_file_from_tensorflow_gives_the_same_outputs(work, results):
    # Keras' batch-norm math there, TensorFlow's fused kernel here.
    assert _done(results, "load") > 0  # FusedBatchNormalization layers
    here = np.load(work / "tensorflow-outputs.npz")
    there = np.load(work / f"{results['backend']}-outputs.npz")
    for mode in ("inference", "training"):
        np.testing.assert_allclose(there[mode], here[mode], rtol=1e-4, atol=1e-5)


def test_one_train_step_gives_the_weights_of_tensorflow(work, results):
    run = _done(results, "one_device_step")
    assert run["strategy"]["backend"] == results["backend"]
    assert run["versions"]["backend"] == results["backend"]
    initial = _weights(work / "tensorflow-one.npz")
    before = keras.models.load_model(work / "initial.keras").get_weights()
    theirs = _weights(work / f"{results['backend']}-one.npz")
    moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, before))
    assert moved > 1e-3  # the step changed the weights well beyond the tolerance
    for mine, other in zip(initial, theirs):
        np.testing.assert_allclose(other, mine, **STEP_TOLERANCE)


def test_coupled_sgd_matches_the_numpy_reference(results):
    weights = _done(results, "coupled_sgd")
    for got, want in zip(weights, numpy_steps(2, True, L2, l2_bias=False)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_unsupported_strategies_fail_at_once_listing_every_backend(results):
    messages = _done(results, "strategy_errors")
    backend = results["backend"]
    expected = {"tpu", "mirrored"} | (
        {"data_parallel"} if backend == "torch" else set()
    )
    assert set(messages) == expected
    for name, message in messages.items():
        assert f"strategy={name!r} is not available on the {backend} backend" in message
        assert "tensorflow: auto, cpu, gpu, mirrored, multiworker, tpu" in message
        assert "jax: auto, cpu, data_parallel; torch: auto, cpu" in message


def test_tensorflow_refuses_data_parallel_the_same_way():
    with pytest.raises(ValueError, match="not available on the tensorflow backend"):
        make_strategy("data_parallel")
    with pytest.raises(ValueError, match="Unknown strategy='mirorred'"):
        make_strategy("mirorred")


def test_callbacks_bar_and_run_directory(results):
    run = _done(results, "callbacks")
    final = run["final"]
    assert final["alpha"] == 1.0 and run["alphas"] and set(run["alphas"]) == {1.0}
    assert run["identities"] == len(run["alphas"])  # finalize: alpha 1 -> Identity
    assert any(key.startswith("dead/") for key in final)
    grads = [key for key in final if key.startswith("grad_mean/")]
    assert grads and all(final[key] > 0 for key in grads)
    assert not any(key.startswith("_") for key in final)  # the hand-over key
    assert "grad_mean/mean" in run["printed"] and "dead/mean" in run["printed"]
    assert {"history.json", "model.keras", "tensorboard"} <= set(run["files"])
    assert "backup" not in run["files"]  # the checkpoint is cleared when done


def test_jax_data_parallel_over_two_devices_gives_the_one_device_weights(
    work, jax_results
):
    auto = _done(jax_results, "data_parallel_step")
    assert auto["devices"] == 2 and auto["auto"]["strategy"] == "DataParallel"
    history = json.loads((work / "jax-dp" / "history.json").read_text())
    assert history["strategy"]["replicas"] == 2
    one = _weights(work / "jax-one.npz")
    for a, b in zip(one, _weights(work / "jax-dp.npz")):
        np.testing.assert_allclose(b, a, **STEP_TOLERANCE)


def test_jax_compare_over_two_seeds_and_resume(jax_results):
    comparison = _done(jax_results, "compare_two_seeds")
    assert [len(v["runs"]) for v in comparison["variants"]] == [2]  # seeds
    resume = _done(jax_results, "resume")
    assert resume["kept_epochs"] == 1 and resume["resumed"] is True
    assert "resuming" in resume["printed"] and resume["epochs"] == [0, 1]
    assert resume["max_weight_difference"] < 1e-5


def test_jax_tune_two_trials(jax_results):
    """Every trial trains a copy of one base model: on JAX a copy that
    aliased the base's arrays would delete them after the first trial."""
    trials = _done(jax_results, "tune_two_trials")
    assert [status for status, _ in trials] == ["COMPLETED"] * 2
