"""Training images/s on a GPU: cifar_resnet56 and resnet50, by precision and XLA.

One prepared run for a lent GPU machine: every model and precision policy
side by side in one process, synthetic data in device memory, the median of
several timed rounds after warm-up (compilation excluded). XLA is compared
on/off where the backend allows it (TensorFlow); JAX always compiles with XLA.
Results are printed and written as JSON to `--out`.

    KERAS_BACKEND=tensorflow python benchmarks/bench_gpu.py --out gpu.json
    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --out gpu.json
"""

import argparse
import json
import os
import statistics
import time

import keras
import numpy as np

from keras_eraserelu.models import create_model
from keras_eraserelu.training import get_recipe

CASES = (
    ("cifar_resnet56", (32, 32, 3), 10, 128),
    ("resnet50", (224, 224, 3), 1000, 128),
)


def throughput(name, shape, classes, batch, policy, jit, steps, rounds):
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    model = create_model(name, input_shape=shape, classes=classes, erase="last")
    recipe = get_recipe("he_cifar" if name.startswith("cifar") else "imagenet_step")
    model.compile(
        optimizer=recipe.optimizer(1000, batch),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit,
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, *shape)).astype("float32")
    y = rng.integers(0, classes, batch * steps)
    model.fit(x[: batch * 2], y[: batch * 2], batch_size=batch, verbose=0)  # compile
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        rates.append(batch * steps / (time.perf_counter() - start))
    keras.config.set_dtype_policy("float32")
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--policies", default="float32,mixed_bfloat16,mixed_float16")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    backend = keras.backend.backend()
    jits = (False, True) if backend == "tensorflow" else (True,)
    results = []
    for name, shape, classes, batch in CASES:
        for policy in args.policies.split(","):
            for jit in jits:
                rate = throughput(
                    name, shape, classes, batch, policy, jit, args.steps, args.rounds
                )
                row = {
                    "model": name,
                    "batch": batch,
                    "policy": policy,
                    "xla": jit,
                    "backend": backend,
                    "images_per_s": round(rate, 1),
                }
                results.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as stream:
            json.dump(
                {"device": os.environ.get("DEVICE_NAME", ""), "results": results},
                stream,
                indent=2,
            )


if __name__ == "__main__":
    main()
