"""Input pipeline images/s against the training step's images/s.

The goal (the training issue): the input pipeline alone delivers at least 5x
the images/s of a training step of `cifar_resnet56` at batch 128 on CIFAR
shapes, so that input never starves training.

Without the real CIFAR-10 here, the pipeline reads
`tfds.testing.mock_data(num_examples=N)` (random 32x32 images through the
same `load_dataset` code: normalize -> cache -> shuffle -> pad/crop/flip in a
parallel map -> batch -> prefetch). A first, untimed epoch fills the cache;
the timed batches come after it, as in every epoch but the first. The digits
pipeline (8x8, shift augmentation) is timed the same way.

The training step is `model.train_on_batch` on one synthetic batch (SGD with
momentum, sparse categorical crossentropy), after untimed warm-up steps. The
pipeline and the model are timed one after the other in one process, never
at the same time: each figure is that part alone.

Usage:

```
python benchmarks/bench_input_pipeline.py                     # 10,000 mock images
python benchmarks/bench_input_pipeline.py --examples 2000 --batches 50 \
    --train-steps 3                                           # a quick CPU check
```
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from keras_eraserelu.data import (
    dataset_spec,  # noqa: E402
    load_dataset,  # noqa: E402
)
from keras_eraserelu.models import create_model  # noqa: E402

GOAL = 5.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cifar_resnet56")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--examples", type=int, default=10_000, help="mock CIFAR-10 images"
    )
    parser.add_argument("--batches", type=int, default=200, help="timed batches")
    parser.add_argument("--train-steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--seed", type=int, default=None, help="seeded pipeline")
    args = parser.parse_args(argv)
    for flag in ("batch_size", "examples", "batches", "train_steps", "warmup"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    return args


def pipeline_rate(dataset, batches, warmup_batches):
    """Images/s of `batches` batches after `warmup_batches` untimed ones."""
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    images = 0
    start = time.perf_counter()
    for _ in range(batches):
        x, _ = next(iterator)
        images += int(x.shape[0])
    return images / (time.perf_counter() - start)


def train_rate(args):
    """Images/s of the model's training step on one synthetic CIFAR batch."""
    spec = dataset_spec("cifar10")
    model = create_model(args.model, input_shape=spec.image_shape, classes=10)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        loss="sparse_categorical_crossentropy",
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch_size, *spec.image_shape), "float32")
    y = rng.integers(0, 10, args.batch_size).astype("int32")
    x, y = tf.constant(x), tf.constant(y)
    for _ in range(args.warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(args.train_steps):
        loss = model.train_on_batch(x, y)  # returns a number: steps in sync
    seconds = time.perf_counter() - start
    if not np.isfinite(loss):
        raise RuntimeError(f"Non-finite loss {loss!r}.")
    return args.batch_size * args.train_steps / seconds


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(0)
    gpus = tf.config.list_physical_devices("GPU")
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"{platform.machine()} / {os.cpu_count()} CPUs, "
        f"{len(gpus)} GPU(s); batch {args.batch_size}, seed {args.seed}"
    )
    epoch = -(-args.examples // args.batch_size)  # batches of the cache-filling epoch
    with tfds.testing.mock_data(num_examples=args.examples):
        cifar = load_dataset(
            "cifar10", "train", args.batch_size, seed=args.seed, repeat=True
        )
        start = time.perf_counter()
        cifar_rate = pipeline_rate(cifar, args.batches, warmup_batches=epoch)
        total = time.perf_counter() - start
    print(
        f"cifar10 pipeline (mock, {args.examples} images, crop+flip): "
        f"{cifar_rate:10.0f} img/s  ({args.batches} batches after a "
        f"{epoch}-batch cache-filling epoch; {total:.1f} s in all)"
    )
    digits = load_dataset(
        "digits", "train", args.batch_size, seed=args.seed, repeat=True
    )
    digits_rate = pipeline_rate(digits, args.batches, warmup_batches=12)
    print(f"digits pipeline (1,437 images, shift): {digits_rate:10.0f} img/s")

    step_rate = train_rate(args)
    print(
        f"{args.model} training step, batch {args.batch_size}: "
        f"{step_rate:10.1f} img/s ({args.train_steps} steps)"
    )
    ratio = cifar_rate / step_rate
    verdict = "meets" if ratio >= GOAL else "MISSES"
    print(
        f"ratio cifar10 pipeline / training step: {ratio:.1f}x "
        f"({verdict} the goal >= {GOAL:.0f}x)"
    )
    return ratio


if __name__ == "__main__":
    main()
