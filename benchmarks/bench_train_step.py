"""Training-step throughput: the registry's ResNet-50 against keras.applications.

Both models are compiled the same way (SGD, sparse categorical crossentropy)
and trained on the same synthetic batch made with numpy. Warm-up steps (the
first one traces the step function) are not timed. The two models alternate
over several rounds, in swapped order every round, so that machine noise hits
both; the script prints images/s for each and the ratio (registry / keras).

The architectures differ only where the registry follows the Torch
references: no conv biases before BN, "same" padding instead of ZeroPadding
layers, BN epsilon 1e-5. Both stride on the first 1x1 conv of a bottleneck
unless `--stride-on conv2` is given.

Usage:

```
python benchmarks/bench_train_step.py                      # batch 64, 224x224
python benchmarks/bench_train_step.py --batch-size 8 --image-size 64 \
    --steps 3 --rounds 2                                   # a quick CPU check
```
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eraserelu.models import create_model  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--stride-on", choices=("conv1", "conv2"), default="conv1")
    parser.add_argument(
        "--erase",
        choices=("none", "last"),
        default="none",
        help="also erase the registry model's ReLUs (EraseReLU)",
    )
    parser.add_argument(
        "--jit-compile", choices=("auto", "true", "false"), default="auto"
    )
    parser.add_argument(
        "--dtype-policy",
        default="float32",
        help="global Keras dtype policy, e.g. mixed_float16 or mixed_bfloat16",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for flag in ("batch_size", "image_size", "steps", "rounds", "classes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.warmup < 1:
        parser.error("--warmup must be at least 1 (the first step traces)")
    return args


def build_models(args):
    shape = (args.image_size, args.image_size, 3)
    ours = create_model(
        "resnet50",
        input_shape=shape,
        classes=args.classes,
        stride_on=args.stride_on,
        erase=None if args.erase == "none" else args.erase,
    )
    reference = keras.applications.ResNet50(
        weights=None, input_shape=shape, classes=args.classes
    )
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    for model in (ours, reference):
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            jit_compile=jit,
        )
    return {"registry resnet50": ours, "keras.applications ResNet50": reference}


def synthetic_batch(args):
    rng = np.random.default_rng(args.seed)
    shape = (args.batch_size, args.image_size, args.image_size, 3)
    images = rng.uniform(-1.0, 1.0, shape).astype("float32")
    labels = rng.integers(0, args.classes, (args.batch_size,)).astype("int32")
    return keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)


def run_steps(model, x, y, steps):
    """Seconds for `steps` training steps (each returns its loss: in sync)."""
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    elapsed = time.perf_counter() - start
    if not np.isfinite(loss):
        raise RuntimeError(f"Non-finite loss {loss!r} in {model.name}.")
    return elapsed


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    keras.config.set_dtype_policy(args.dtype_policy)
    models = build_models(args)
    x, y = synthetic_batch(args)
    print(
        f"keras {keras.__version__} ({keras.backend.backend()}), "
        f"{platform.machine()} / {os.cpu_count()} CPUs, device: {device_name()}"
    )
    print(
        f"batch {args.batch_size}, {args.image_size}x{args.image_size}, "
        f"{args.steps} steps x {args.rounds} rounds, {args.warmup} warm-up, "
        f"policy {args.dtype_policy}, jit_compile={args.jit_compile}, "
        f"stride_on={args.stride_on}, erase={args.erase}"
    )
    for label, model in models.items():
        params = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        start = time.perf_counter()
        run_steps(model, x, y, args.warmup)
        print(
            f"  {label}: {params:,} trainable parameters, warm-up "
            f"{time.perf_counter() - start:.1f} s"
        )

    rates = {label: [] for label in models}
    order = list(models)
    for round_index in range(args.rounds):
        for label in order if round_index % 2 == 0 else order[::-1]:
            seconds = run_steps(models[label], x, y, args.steps)
            rates[label].append(args.batch_size * args.steps / seconds)
        print(
            f"round {round_index + 1}: "
            + ", ".join(f"{label} {rates[label][-1]:.1f} img/s" for label in order)
        )

    print("images/s (mean of rounds, median in brackets):")
    means = {}
    for label in order:
        means[label] = statistics.fmean(rates[label])
        print(
            f"  {label:30s} {means[label]:9.1f}  "
            f"[{statistics.median(rates[label]):.1f}]"
        )
    ratio = means[order[0]] / means[order[1]]
    print(f"ratio registry / keras.applications: {ratio:.3f}x (goal >= 0.98x)")
    return ratio


def device_name():
    """The accelerator the backend trains on, or "CPU"."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        names = [
            tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")
            for gpu in gpus
        ]
    elif backend == "jax":
        import jax

        names = [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    else:
        names = []
    return ", ".join(names) if names else "CPU"


if __name__ == "__main__":
    main()
