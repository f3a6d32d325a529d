"""Forward + backward time of the option-A shortcut: 1x1 pooling vs slicing.

`ZeroPadShortcut` subsamples with a 1x1 average pool of stride `strides`,
which keeps exactly the rows and columns that `x[:, ::s, ::s, :]` keeps. The
baseline here is that strided slice, the obvious way to write it. Both are
followed by the same channel zero-padding and timed as a traced
forward-and-gradient step on the two downsampling shortcuts of
cifar_resnet56 at batch 128, alternating in rounds; the script checks that
both give the same outputs and gradients bit for bit and prints the time
ratio (slice / pool: above 1 means the pool is faster).

Measured on the project's 2-core AMD EPYC (AVX512_BF16), TensorFlow 2.21,
5 rounds of 20 steps (both shortcuts a step):

| | pool | slice | slice / pool |
|---|---|---|---|
| float32 | 3.77-4.54 ms | 13.29-13.79 ms | 3.04-3.52x |
| bfloat16 | 2.74-2.84 ms | 11.91-12.78 ms | 4.35-4.50x |

(two runs.) About 10 ms of a ~400 ms cifar_resnet56 training step (2-3%);
TensorFlow's StridedSliceGrad kernel is what costs.

Usage:

```
python benchmarks/bench_shortcut.py
python benchmarks/bench_shortcut.py --rounds 9 --calls 50
```
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_eraserelu.models.layers import ZeroPadShortcut  # noqa: E402

# cifar_resnet56's downsampling shortcuts at batch 128: (input shape, filters).
SHORTCUTS = (((128, 32, 32, 16), 32), ((128, 16, 16, 32), 64))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="steps a round")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        parser.error("--rounds and --calls must be at least 1")
    return args


def sliced_shortcut(x, filters, strides=2):
    """The baseline: a strided slice, then the same zero channels."""
    x = x[:, ::strides, ::strides, :]
    return tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, filters - x.shape[-1]]])


def gradient_step(shortcut, cotangent):
    """A traced step: outputs and the gradient of <outputs, cotangent>."""

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = shortcut(x)
            loss = tf.reduce_sum(tf.cast(outputs, tf.float32) * cotangent)
        return outputs, tape.gradient(loss, x)

    return step


def as_numpy(tensor):
    return np.asarray(tf.cast(tensor, tf.float32))


def compare(dtype, args):
    """Seconds per step of both formulations over all shortcuts, and ratio."""
    rng = np.random.default_rng(0)
    steps = {"pool": [], "slice": []}
    for shape, filters in SHORTCUTS:
        x = tf.cast(rng.standard_normal(shape, dtype="float32"), dtype)
        out_shape = (shape[0], shape[1] // 2, shape[2] // 2, filters)
        cotangent = tf.constant(rng.standard_normal(out_shape, dtype="float32"))
        layer = ZeroPadShortcut(filters, strides=2, dtype=dtype)
        pool = gradient_step(layer, cotangent)
        sliced = gradient_step(lambda t, f=filters: sliced_shortcut(t, f), cotangent)
        for want, got in zip(sliced(x), pool(x)):
            np.testing.assert_array_equal(as_numpy(got), as_numpy(want))
        steps["pool"].append((pool, x))
        steps["slice"].append((sliced, x))
    times = {name: [] for name in steps}
    for index in range(args.rounds):
        order = list(steps) if index % 2 == 0 else list(steps)[::-1]
        for name in order:
            start = time.perf_counter()
            for _ in range(args.calls):
                for step, x in steps[name]:
                    step(x)[1].numpy()
            times[name].append((time.perf_counter() - start) / args.calls)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return medians, medians["slice"] / medians["pool"]


def main(argv=None):
    args = parse_args(argv)
    print(
        f"tensorflow {tf.__version__}, {os.cpu_count()} CPUs; shortcuts "
        f"{[shape for shape, _ in SHORTCUTS]}, {args.rounds} rounds of "
        f"{args.calls} steps"
    )
    for dtype in ("float32", "bfloat16"):
        medians, ratio = compare(dtype, args)
        print(
            f"  {dtype:8s} pool {medians['pool'] * 1e3:6.2f} ms, slice "
            f"{medians['slice'] * 1e3:6.2f} ms a step (both shortcuts): "
            f"slice / pool = {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
