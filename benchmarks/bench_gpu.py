"""Training images/s of `train()` on a GPU: cifar_resnet56 and resnet50, by precision.

One prepared run for a lent GPU machine (which has JAX and Keras but no
TensorFlow): every model and precision policy side by side in one process,
through the package's own `train()` (its strategy, its recipe's optimizer,
its XLA rule, its input engine: `ArrayBatches` where TensorFlow is missing,
tf.data where it is installed), on synthetic uint8 images with the data
set's shape. A callback times each epoch after its first step; the first
epoch (compilation) is reported apart, the median of the others counts. On
TensorFlow XLA is compared on and off; JAX always compiles with XLA.

    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --out gpu.json
    KERAS_BACKEND=tensorflow python benchmarks/bench_gpu.py --out gpu.json
    KERAS_BACKEND=jax python benchmarks/bench_gpu.py --steps 3 --epochs 2 \
        --cases cifar_resnet20 --policies float32       # a CPU smoke run
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from train_timing import time_train  # noqa: E402

CASES = {  # model: (image shape, classes, batch)
    "cifar_resnet20": ((32, 32, 3), 10, 128),
    "cifar_resnet56": ((32, 32, 3), 10, 128),
    "resnet50": ((224, 224, 3), 1000, 128),
}


def synthetic(shape, classes, count, seed=0):
    """((x, y), (x_val, y_val)) of random uint8 images, every class present."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (count, *shape), dtype="uint8")
    y = (np.arange(count) % classes).astype("int32")
    rng.shuffle(y)
    y[:classes] = np.arange(min(classes, count))  # the data say how many classes
    return (x, y), (x[:128], y[:128])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="cifar_resnet56,resnet50")
    parser.add_argument("--steps", type=int, default=30, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="the first untimed")
    parser.add_argument("--policies", default="float32,mixed_bfloat16,mixed_float16")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    backend = keras.backend.backend()
    jits = (False, True) if backend == "tensorflow" else ("auto",)
    results = []
    for name in args.cases.split(","):
        shape, classes, batch = CASES[name]
        data = synthetic(shape, classes, max(batch * args.steps, classes))
        for policy in args.policies.split(","):
            for jit in jits:
                start = time.perf_counter()
                rate, epochs, result = time_train(
                    name, data, batch_size=batch, epochs=args.epochs,
                    steps=args.steps, precision=policy, jit_compile=jit,
                )  # fmt: skip
                row = {
                    "model": name,
                    "batch": batch,
                    "policy": result.config["precision"],
                    "xla": result.config["jit_compile"],
                    "backend": backend,
                    "images_per_s": round(rate, 1),
                    "epochs_images_per_s": [round(r, 1) for r in epochs],
                    "total_s": round(time.perf_counter() - start, 1),
                }
                results.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {"device": os.environ.get("DEVICE_NAME", ""), "results": results},
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
