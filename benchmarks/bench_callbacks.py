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

As a cross-check, whole training steps (`model.train_on_batch` on one
batch) with and without GradientStats are timed in paired rounds of
`--steps` steps: both train functions are traced once and the model is
switched between them, rounds alternate in swapped order, so the slow
drifts of a shared machine hit both alike. Their ratio comes with a 95%
Student-t interval over the rounds.

    python benchmarks/bench_callbacks.py [--steps 3] [--rounds 20]
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

from keras_eraserelu.experiments import summarize  # noqa: E402
from keras_eraserelu.models import create_model  # noqa: E402
from keras_eraserelu.training import (  # noqa: E402  # noqa: E402
    ActivationStats,
    GradientStats,
    get_recipe,
    recipe_for_model,
)

CIFAR_TRAIN_IMAGES = 50_000
PROBE_IMAGES = 256  # the probe size the docs and the train CLI use
CLOCKS = {"wall": 0, "CPU": 1}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar_resnet56")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps a round")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=5, help="timed epoch-end calls")
    args = parser.parse_args()
    for flag in ("batch_size", "steps", "rounds", "calls"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    return args


def seconds_per_call(function, calls):
    """(wall, cpu) seconds per call of `function()`, over `calls` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        function()
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def median_per_call(function, calls, blocks=5):
    """Medians over `blocks` of `seconds_per_call`, per clock."""
    runs = [seconds_per_call(function, calls) for _ in range(blocks)]
    return tuple(statistics.median(run[clock] for run in runs) for clock in (0, 1))


def paired_steps(model, stats, batch, args):
    """Per-round (wall, cpu) seconds per step, callbacks off vs GradientStats.

    `stats` is set up on `model` here (patching its optimizer) and left so;
    `stats.on_train_end()` undoes it.
    """
    model.make_train_function(force=True)
    model.train_on_batch(*batch)  # traces the plain step
    functions = {"off": model.train_function}
    stats.set_model(model)
    stats.on_train_begin()
    model.train_on_batch(*batch)  # traces the step with GradientStats
    functions["GradientStats"] = model.train_function
    rounds = {name: [] for name in functions}
    order = list(functions)
    for index in range(args.rounds):
        for name in order if index % 2 == 0 else order[::-1]:
            model.train_function = functions[name]
            rounds[name].append(
                seconds_per_call(lambda: model.train_on_batch(*batch), args.steps)
            )
        off, on = rounds["off"][-1][0], rounds["GradientStats"][-1][0]
        print(
            f"  round {index + 1:2d}: off {off * 1000:.0f} ms/step, GradientStats "
            f"{on * 1000:.0f} ms/step ({on / off:.3f}x), load {os.getloadavg()[0]:.1f}"
        )
    model.train_function = functions["GradientStats"]  # as on_train_end expects
    print(
        f"  GradientStats recorded {int(stats._count.numpy())} of its "
        f"{args.rounds * args.steps} steps (every {stats.every}th step of the "
        "optimizer's count)"
    )
    return rounds


def record_seconds(model, stats, batch, calls=50):
    """(wall, cpu) seconds of GradientStats' per-step work alone, per call.

    The same in-graph computation the train step runs (`_record`: the norm
    of every gradient, the per-layer sums), compiled on its own and fed the
    real gradients of `batch`.
    """
    images, labels = batch
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, model(images, training=True)
        )
    gradients = tape.gradient(loss, model.trainable_variables)
    record = tf.function(stats._record)
    record(gradients)  # traces
    return median_per_call(lambda: record(gradients), calls)


def readout_seconds(stats, calls):
    """(wall, cpu) seconds of GradientStats' epoch begin and end."""

    def epoch():
        stats.on_epoch_end(0, logs={})
        stats.on_epoch_begin(1)
        stats._count.assign(1.0)  # as after a step: on_epoch_end reads it all

    epoch()
    return median_per_call(epoch, calls)


def probe_seconds(model, probe, calls):
    """(wall, cpu) seconds of ActivationStats' epoch-end work (the probe)."""
    stats = ActivationStats(probe)
    stats.set_model(model)
    stats.set_params({"epochs": 1})
    stats.on_train_begin()
    stats.on_epoch_end(0, logs={})  # traces the probe
    return median_per_call(lambda: stats.on_epoch_end(0, logs={}), calls)


def main():
    args = parse_args()
    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.batch_size, 32, 32, 3), dtype="float32")
    labels = rng.integers(0, 10, args.batch_size)
    steps_per_epoch = math.ceil(CIFAR_TRAIN_IMAGES / args.batch_size)
    model = create_model(args.model, input_shape=(32, 32, 3), classes=10)
    recipe = get_recipe(recipe_for_model(args.model))
    model.compile(
        optimizer=recipe.optimizer(steps_per_epoch, args.batch_size),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    print(
        f"{args.model}, batch {args.batch_size}, {args.rounds} paired rounds of "
        f"{args.steps} steps; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    stats = GradientStats()
    batch = (images, labels)
    rounds = paired_steps(model, stats, batch, args)
    record = record_seconds(model, stats, batch)
    readout = readout_seconds(stats, args.calls)
    stats.on_train_end()
    probe_images = rng.standard_normal((PROBE_IMAGES, 32, 32, 3), dtype="float32")
    probe = probe_seconds(model, probe_images, args.calls)
    step_off = {
        word: statistics.median(r[clock] for r in rounds["off"])
        for word, clock in CLOCKS.items()
    }

    print(
        f"\ntraining step, callbacks off: {step_off['wall'] * 1000:.0f} ms wall, "
        f"{step_off['CPU'] * 1000:.0f} ms CPU"
    )
    print(
        f"GradientStats alone: {record[0] * 1000:.2f} ms wall, "
        f"{record[1] * 1000:.2f} ms CPU a step; epoch begin + end "
        f"{readout[0] * 1000:.1f} ms"
    )
    print(f"ActivationStats alone: probe {probe[0] * 1000:.0f} ms wall an epoch")
    print(f"\noverhead on a CIFAR-10 epoch ({steps_per_epoch} steps), goal <= 5%:")
    for word, clock in CLOCKS.items():
        epoch = steps_per_epoch * step_off[word]
        activation = probe[clock] / epoch
        gradient = (steps_per_epoch * record[clock] + readout[clock]) / epoch
        print(
            f"  ({word:4s}) ActivationStats {activation:+.2%}, GradientStats "
            f"{gradient:+.2%}, both {activation + gradient:+.2%}"
        )
    for word, clock in CLOCKS.items():
        ratio = summarize(
            [
                on[clock] / off[clock]
                for on, off in zip(rounds["GradientStats"], rounds["off"])
            ]
        )
        print(
            f"cross-check ({word}): whole steps with GradientStats / without, "
            f"{ratio.mean:.4f}x [{ratio.ci_low:.4f}, {ratio.ci_high:.4f}] (95%)"
        )


if __name__ == "__main__":
    main()
