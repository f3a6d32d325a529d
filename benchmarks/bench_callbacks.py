"""Overhead of ActivationStats and GradientStats with their defaults.

cifar_resnet56 trained for one epoch of synthetic CIFAR-shaped data, with the
callbacks off, with ActivationStats (probe of 256 images, every epoch), with
GradientStats (every 10 steps), and with both, side by side in one process;
rounds alternate the variants so machine noise hits them alike. Each fit
runs two epochs and the second is timed, so graph tracing is left out.

    python benchmarks/bench_callbacks.py [--images 4096] [--batch-size 128] [--rounds 3]

Goal: <= 5% overhead each. A real CIFAR epoch is 50,000 images, so the
fixed per-epoch cost of ActivationStats weighs 12x less than here at 4,096.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eraserelu.callbacks import ActivationStats, GradientStats  # noqa: E402
from keras_eraserelu.models import create_model  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, callbacks' epoch-end work included."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar_resnet56")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.images, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, args.images)
    model = create_model(args.model)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
    )
    variants = {
        "off": lambda: [],
        "ActivationStats": lambda: [ActivationStats(x[:256])],
        "GradientStats": lambda: [GradientStats()],
        "both": lambda: [ActivationStats(x[:256]), GradientStats()],
    }
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, make in variants.items():
            # Two epochs; the second one is timed (the first traces the graph).
            timer = EpochTimer()
            model.fit(
                x,
                y,
                batch_size=args.batch_size,
                epochs=2,
                verbose=0,
                callbacks=[*make(), timer],
            )
            times[name].append(timer.seconds[-1])
    base = statistics.median(times["off"])
    print(
        f"{args.model}, {args.images} images/epoch, batch {args.batch_size}, "
        f"{args.rounds} rounds (median epoch seconds)"
    )
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<16} {median:7.2f} s  {median / base:6.3f}x")


if __name__ == "__main__":
    main()
