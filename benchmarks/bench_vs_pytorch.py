"""Training images/s: cifar_resnet56 through the package's path vs PyTorch.

The Keras side goes through the pieces that `keras_eraserelu.training.trainer.train`
assembles, in the same order and with the same arguments: the strategy
(`make_strategy("auto")`), the dtype policy (`apply_precision`), XLA
(`resolve_jit_compile`), the model from the registry, the recipe's
`CoupledSGD` (`he_cifar` for cifar_resnet56: momentum 0.9, coupled L2 1e-4),
`compile` as `train` does it, and `model.fit` on the package's input
pipeline. `train()` itself takes a data set *name* (tensorflow-datasets or
digits), and CIFAR-10 cannot be downloaded here, so the synthetic arrays go
through `keras_eraserelu.data.pipelines.numpy_dataset`, the same pipeline tail as
`load_dataset`'s (shuffle, pad-4 random crop and flip in a parallel batched
map, prefetch).

The PyTorch side is the same network written plainly: CIFAR ResNet-56 (He et
al. 2016, arXiv 1512.03385: 3 stages of 9 basic blocks, 16/32/64 filters,
option-A zero-padding shortcuts), BN momentum 0.9 (Keras' convention;
PyTorch's 0.1) and epsilon 1e-5, He-normal convs, `torch.optim.SGD` with
momentum 0.9 and weight decay 1e-4, channels_last, the same pad-4 crop and
flip done on each batch with tensor ops, bfloat16 through
`torch.autocast("cpu", dtype=torch.bfloat16)`.

Both train on the same synthetic CIFAR-shaped data (normalized random images,
random labels). Only steady-state steps are timed: tracing, compilation and
warm-up steps come first, untimed. The frameworks alternate over rounds (in
swapped order every other round) so that machine noise hits both. Keras
trains in one `fit` whose epochs are the rounds, as `train` runs one `fit`
for a whole training (its input pipeline and iterator live on), and the
PyTorch rounds run between epochs from a callback; each round times the
steps after its first. (Separate short `fit` calls, one a round, restart the
pipeline every time and measured Keras 3-5% slower and twice as noisy.) The
script prints each round, the median images/s and the ratio Keras / PyTorch
per precision: of the medians, of the fastest rounds, and the geometric
mean of the rounds' paired ratios with a 95% t interval.

PyTorch is installed only for this benchmark (CPU build):
`pip install torch==2.13.0`.

Measured on the project's 2-core AMD EPYC (AVX512_BF16) machine, default
flags, rounds of 10 steps, images/s (Keras / PyTorch):

| | Keras 3 BN | fused BN | + pooled shortcut, one fit | PyTorch |
|---|---|---|---|---|
| float32 | 168 (0.79x) | 209-223 (1.00-1.03x) | 226 (1.04x) | 217 |
| bfloat16 | 214 (0.62x) | 305-341 (0.95-0.98x) | 348 (0.98x) | 355 |

Paired rounds of the last column's run (15 rounds, 95% t intervals):
float32 1.04x [1.02, 1.06], bfloat16 0.97x [0.93, 1.01]. Other runs of the
package as it is: bfloat16 0.95x [0.93, 0.98] (11 rounds) and, with
`TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`, 0.98x [0.96, 1.00] (9 rounds); timed
with one `fit` a round, 0.96x-1.00x. So float32 is above PyTorch and
bfloat16 0-5% below it.

What cost on the Keras side (`--profile`, timing variants in one process),
and what the package changed:
- Keras 3's batch norm, built from separate ops (moments, an elementwise
  normalization, their gradients, float32 casts under mixed_bfloat16), made
  steps 1.25-1.45x slower in float32 and 1.4-2.3x slower in bfloat16 than
  TensorFlow's fused kernel; the builders now use
  `keras_eraserelu.models.batch_norm.FusedBatchNormalization`, which calls it.
- The option-A shortcut's strided slice: StridedSliceGrad took about 4 ms a
  call; `ZeroPadShortcut` now subsamples with a 1x1 pooling, 3.5-4.5x faster
  (`bench_shortcut.py`), about 10 ms of a step.

What limits the ratio now is TensorFlow's, not the package's. Convolutions
and their gradients are 75-80% of a step, and the same oneDNN kernels (same
implementations, shapes and memory formats) run slower inside TensorFlow
2.21 (oneDNN 3.7.3 on Eigen's thread pool) than inside PyTorch 2.13 (oneDNN
3.12 on OpenMP): 1.16-1.22x at bfloat16, 1.09x at float32, summed over a
step (`bench_onednn_kernels.py`), the weight gradients most (up to 1.32x).
Then come TensorFlow's Eigen `ReluGrad` in bfloat16 (17 ms a step against
PyTorch's 13) and its batch-norm gradient (31 against 26). Everything else
in the Keras step (batch-norm forward, shortcuts, adds, optimizer, input
pipeline) is at or below PyTorch's cost. Tried and not better: XLA
(`--jit-compile true`, 3x slower), `--steps-per-execution 5` (0.99x), one
inter-op thread (0.96x [0.94, 0.98] against 1.00x [0.97, 1.03] with the
default, one after the other), four (0.97x),
`TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD=1` (0.90x [0.85, 0.94]),
`TF_MKL_OPTIMIZE_PRIMITIVE_MEMUSE=0` and `TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`
(no change), a fused TensorFlow
momentum kernel for the optimizer (0.5 ms a step).

On shared cores: when other work takes a core, PyTorch's OpenMP threads
slow down 2-10x while TensorFlow's thread pool loses far less, so medians of
a busy machine flatter Keras. The script also prints the ratio of each
framework's fastest round, and `--torch-wait-policy passive` keeps PyTorch's
threads from spinning (about 2x slower instead of up to 10x under load,
about 10% slower on a quiet machine).

Usage:

```
python benchmarks/bench_vs_pytorch.py                    # both precisions
python benchmarks/bench_vs_pytorch.py --profile
python benchmarks/bench_vs_pytorch.py --precision float32 --steps 6 --rounds 3
```
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_eraserelu.data import numpy_dataset  # noqa: E402
from keras_eraserelu.experiments import summarize  # noqa: E402
from keras_eraserelu.models import create_model  # noqa: E402
from keras_eraserelu.training import (  # noqa: E402  # noqa: E402
    apply_precision,
    get_recipe,
    make_strategy,  # noqa: E402
    recipe_for_model,
    resolve_jit_compile,
)

MODEL = "cifar_resnet56"
IMAGE_SHAPE = (32, 32, 3)
CLASSES = 10
PADDING = 4  # the CIFAR recipe's random shift
# --precision word -> (Keras policy, torch autocast dtype name or None)
PRECISIONS = {"float32": ("float32", None), "bfloat16": ("mixed_bfloat16", "bfloat16")}
TORCH_INSTALL = "pip install torch==2.13.0"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="steps a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--precision",
        default="float32,bfloat16",
        help=f"comma-separated, from {list(PRECISIONS)}",
    )
    parser.add_argument(
        "--examples", type=int, default=2048, help="synthetic training images"
    )
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "true", "false"),
        default="auto",
        help="Keras' XLA setting, through resolve_jit_compile",
    )
    parser.add_argument(
        "--steps-per-execution", type=int, default=1, help="Keras compile argument"
    )
    parser.add_argument(
        "--torch-wait-policy",
        choices=("default", "passive"),
        default="default",
        help="OMP_WAIT_POLICY for PyTorch's OpenMP threads; 'passive' keeps "
        "them from spinning, which helps PyTorch when the cores are shared",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print the TensorFlow op types that take the Keras step's time",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for flag in ("steps", "rounds", "warmup", "batch_size", "examples"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    args.precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    unknown = [p for p in args.precisions if p not in PRECISIONS]
    if unknown or not args.precisions:
        parser.error(
            f"--precision must name some of {list(PRECISIONS)}. Received: "
            f"{args.precision!r}."
        )
    per_execution = args.steps_per_execution
    if per_execution < 1:
        parser.error("--steps-per-execution must be at least 1")
    if args.steps % per_execution or args.steps < 2 * per_execution:
        parser.error(
            "--steps must be a multiple of --steps-per-execution, at least two "
            "executions (the first of each round is not timed)"
        )
    if args.examples < args.batch_size:
        parser.error("--examples must be at least --batch-size")
    return args


def import_torch(wait_policy="default"):
    """The torch module, or exit with the command that installs it."""
    if wait_policy != "default":  # read once, when torch loads OpenMP
        os.environ["OMP_WAIT_POLICY"] = wait_policy.upper()
    try:
        import torch
    except ImportError:
        sys.exit(
            "This benchmark compares against PyTorch, which the package does "
            f"not depend on. Install the CPU build first:\n    {TORCH_INSTALL}"
        )
    return torch


def synthetic_data(args):
    """Normalized CIFAR-shaped images (N, 32, 32, 3) and labels, as NumPy."""
    rng = np.random.default_rng(args.seed)
    images = rng.standard_normal((args.examples, *IMAGE_SHAPE), dtype="float32")
    labels = rng.integers(0, CLASSES, args.examples).astype("int64")
    return images, labels


def batch_norm_kind(model):
    """The batch norm layer classes of `model`, for the report."""
    kinds = {
        type(layer).__name__
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    return "/".join(sorted(kinds))


class StepTimer(keras.callbacks.Callback):
    """Times the batches of one `fit` call after its first execution."""

    def on_train_begin(self, logs=None):
        self.marks = []

    def on_train_batch_end(self, batch, logs=None):
        self.marks.append((batch, time.perf_counter()))

    def images_per_second(self, batch_size):
        (first, start), (last, end) = self.marks[0], self.marks[-1]
        return batch_size * (last - first) / (end - start)


class Rounds(StepTimer):
    """Makes each epoch of one `fit` a Keras round and runs a PyTorch round
    next to it: after the epoch in even rounds, before it in odd ones.

    Within an epoch, the steps after the first are timed (as by `StepTimer`).
    `report(index, keras_rate, torch_rate)` is called after each round.
    """

    def __init__(self, batch_size, torch_round, report):
        super().__init__()
        self.batch_size = batch_size
        self.torch_round = torch_round
        self.report = report
        self.rates = {"keras": [], "torch": []}

    def on_epoch_begin(self, epoch, logs=None):
        if epoch % 2:
            self.rates["torch"].append(self.torch_round())
        self.marks = []

    def on_epoch_end(self, epoch, logs=None):
        self.rates["keras"].append(self.images_per_second(self.batch_size))
        if epoch % 2 == 0:
            self.rates["torch"].append(self.torch_round())
        self.report(epoch, self.rates["keras"][-1], self.rates["torch"][-1])


class KerasRunner:
    """cifar_resnet56 compiled and fed as `keras_eraserelu.training.train` does."""

    def __init__(self, args, precision, images, labels):
        self.batch_size = args.batch_size
        strategy = make_strategy("auto")
        keras.utils.set_random_seed(args.seed)
        policy = apply_precision(PRECISIONS[precision][0], strategy)
        jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
        jit = resolve_jit_compile(jit, strategy)
        recipe = get_recipe(recipe_for_model(MODEL))
        steps_per_epoch = len(images) // args.batch_size

        def dataset_fn(input_context):  # as `distributed_dataset` builds it
            return numpy_dataset(
                images,
                labels,
                args.batch_size,
                shuffle=True,
                seed=args.seed,
                augment="crop_flip",
                input_context=input_context,
                padding=PADDING,
            ).repeat()

        self.data = strategy.distribute_datasets_from_function(dataset_fn)
        with strategy.scope():
            self.model = create_model(MODEL, input_shape=IMAGE_SHAPE, classes=CLASSES)
            self.model.compile(
                optimizer=recipe.optimizer(steps_per_epoch, args.batch_size),
                loss=keras.losses.SparseCategoricalCrossentropy(),
                metrics=["accuracy"],
                jit_compile=jit,
                steps_per_execution=args.steps_per_execution,
            )
        keras.config.set_dtype_policy("float32")
        self.description = (
            f"policy {policy}, jit_compile={jit}, "
            f"steps_per_execution={args.steps_per_execution}, "
            f"{batch_norm_kind(self.model)} batch norm, "
            f"{type(strategy).__name__}"
        )

    def parameters(self):
        return sum(int(np.prod(v.shape)) for v in self.model.trainable_weights)

    def run(self, steps):
        """images/s over `steps` training steps (after the first execution)."""
        timer = StepTimer()
        self.fit(1, steps, timer)
        return timer.images_per_second(self.batch_size)

    def run_rounds(self, steps, rounds, torch_round, report):
        """One `fit` of `rounds` epochs of `steps` steps, a PyTorch round
        beside each: {"keras": [images/s, ...], "torch": [...]}."""
        timer = Rounds(self.batch_size, torch_round, report)
        self.fit(rounds, steps, timer)
        return timer.rates

    def fit(self, epochs, steps, timer):
        history = self.model.fit(
            self.data,
            epochs=epochs,
            steps_per_epoch=steps,
            shuffle=False,  # the pipeline shuffles
            callbacks=[timer],
            verbose=0,
        )
        losses = history.history["loss"]
        if not np.all(np.isfinite(losses)):
            raise RuntimeError(f"Keras: non-finite loss in {losses!r}.")


def torch_resnet56(torch):
    """CIFAR ResNet-56 with option-A shortcuts, written plainly in PyTorch."""
    nn = torch.nn
    functional = torch.nn.functional

    def batch_norm(channels):
        # Keras momentum 0.9 keeps 0.9 of the old statistics; PyTorch's
        # momentum is the weight of the new batch.
        return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)

    class BasicBlock(nn.Module):
        def __init__(self, inputs, filters, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inputs, filters, 3, stride, 1, bias=False)
            self.bn1 = batch_norm(filters)
            self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
            self.bn2 = batch_norm(filters)
            self.stride = stride
            self.extra = filters - inputs

        def forward(self, x):
            y = functional.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if self.stride > 1 or self.extra:  # option A: subsample, zero-pad
                x = functional.pad(
                    x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.extra)
                )
            return functional.relu(y + x)

    class ResNet56(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.stem_bn = batch_norm(16)
            blocks, inputs = [], 16
            for filters, stride in zip((16, 32, 64), (1, 2, 2)):
                for index in range(9):
                    blocks.append(
                        BasicBlock(inputs, filters, stride if index == 0 else 1)
                    )
                    inputs = filters
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, CLASSES)
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

        def forward(self, x):
            x = functional.relu(self.stem_bn(self.stem(x)))
            x = self.blocks(x)
            return self.fc(torch.flatten(functional.adaptive_avg_pool2d(x, 1), 1))

    return ResNet56()


class TorchRunner:
    """The same network and data in a plain PyTorch training loop."""

    def __init__(self, torch, args, precision, images, labels):
        self.torch = torch
        self.batch_size = args.batch_size
        torch.manual_seed(args.seed)
        self.generator = torch.Generator().manual_seed(args.seed)
        memory = torch.channels_last
        self.model = torch_resnet56(torch).to(memory_format=memory).train()
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4
        )
        self.loss = torch.nn.CrossEntropyLoss()
        self.autocast = PRECISIONS[precision][1]
        # NHWC arrays -> NCHW tensors stored channels-last (the same bytes).
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2)
        self.labels = torch.from_numpy(labels)
        self.order = torch.randperm(len(labels), generator=self.generator)
        self.position = 0
        self.description = (
            f"autocast {self.autocast or 'off'}, channels_last, "
            f"{torch.get_num_threads()} threads"
        )

    def parameters(self):
        return sum(p.numel() for p in self.model.parameters())

    def next_batch(self):
        """A shuffled batch, randomly shifted (pad 4) and flipped."""
        torch = self.torch
        if self.position + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.labels), generator=self.generator)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        images = torch.nn.functional.pad(self.images[index], (PADDING,) * 4)
        batch, size = len(index), IMAGE_SHAPE[0]
        offsets = torch.randint(
            0, 2 * PADDING + 1, (batch, 2), generator=self.generator
        )
        span = torch.arange(size)
        flip = torch.rand(batch, 1, generator=self.generator) < 0.5
        rows = offsets[:, :1] + span
        columns = offsets[:, 1:] + torch.where(flip, span.flip(0), span)
        images = images[
            torch.arange(batch)[:, None, None], :, rows[:, :, None], columns[:, None, :]
        ]  # (B, H, W, C): the advanced indices come first
        images = images.permute(0, 3, 1, 2).contiguous(
            memory_format=torch.channels_last
        )
        return images, self.labels[index]

    def step(self):
        torch = self.torch
        images, labels = self.next_batch()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(
            "cpu",
            dtype=getattr(torch, self.autocast or "bfloat16"),
            enabled=self.autocast is not None,
        ):
            loss = self.loss(self.model(images), labels)
        loss.backward()
        self.optimizer.step()
        return loss

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        elapsed = time.perf_counter() - start
        if not bool(self.torch.isfinite(loss)):
            raise RuntimeError(f"PyTorch: non-finite loss {float(loss)!r}.")
        return self.batch_size * steps / elapsed


def compare(args, precision, images, labels, torch):
    """Rounds of alternating Keras and PyTorch; returns the two ratios.

    Returns:
        (median ratio, best-round ratio, paired text): Keras / PyTorch
        images/s, from the medians of the rounds, from each framework's
        fastest round (other work on shared cores only slows a round down,
        so the fastest rounds are the closest to a quiet machine), and the
        rounds' paired ratios with their interval, as printed.
    """
    runners = {
        "keras": KerasRunner(args, precision, images, labels),
        "torch": TorchRunner(torch, args, precision, images, labels),
    }
    print(f"\n== {precision} ==")
    for name, runner in runners.items():
        start = time.perf_counter()
        # Keras' first execution traces the step function.
        runner.run(args.warmup + (args.steps_per_execution if name == "keras" else 0))
        print(
            f"  {name}: {runner.parameters():,} parameters, {runner.description}; "
            f"warm-up {time.perf_counter() - start:.1f} s"
        )

    def report(index, keras_rate, torch_rate):
        print(
            f"  round {index + 1}: keras {keras_rate:6.1f} img/s, torch "
            f"{torch_rate:6.1f} img/s (load {os.getloadavg()[0]:.1f})"
        )

    rates = runners["keras"].run_rounds(
        args.steps, args.rounds, lambda: runners["torch"].run(args.steps), report
    )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        spread = (max(values) - min(values)) / medians[name]
        print(
            f"  {name:6s} median {medians[name]:7.1f} img/s "
            f"(min {min(values):.1f}, max {max(values):.1f}, spread {spread:.0%})"
        )
    ratio = medians["keras"] / medians["torch"]
    best = max(rates["keras"]) / max(rates["torch"])
    paired = paired_ratio(rates["keras"], rates["torch"])
    print(
        f"  keras / torch at {precision}: {ratio:.2f}x of medians, {best:.2f}x "
        f"of the fastest rounds; {paired} (goal >= 1.0x)"
    )
    if args.profile:
        profile_keras(runners["keras"], args.steps)
    return ratio, best, paired


def paired_ratio(keras_rates, torch_rates):
    """Geometric mean of the rounds' Keras / PyTorch ratios, with a 95% t
    interval: both frameworks ran back to back in each round, so a round's
    ratio cancels most of the load that round saw."""
    logs = np.log(np.asarray(keras_rates) / np.asarray(torch_rates))
    summary = summarize(logs)
    text = f"paired rounds {np.exp(summary.mean):.2f}x"
    if summary.defined:
        text += f" [{np.exp(summary.ci_low):.2f}, {np.exp(summary.ci_high):.2f}]"
    return text


def profile_keras(runner, steps, top=12):
    """Prints the TensorFlow op types that take the most time in `steps` steps.

    Shares are of the summed op time; with inter-op parallelism ops overlap,
    so the sum exceeds the wall time.
    """
    import tempfile

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        runner.run(steps)
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        for root, _, files in os.walk(logdir):
            for name in files:
                if name.endswith(".xplane.pb"):
                    with open(os.path.join(root, name), "rb") as file:
                        space.MergeFromString(file.read())
    seconds, counts = {}, {}
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op = name.rsplit(":", 1)[-1].strip()
                # Ops are "name:Type"; skip the executor's "Class::Method"
                # events, the step function and tf.data's events.
                if ":" not in name or "::" in name or op.startswith("__"):
                    continue
                seconds[op] = seconds.get(op, 0.0) + event.duration_ps * 1e-12
                counts[op] = counts.get(op, 0) + 1
    total = sum(seconds.values())
    print(
        f"  profile of {steps} Keras steps: {wall:.2f} s wall, {total:.2f} s of op time"
    )
    for op in sorted(seconds, key=seconds.get, reverse=True)[:top]:
        print(
            f"    {op:34s} {seconds[op] / steps * 1000:8.1f} ms/step "
            f"{seconds[op] / total:6.1%}  ({counts[op] // steps} per step)"
        )


def main(argv=None):
    args = parse_args(argv)
    torch = import_torch(args.torch_wait_policy)
    images, labels = synthetic_data(args)
    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}, torch "
        f"{torch.__version__}; {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print(
        f"{MODEL}, batch {args.batch_size}, {args.steps} timed steps x "
        f"{args.rounds} rounds per framework, {args.warmup} warm-up steps"
    )
    ratios = {p: compare(args, p, images, labels, torch) for p in args.precisions}
    print(
        "\nkeras / torch: "
        + ", ".join(
            f"{p} {median:.2f}x (fastest rounds {best:.2f}x; {paired})"
            for p, (median, best, paired) in ratios.items()
        )
    )
    return ratios


if __name__ == "__main__":
    main()
