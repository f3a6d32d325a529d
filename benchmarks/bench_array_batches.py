"""The NumPy input engine (`ArrayBatches`, read where TensorFlow is missing)
against the tf.data pipeline, on the same in-memory arrays, in one process.

Both read the same `DataSource` of random uint8 images (CIFAR or ImageNet
shaped) with the same augmentation ("crop_flip") and batch size. tf.data is
iterated as `fit` does (its own parallel maps and prefetch); `ArrayBatches`
through `DEFAULT_WORKERS` threads in order, as Keras' PyDataset enqueuer
does. Each is warmed up, then timed over `--batches` batches, alternating
rounds; the median images/s and the ratio ArrayBatches / tf.data are printed.

Usage:

```
python benchmarks/bench_array_batches.py                  # 32x32, batch 128
python benchmarks/bench_array_batches.py --size 224 --examples 1024 --batches 8
```
"""

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_eraserelu.data import dataset_source, load_dataset  # noqa: E402
from keras_eraserelu.data.array_batches import (  # noqa: E402
    DEFAULT_WORKERS,
    source_batches,
)


def rate_tf_data(source, args):
    dataset = load_dataset(source, "train", args.batch_size, augment="crop_flip",
                           seed=0, repeat=True)  # fmt: skip
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(args.batches):
        next(iterator)
    return args.batches * args.batch_size / (time.perf_counter() - start)


def rate_array_batches(source, args):
    size = (args.size, args.size)
    batches = source_batches(source, "train", args.batch_size, augment="crop_flip",
                             shuffle=True, seed=0, size=size, repeat=True)  # fmt: skip
    batches[0]
    with ThreadPoolExecutor(DEFAULT_WORKERS) as pool:
        start = time.perf_counter()
        list(pool.map(batches.__getitem__, range(1, args.batches + 1)))
        return args.batches * args.batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.examples, args.size, args.size, 3), dtype="uint8")
    y = (np.arange(args.examples) % 10).astype("int32")
    source = dataset_source(((x, y), (x[:256], y[:256])))
    rates = {"tf.data": [], "ArrayBatches": []}
    for _ in range(args.rounds):
        rates["tf.data"].append(rate_tf_data(source, args))
        rates["ArrayBatches"].append(rate_array_batches(source, args))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"{args.size}x{args.size}x3 uint8, crop_flip, batch {args.batch_size}, "
        f"{args.batches} batches x {args.rounds} rounds, {os.cpu_count()} cores, "
        f"ArrayBatches with {DEFAULT_WORKERS} threads"
    )
    for name, value in medians.items():
        print(f"  {name:13s} {value:9.0f} images/s  (rounds: "
              f"{', '.join(f'{v:.0f}' for v in rates[name])})")  # fmt: skip
    print(
        f"  ArrayBatches / tf.data: {medians['ArrayBatches'] / medians['tf.data']:.2f}x"
    )


if __name__ == "__main__":
    main()
