"""Checks run in a subprocess under KERAS_BACKEND=jax or torch (tests/test_backends.py).

`python tests/backend_checks.py ARGS_JSON` reads the files the TensorFlow side
wrote (a `.keras` model with FusedBatchNormalization, the data), runs every
check its arguments name and writes `results.json` and NumPy files next to
them. Each check is recorded as done or as the error it raised, so that one
failure does not hide the others.
"""

import contextlib
import io
import json
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eraserelu.core import erasable_layers, finalize_erasure  # noqa: E402
from keras_eraserelu.training import (  # noqa: E402
    CoupledSGD,
    make_strategy,
    train,
)

ARGS = json.loads(sys.argv[1])
WORK = ARGS["work"]
RESULTS = {"backend": keras.backend.backend(), "errors": {}, "seconds": {}}


def check(function):
    """Runs `function()` now; its result (or error) goes to RESULTS."""
    start = time.time()
    try:
        value = function()
        if value is not None:
            RESULTS[function.__name__] = value
    except Exception:  # recorded for the test to show
        RESULTS["errors"][function.__name__] = traceback.format_exc()[-3000:]
    RESULTS["seconds"][function.__name__] = round(time.time() - start, 1)
    return function


def data():
    arrays = np.load(os.path.join(WORK, "data.npz"))
    return (arrays["x"], arrays["y"]), (arrays["x_val"], arrays["y_val"])


def _call(model, x, training):
    """`model(x, training=...)` as NumPy; on JAX one compiled call, not op by op."""
    if keras.backend.backend() != "jax":
        return keras.ops.convert_to_numpy(model(x, training=training))
    import jax

    def call(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=training)[0]

    values = [[v.value for v in model.trainable_variables],
              [v.value for v in model.non_trainable_variables]]  # fmt: skip
    return np.asarray(jax.jit(call)(*values, x))


def one_step(name, strategy):
    """Weights after one step of `train` from the TensorFlow-saved weights."""
    result = train(
        ARGS["initial"], data(), reinitialize=False, recipe="he_cifar", epochs=1,
        batch_size=64, steps_per_epoch=1, strategy=strategy, verbose=0,
        out=os.path.join(WORK, f"{RESULTS['backend']}-{name}"),
    )  # fmt: skip
    np.savez(
        os.path.join(WORK, f"{RESULTS['backend']}-{name}.npz"),
        *result.model.get_weights(),
    )
    return result.config["strategy"] if "strategy" in result.config else None


if "load" in ARGS["checks"]:

    @check
    def load():
        """The .keras file saved on TensorFlow: same outputs here."""
        model = keras.models.load_model(ARGS["initial"])
        (x, _), _ = data()
        np.savez(
            os.path.join(WORK, f"{RESULTS['backend']}-outputs.npz"),
            inference=_call(model, x, training=False),
            training=_call(model, x, training=True),
        )
        return [type(layer).__name__ for layer in model.layers].count(
            "FusedBatchNormalization"
        )


if "one_step" in ARGS["checks"]:

    @check
    def one_device_step():
        one_step("one", "cpu")
        history = json.load(
            open(os.path.join(WORK, f"{RESULTS['backend']}-one", "history.json"))
        )
        return {"strategy": history["strategy"], "versions": history["versions"]}


if "data_parallel" in ARGS["checks"]:

    @check
    def data_parallel_step():
        one_step("dp", "data_parallel")
        auto = make_strategy("auto")
        return {"auto": auto.describe(), "devices": len(auto.devices)}


if "coupled_sgd" in ARGS["checks"]:

    @check
    def coupled_sgd():
        """Two steps of CoupledSGD on a Dense layer (tests/test_recipes.py)."""
        x, y, kernel, bias, lr, momentum, l2 = ARGS["coupled_sgd"]
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
            2, kernel_initializer=keras.initializers.Constant(kernel),
            bias_initializer=keras.initializers.Constant(bias))])  # fmt: skip
        optimizer = CoupledSGD(lr, momentum=momentum, nesterov=True, l2=l2,
                               exclude_from_l2="bias")  # fmt: skip
        model.compile(optimizer=optimizer, loss="mse")
        for _ in range(2):
            model.train_on_batch(np.float32(x), np.float32(y))
        return [w.tolist() for w in model.get_weights()]


