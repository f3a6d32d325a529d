"""Inference speed of folded models against the unfolded ones, side by side.

Three cases, each the unfolded model and `fold_linear`'s result in the same
process, traced once (`tf.function`, inference mode) and timed at batch 32
in alternating rounds, so that the noise of a shared machine hits both
alike; the median images/s of each and their ratio are printed, with the
layer calls and FLOPs of both:

- keras.applications ResNet50 (224x224, weights=None), batch norm folded
  (goal >= 1.15x);
- MobileNetV2 (224x224) with every inverted-residual block's activations
  erased (`kinds=("relu6",)`, `select=["block_*_relu",
  "expanded_conv_*relu"]`) and folded with `residuals=True` (goal >= 1.5x);
- the registry's cifar_resnet56 (32x32) erased with `where="first"` and
  folded (reported).

Batch norm statistics and gammas are randomized first (a trained network's
are not the identity), so that the folds compute real biases, bias maps
included. Results: `benchmarks/results/fold_cpu.txt` and `.json`.

Measured on the project's 2-core CPU (shared, load average about 2),
TensorFlow 2.21, 7 rounds of 3 batches, median images/s:

| case | unfolded | folded | ratio | goal |
|---|---|---|---|---|
| resnet50 | 25.7 | 33.7 | 1.31x | 1.15x |
| mobilenet_v2 | 113.1 | 417.4 | 3.69x | 1.5x |
| cifar_resnet56 | 637.6 | 744.8 | 1.17x | report |

(1.32x, 3.93x, 1.09x in an earlier run, 5 rounds.)

Usage:

```
python benchmarks/bench_fold.py
python benchmarks/bench_fold.py --rounds 7 --calls 5 --json fold.json
```
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_eraserelu as ker  # noqa: E402
from keras_eraserelu.models import create_model  # noqa: E402

BATCH = 32
GOALS = {"resnet50": 1.15, "mobilenet_v2": 1.5, "cifar_resnet56": None}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3, help="batches a round")
    parser.add_argument("--cases", default=",".join(GOALS), help="comma-separated")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        parser.error("--rounds and --calls must be at least 1")
    unknown = set(args.cases.split(",")) - set(GOALS)
    if unknown:
        parser.error(f"unknown --cases {sorted(unknown)}; choose from {list(GOALS)}")
    return args


def randomize_batch_norms(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.1, shape))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, shape))
            layer.gamma.assign(rng.uniform(0.8, 1.2, shape))
            layer.beta.assign(rng.normal(0, 0.1, shape))
    return model


def case(name):
    """(unfolded model, fold_linear arguments, input shape)."""
    if name == "resnet50":
        model = keras.applications.ResNet50(weights=None)
        return randomize_batch_norms(model), {}, (224, 224, 3)
    if name == "mobilenet_v2":
        model = randomize_batch_norms(keras.applications.MobileNetV2(weights=None))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # relu6 loses its clip
            erased = ker.erase_relu(
                model, kinds=("relu6",), select=["block_*_relu", "expanded_conv_*relu"]
            )
        return erased, {"residuals": True}, (224, 224, 3)
    model = randomize_batch_norms(create_model("cifar_resnet56"))
    return ker.erase_relu(model, where="first"), {"residuals": True}, (32, 32, 3)


def images_per_second(models, shape, args):
    """Median images/s of each model, rounds alternating their order."""
    x = np.random.default_rng(0).standard_normal((BATCH, *shape))
    x = tf.constant(x, "float32")
    steps = {}
    for key, model in models.items():
        step = tf.function(lambda t, m=model: m(t, training=False))
        step(x).numpy()  # trace and warm up
        steps[key] = step
    seconds = {key: [] for key in steps}
    for index in range(args.rounds):
        order = list(steps) if index % 2 == 0 else list(steps)[::-1]
        for key in order:
            start = time.perf_counter()
            for _ in range(args.calls):
                steps[key](x).numpy()
            seconds[key].append((time.perf_counter() - start) / args.calls)
    return {key: BATCH / statistics.median(values) for key, values in seconds.items()}


def main(argv=None):
    args = parse_args(argv)
    print(
        f"tensorflow {tf.__version__}, keras {keras.__version__}, {os.cpu_count()} "
        f"CPUs ({platform.processor() or platform.machine()}); batch {BATCH}, "
        f"{args.rounds} rounds of {args.calls} batches, median images/s"
    )
    header = (
        f"{'case':<15} {'unfolded':>9} {'folded':>9} {'ratio':>7} {'goal':>6}  "
        f"{'layer calls':>12}  {'GFLOPs/image':>13}  fold s"
    )
    print(header)
    rows = []
    for name in args.cases.split(","):
        model, options, shape = case(name)
        start = time.perf_counter()
        folded, report = ker.fold_linear(model, **options)
        fold_seconds = time.perf_counter() - start
        speed = images_per_second({"unfolded": model, "folded": folded}, shape, args)
        ratio = speed["folded"] / speed["unfolded"]
        goal = GOALS[name]
        flops = [f / 1e9 for f in report.flops]
        calls = report.layer_calls
        print(
            f"{name:<15} {speed['unfolded']:9.1f} {speed['folded']:9.1f} "
            f"{ratio:6.2f}x {f'{goal:.2f}x' if goal else 'report':>6}  "
            f"{calls[0]:>5} -> {calls[1]:<4}  {flops[0]:5.2f} -> {flops[1]:<5.2f}  "
            f"{fold_seconds:6.1f}",
            flush=True,
        )
        rows.append(
            {
                "case": name,
                "fold_linear": options,
                "input_shape": list(shape),
                "batch": BATCH,
                "images_per_s": speed,
                "ratio": ratio,
                "goal": goal,
                "layer_calls": list(calls),
                "flops_per_image": list(report.flops),
                "relative_difference": report.relative_difference,
                "fold_seconds": fold_seconds,
                "counts": {
                    kind: report.count(kind)
                    for kind in ("identity", "batch_norm", "chain", "residual")
                },
            }
        )
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"cpus": os.cpu_count(), "results": rows}, stream, indent=2)
        print(f"written to {args.json}")


if __name__ == "__main__":
    main()
