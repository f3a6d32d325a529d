"""`train()` in processes on KERAS_BACKEND=jax (tests/test_jax_processes.py).

`python tests/jax_process_checks.py PLAN_JSON` imports Keras, TensorFlow and
the package once (JAX itself not started), then runs the plan's rounds one
after the other. The runs of a round are forked together, each a process of
its own with its environment (XLA_FLAGS, KERAS_DISTRIBUTION_*, TMPDIR) set
before JAX starts in it and its output in its `log`; a fork costs none of
the 7 s of imports a fresh interpreter pays. After a round, the files it
names in `then_copy` are copied. At the end it prints {name: exit status}
as JSON (-9: SIGKILLed).

Each run trains a tiny batch-normalized network with dropout on fixed
random arrays, with strategy "auto", then writes the final weights
(`weights`, .npz) and what the process saw (`report`, JSON): its JAX process
id and count, `is_chief`, `worker_count`, the strategy's description, the
history. `kill_at` = [epoch, batch] SIGKILLs it after that training batch,
as a crash would.
"""

import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402
from kill_at import KillAt  # noqa: E402  (tests/, this script's folder)

from keras_eraserelu.training import (  # noqa: E402
    describe_strategy,
    is_chief,
    make_strategy,
    train,
    worker_count,
)

try:  # the pipelines' TensorFlow, imported once here rather than in each run
    import tensorflow  # noqa: F401
except ImportError:
    pass


def tiny_bn_net(input_shape, classes, erase=None):
    """Conv, batch norm (statistics of the global batch), ReLU, dropout (a
    seed generator the checkpoint keeps), pooling and logits."""
    layers = keras.layers
    inputs = keras.Input(input_shape, name="images")
    x = layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.Dropout(0.25, name="dropout")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_bn_net")


def arrays(train_count, test_count):
    """Training and test images of 8x8x1, 10 classes, the same every time."""
    rng = np.random.default_rng(0)
    count = train_count + test_count
    x = rng.normal(size=(count, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, count).astype("int32")
    return (x[:train_count], y[:train_count]), (x[train_count:], y[train_count:])


def train_once(args):
    """One `train()` as `args` say; its weights and report written."""
    import jax

    start = time.time()
    callbacks = [KillAt(*args["kill_at"])] if args.get("kill_at") else []
    result = train(
        tiny_bn_net, arrays(args["train"], args["validation"]),
        epochs=args["epochs"], batch_size=16, steps_per_epoch=args["steps"],
        strategy="auto", seed=3, out=args["out"], verbose=0, callbacks=callbacks,
    )  # fmt: skip
    np.savez(args["weights"], *result.model.get_weights())
    report = {
        "process": [jax.process_index(), jax.process_count()],
        "devices": [jax.local_device_count(), jax.device_count()],
        "is_chief": is_chief(),
        "worker_count": worker_count(),
        "strategy": describe_strategy(make_strategy("auto")),
        "history": result.history,
        "resumed": result.resumed,
        "seconds": round(time.time() - start, 1),
    }
    with open(args["report"], "w") as stream:
        json.dump(report, stream)


def _child(run):
    """A forked run: its output to its log, its environment, then train."""
    log = os.open(run["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    os.environ.update(run["env"])
    tempfile.tempdir = None  # TMPDIR as this run's environment says
    train_once(run["args"])


def run_rounds(rounds, timeout):
    """Forks the runs of each round together and waits for them; a run that
    outlives `timeout` seconds is killed (-9); then copies the round's
    `then_copy` files ([source, copy], what the next round may change).
    Returns {name: exit status}."""
    fork = multiprocessing.get_context("fork")
    statuses = {}
    for round_ in rounds:
        started = {run["name"]: fork.Process(target=_child, args=(run,))
                   for run in round_["runs"]}  # fmt: skip
        for process in started.values():
            process.start()
        deadline = time.time() + timeout
        for name, process in started.items():
            process.join(max(0.0, deadline - time.time()))
            if process.exitcode is None:
                process.kill()
                process.join()
            statuses[name] = process.exitcode
        for source, copy in round_.get("then_copy", ()):
            if os.path.exists(source):
                shutil.copyfile(source, copy)
    return statuses


if __name__ == "__main__":
    plan = json.loads(sys.argv[1])
    print(json.dumps(run_rounds(plan["rounds"], plan["timeout"])))
