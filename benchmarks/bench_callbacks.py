"""Overhead of ActivationStats and GradientStats on a cifar_resnet56 epoch.

The callbacks, with their defaults, add work in two places, each measured in
one process next to the training step with the callbacks off:

- every training step, GradientStats takes the norm of every gradient inside
  the compiled train step (`GradientStats._record`). That computation is
  timed alone, compiled and fed the real gradients of a batch; the training
  step is timed through `model.fit` with the callbacks off.
- every epoch end, ActivationStats runs its probe (one forward pass of 256
  images, reduced in the graph) and GradientStats reads its sums back: timed
  call by call, after a first call that traces.

The overhead on a real CIFAR-10 epoch (50,000 images: 391 steps of 128) is

    (391 * per_step_work + epoch_end_work) / (391 * step_with_callbacks_off)

from wall time and from the process' CPU time (less sensitive to other jobs
on the cores). Goal: <= 5% each.

As a cross-check, whole training steps with and without GradientStats are
timed in paired rounds of `--steps` steps (alternating, in swapped order
every other round, so slow drifts of a shared machine cancel) and their
ratio is reported with a 95% Student-t interval. On a shared 2-core machine
one round varies by about +-6%, so that interval is wide; the decomposition
above is the precise figure (a few milliseconds against a step of ~600 ms).

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
                shuffle=False,  # a repeated tf.data pipeline
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


def record_seconds(model, dataset, blocks=5, calls=50):
    """(wall, cpu) seconds of GradientStats' per-step work alone, per call.

    The same in-graph computation the train step runs (`_record`: the norm
    of every gradient, the per-layer sums), compiled on its own and fed the
    real gradients of one batch. Medians of `blocks` blocks of `calls`.
    """
    stats = GradientStats()
    stats.set_model(model)
    stats.on_train_begin()
    images, labels = next(iter(dataset))
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, model(images, training=True)
        )
    gradients = tape.gradient(loss, model.trainable_variables)
    record = tf.function(stats._record)
    record(gradients)  # traces
    seconds = []
    for _ in range(blocks):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            record(gradients)
        seconds.append(
            ((time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls)
        )
    stats.on_train_end()
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
    record = record_seconds(model, dataset)
    readout = max(
        0.0, statistics.median(gaps["GradientStats"]) - statistics.median(gaps["off"])
    )
    clocks = {"wall": 0, "CPU": 1}
    step_off = {
        word: statistics.median(s[clock] for s in steps["off"])
        for word, clock in clocks.items()
    }
    print(
        f"\nper step, callbacks off: {step_off['wall'] * 1000:.0f} ms wall, "
        f"{step_off['CPU'] * 1000:.0f} ms CPU"
    )
    print(
        f"GradientStats' work per step, alone: {record[0] * 1000:.2f} ms wall, "
        f"{record[1] * 1000:.2f} ms CPU; its epoch-end read-out {readout * 1000:.1f} ms"
    )
    print(f"ActivationStats' probe per epoch: {probe[0] * 1000:.0f} ms wall")

    print(f"\noverhead on a CIFAR-10 epoch ({steps_per_epoch} steps), goal <= 5%:")
    for word, clock in clocks.items():
        epoch = steps_per_epoch * step_off[word]
        activation = probe[clock] / epoch
        gradient = (steps_per_epoch * record[clock] + readout) / epoch
        print(
            f"  ({word}) ActivationStats {activation:+.2%}, GradientStats "
            f"{gradient:+.2%}, both {activation + gradient:+.2%}"
        )
    ratios = [on[0] / off[0] for on, off in zip(steps["GradientStats"], steps["off"])]
    direct = epoch_overhead(ratios, readout, step_off["wall"], steps_per_epoch)
    print(
        f"cross-check, whole steps with and without GradientStats in paired "
        f"rounds (wall, 95% interval): {describe(direct)}"
    )


if __name__ == "__main__":
    main()
