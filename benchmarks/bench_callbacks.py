"""Overhead of ActivationStats and GradientStats on a cifar_resnet56 epoch.

The callbacks, with their defaults, cost time in two places; each is
measured side by side with the callbacks off, in one process:

- every training step: GradientStats takes the norms of the gradients inside
  the compiled train step. Rounds of `--steps` timed steps through
  `model.fit`, with `GradientStats()` and without, alternate (in swapped
  order every other round); each round's ratio pairs two neighbouring runs,
  so the slow drifts of a shared machine cancel. The first step of each fit
  (which traces the train function) is not timed.
- every epoch end: ActivationStats runs its probe (one forward pass of 256
  images, reduced in the graph) and GradientStats reads its sums back. Both
  are timed call by call, after a first call that traces.

The overhead on a real CIFAR-10 epoch (50,000 images: 391 steps of 128) is

    (391 * (step_with - step_off) + epoch_end) / (391 * step_off)

reported with a 95% Student-t interval over the paired rounds, from wall
time and from the process' CPU time (less sensitive to other jobs on the
cores). Goal: <= 5% each.

    python benchmarks/bench_callbacks.py [--steps 20] [--rounds 6]
"""

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_eraserelu.callbacks import ActivationStats, GradientStats  # noqa: E402
from keras_eraserelu.models import create_model  # noqa: E402
from keras_eraserelu.recipes import get_recipe, recipe_for_model  # noqa: E402
from keras_eraserelu.stats import summarize  # noqa: E402

CIFAR_TRAIN_IMAGES = 50_000
PROBE_IMAGES = 256  # the probe size the docs and the train CLI use


class StepTimer(keras.callbacks.Callback):
    """Wall and CPU seconds per step after the first, and the epoch-end gap.

    Put it last in the callback list: its `on_epoch_end` then runs after the
    other callbacks' epoch-end work, which the gap includes.
    """

    def on_train_begin(self, logs=None):
        self.marks = []

    def on_train_batch_end(self, batch, logs=None):
        self.marks.append((time.perf_counter(), time.process_time()))

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end_gap = time.perf_counter() - self.marks[-1][0]

    def per_step(self):
        (wall0, cpu0), (wall1, cpu1) = self.marks[0], self.marks[-1]
        steps = len(self.marks) - 1
        return (wall1 - wall0) / steps, (cpu1 - cpu0) / steps


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar_resnet56")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps a fit")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--probe-calls", type=int, default=5)
    args = parser.parse_args()
    for flag in ("batch_size", "steps", "rounds", "probe_calls"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    return args


def step_rounds(model, dataset, args):
    """Per-step (wall, cpu) seconds and epoch-end gaps, off vs GradientStats."""
    variants = {"off": list, "GradientStats": lambda: [GradientStats()]}
    steps, gaps = {name: [] for name in variants}, {name: [] for name in variants}
    order = list(variants)
    for index in range(args.rounds):
        for name in order if index % 2 == 0 else order[::-1]:
            timer = StepTimer()
            model.fit(
                dataset,
                epochs=1,
                steps_per_epoch=args.steps + 1,
                verbose=0,
                callbacks=[*variants[name](), timer],
            )
            steps[name].append(timer.per_step())
            gaps[name].append(timer.epoch_end_gap)
        off, on = steps["off"][-1][0], steps["GradientStats"][-1][0]
        print(
            f"  round {index + 1}: off {off * 1000:.0f} ms/step, GradientStats "
            f"{on * 1000:.0f} ms/step ({on / off:.3f}x), load {os.getloadavg()[0]:.1f}"
        )
    return steps, gaps


def probe_seconds(model, probe, calls):
    """(wall, cpu) seconds of ActivationStats' epoch-end work, medians of calls.

    The first call, which traces the probe, is not timed.
    """
    stats = ActivationStats(probe)
    stats.set_model(model)
    stats.set_params({"epochs": 1})
    stats.on_train_begin()
    stats.on_epoch_end(0, logs={})  # traces the probe
    seconds = []
    for _ in range(calls):
        wall, cpu = time.perf_counter(), time.process_time()
        stats.on_epoch_end(0, logs={})
        seconds.append((time.perf_counter() - wall, time.process_time() - cpu))
    return tuple(statistics.median(s[clock] for s in seconds) for clock in (0, 1))


def epoch_overhead(ratios, epoch_end, step_off, steps):
    """Overhead on an epoch of `steps` steps, as a summary over the rounds."""
    per_round = [
        (steps * (ratio - 1.0) * step_off + epoch_end) / (steps * step_off)
        for ratio in ratios
    ]
    return summarize(per_round)


def describe(summary):
    return (
        f"{summary.mean:+.2%} [{summary.ci_low:+.2%}, {summary.ci_high:+.2%}]"
        if summary.defined
        else f"{summary.mean:+.2%}"
    )


def main():
    args = parse_args()
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8 * args.batch_size, 32, 32, 3), dtype="float32")
    labels = rng.integers(0, 10, len(images))
    dataset = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .batch(args.batch_size, drop_remainder=True)
        .repeat()
        .prefetch(2)
    )
    steps_per_epoch = math.ceil(CIFAR_TRAIN_IMAGES / args.batch_size)
    model = create_model(args.model, input_shape=(32, 32, 3), classes=10)
    recipe = get_recipe(recipe_for_model(args.model))
    model.compile(
        optimizer=recipe.optimizer(steps_per_epoch, args.batch_size),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    print(
        f"{args.model}, batch {args.batch_size}, {args.rounds} rounds of "
        f"{args.steps} timed steps per variant; {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f}"
    )
    steps, gaps = step_rounds(model, dataset, args)
    probe = probe_seconds(model, images[:PROBE_IMAGES], args.probe_calls)

    step_off = {
        clock: statistics.median(s[clock] for s in steps["off"]) for clock in (0, 1)
    }
    ratios = {
        clock: [
            on[clock] / off[clock]
            for on, off in zip(steps["GradientStats"], steps["off"])
        ]
        for clock in (0, 1)
    }
    readout = max(
        0.0, statistics.median(gaps["GradientStats"]) - statistics.median(gaps["off"])
    )
    print(
        f"\nper step, off: {step_off[0] * 1000:.0f} ms wall, "
        f"{step_off[1] * 1000:.0f} ms CPU"
    )
    for clock, word in ((0, "wall"), (1, "CPU")):
        summary = summarize(ratios[clock])
        print(
            f"per step, GradientStats / off ({word}): {summary.mean:.4f}x "
            f"[{summary.ci_low:.4f}, {summary.ci_high:.4f}]"
        )
    print(
        f"epoch end: ActivationStats probe {probe[0] * 1000:.0f} ms, GradientStats "
        f"read-out {readout * 1000:.1f} ms"
    )
    print(f"\noverhead on a CIFAR-10 epoch ({steps_per_epoch} steps), goal <= 5%:")
    for clock, word in ((0, "wall"), (1, "CPU")):
        activation = probe[clock] / (steps_per_epoch * step_off[clock])
        gradient = epoch_overhead(
            ratios[clock], readout, step_off[clock], steps_per_epoch
        )
        both = epoch_overhead(
            ratios[clock], readout + probe[clock], step_off[clock], steps_per_epoch
        )
        print(
            f"  ({word}) ActivationStats {activation:+.2%}, GradientStats "
            f"{describe(gradient)}, both {describe(both)}"
        )


if __name__ == "__main__":
    main()