if "errors" in ARGS["checks"]:

    @check
    def strategy_errors():
        messages = {}
        for name in ("tpu", "mirrored", "data_parallel"):
            try:
                make_strategy(name)
            except ValueError as error:
                messages[name] = str(error)
        return messages


CALLBACK_SETTINGS = dict(
    epochs=2, batch_size=32, steps_per_epoch=2, validation_steps=1, verbose=2,
    progressive_erase=(0, 1), activation_stats=True, gradient_stats=1,
)  # fmt: skip


def callback_report(result, printed):
    final = finalize_erasure(result.model)
    return {
        "final": result.final,
        "printed": printed[-2000:],
        "alphas": [float(layer.alpha.numpy()) for layer in
                   erasable_layers(result.model)],
        "identities": sum(type(layer).__name__ == "Identity"
                          for layer in final.layers),
        "files": sorted(os.listdir(result.out)),
    }  # fmt: skip


if "callbacks" in ARGS["checks"]:

    @check
    def callbacks():
        """A tiny run with every callback, the bar and a run directory."""
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            result = train(
                "cifar_resnet8", "digits", **CALLBACK_SETTINGS,
                out=os.path.join(WORK, f"{RESULTS['backend']}-callbacks"),
            )  # fmt: skip
        return callback_report(result, printed.getvalue())


if "workflows" in ARGS["checks"]:

    @check
    def compare_two_seeds():
        from keras_eraserelu.experiments import compare

        with contextlib.redirect_stdout(io.StringIO()):
            result = compare(
                [("cifar_vgg_tiny", "last")], "digits", 2,
                out=os.path.join(WORK, "compare"), epochs=1, batch_size=32,
                steps_per_epoch=2, validation_steps=2,
            )  # fmt: skip
        return result.to_dict()

    @check
    def tune_two_trials():
        from keras_eraserelu.tuning import tune_placements

        result = tune_placements(
            "cifar_vgg_tiny", "digits", tuner="random", max_trials=2, epochs=1,
            batch_size=32, steps_per_epoch=1, validation_steps=1, verbose=0,
            directory=os.path.join(WORK, "tune"),
        )  # fmt: skip
        trials = result.tuner.oracle.trials.values()
        return [[t.status, t.score] for t in trials]

    @check
    def resume():
        """A run with every callback stopped by a crash after its first
        epoch, then resumed: the weights of the run that never stopped."""

        class Crash(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    raise KeyboardInterrupt  # stops the run as a kill would

        out = os.path.join(WORK, "resume")
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                train("cifar_resnet8", "digits", callbacks=[Crash()], out=out,
                      **CALLBACK_SETTINGS)  # fmt: skip
            except KeyboardInterrupt:
                pass
        kept = json.load(open(os.path.join(out, "history.json")))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            resumed = train("cifar_resnet8", "digits", out=out, **CALLBACK_SETTINGS)
            whole = train("cifar_resnet8", "digits", out=os.path.join(WORK, "whole"),
                          **CALLBACK_SETTINGS)  # fmt: skip
        RESULTS["callbacks"] = callback_report(whole, printed.getvalue())
        return {
            "kept_epochs": len(kept["epochs"]),
            "resumed": resumed.resumed,
            "printed": printed.getvalue()[:500],
            "epochs": [r["epoch"] for r in resumed.history],
            "max_weight_difference": max(
                float(np.abs(a - b).max())
                for a, b in zip(resumed.model.get_weights(), whole.model.get_weights())
            ),
        }


with open(os.path.join(WORK, f"{RESULTS['backend']}-results.json"), "w") as stream:
    json.dump(RESULTS, stream)
