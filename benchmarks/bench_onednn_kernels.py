"""The same oneDNN kernels, timed inside TensorFlow and inside PyTorch.

Both frameworks run cifar_resnet56's convolutions and batch norms on CPU
through oneDNN, each with the oneDNN it bundles. This script trains the
network of `bench_vs_pytorch.py` in each framework (one subprocess each,
`ONEDNN_VERBOSE=1`, the same runners), keeps the kernel executions of a few
steady-state steps, and prints, for every kernel both ran (primitive kind,
propagation and shape), the median time of one execution in each framework
and their ratio. It answers "is a gap in the training step the package's
or the library's?" without guessing from op-level profiles, whose times
overlap under TensorFlow's inter-op parallelism (the TensorFlow child runs
one inter-op thread here so that kernels do not overlap).

Measured on the project's 2-core AMD EPYC (AVX512_BF16): TensorFlow 2.21
bundles oneDNN 3.7.3 on its Eigen thread pool, PyTorch 2.13 oneDNN 3.12 on
OpenMP. With the same implementations (brg_conv_fwd, brg_conv_bwd, jit_bf16
backward_weights) and memory formats, 5 alternating rounds of 2 steps:

| | forward | data gradient | weight gradient | weight reorders | a step |
|---|---|---|---|---|---|
| bfloat16 | 1.04-1.05x | 1.03-1.04x | 1.07-1.32x | 4.7x | 1.16x |
| float32 | 1.03-1.05x | 1.04-1.05x | 1.05-1.12x | 4.0x | 1.09x |

(TensorFlow / PyTorch; "a step" sums every kernel both ran: 278 against 239
ms at bfloat16. A 3-round run gave 1.22x at bfloat16.) The weight reorders
(about 40 us against 5-10 us a call) are mostly thread-pool dispatch.

Usage:

```
python benchmarks/bench_onednn_kernels.py                 # bfloat16
python benchmarks/bench_onednn_kernels.py --precision float32 --steps 3
```
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import subprocess
import sys

FRAMEWORKS = ("tensorflow", "torch")
MARK = "=== {phase} {framework} ==="


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--precision", choices=("float32", "bfloat16"), default="bfloat16"
    )
    parser.add_argument("--steps", type=int, default=2, help="steps a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, default=4, help="steps first, not recorded"
    )
    parser.add_argument("--top", type=int, default=14, help="kernels listed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.steps, args.rounds, args.warmup, args.top) < 1:
        parser.error("--steps, --rounds, --warmup and --top must be at least 1")
    return args


def run_child(args):
    """Trains both frameworks in alternating rounds, marking each segment."""
    import ctypes

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_vs_pytorch as bench

    options = bench.parse_args(["--precision", args.precision])
    images, labels = bench.synthetic_data(options)
    torch = bench.import_torch()
    runners = {
        "tensorflow": bench.KerasRunner(options, args.precision, images, labels),
        "torch": bench.TorchRunner(torch, options, args.precision, images, labels),
    }

    def segment(phase, framework, steps):
        # oneDNN writes through C's buffered stdout: flush around the mark.
        ctypes.CDLL(None).fflush(None)
        print(MARK.format(phase=phase, framework=framework), flush=True)
        runners[framework].run(steps)
        ctypes.CDLL(None).fflush(None)

    for framework in FRAMEWORKS:
        segment("warmup", framework, args.warmup)
    for index in range(args.rounds):
        for framework in FRAMEWORKS[:: 1 if index % 2 == 0 else -1]:
            segment("timed", framework, args.steps)


def record(args):
    """{framework: {(kind, propagation, shape): [ms, ...]}}, {framework:
    its oneDNN version}, from one child running both."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", TF_NUM_INTEROP_THREADS="1")
    command = [sys.executable, os.path.abspath(__file__), "--child"]
    for flag in ("precision", "steps", "rounds", "warmup"):
        command += [f"--{flag}", str(getattr(args, flag))]
    process = subprocess.run(command, env=env, capture_output=True, text=True)
    if process.returncode:
        sys.exit(f"The training run failed:\n{process.stderr[-3000:]}")
    kernels = {name: collections.defaultdict(list) for name in FRAMEWORKS}
    versions = {}
    phase = framework = None
    for line in process.stdout.splitlines():
        if line.startswith("=== "):
            phase, framework = line.split()[1:3]
            continue
        fields = line.split(",")
        if not line.startswith("onednn_verbose") or framework is None:
            continue
        if "info" in fields[:3] and fields[3].startswith("oneDNN v"):
            versions.setdefault(framework, fields[3])
        elif phase == "timed" and "exec" in fields[:4]:
            kind, propagation = fields[5], fields[7]
            kernels[framework][(kind, propagation, fields[-2])].append(
                float(fields[-1])
            )
    if not all(kernels.values()):
        sys.exit("The run printed no oneDNN trace (is TensorFlow's oneDNN on?).")
    return kernels, versions


def short_shape(shape):
    """'mb128_ic16oc16_ih32oh32kh3sh1...' -> '16->16 ch 32x32 k3 s1'."""
    match = re.match(r"mb\d+_ic(\d+)oc(\d+)_ih(\d+)oh\d+kh(\d+)sh(\d+)", shape)
    if not match:
        return shape
    inputs, outputs, size, kernel, stride = match.groups()
    return f"{inputs}->{outputs} ch {size}x{size} k{kernel} s{stride}"


def per_step(kernels, key, steps):
    return sum(kernels[key]) / steps


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    kernels, versions = record(args)
    for name in FRAMEWORKS:
        print(f"{name}: {versions.get(name, 'oneDNN version not printed')}")
    steps = args.steps * args.rounds
    tf_kernels, torch_kernels = kernels["tensorflow"], kernels["torch"]
    common = sorted(
        set(tf_kernels) & set(torch_kernels),
        key=lambda key: -per_step(tf_kernels, key, steps),
    )
    print(
        f"\n{args.precision}, {args.rounds} alternating rounds of {args.steps} "
        "steps: median ms of one execution; 'a step' is the kernel's total "
        f"over a TensorFlow training step\n"
        f"{'kernel':58s} {'tf':>7s} {'torch':>7s} {'tf/torch':>8s} {'a step':>8s}"
    )
    for key in common[: args.top]:
        tf_ms = statistics.median(tf_kernels[key])
        torch_ms = statistics.median(torch_kernels[key])
        label = f"{key[0]} {key[1]} {short_shape(key[2])}"[:58]
        print(
            f"{label:58s} {tf_ms:7.3f} {torch_ms:7.3f} {tf_ms / torch_ms:7.2f}x "
            f"{per_step(tf_kernels, key, steps):6.1f}ms"
        )
    totals = {
        name: sum(per_step(kernels[name], key, steps) for key in common)
        for name in FRAMEWORKS
    }
    print(
        f"\nkernels both ran, a step: tensorflow {totals['tensorflow']:.1f} ms, "
        f"torch {totals['torch']:.1f} ms = "
        f"{totals['tensorflow'] / totals['torch']:.2f}x"
    )


if __name__ == "__main__":
    main()
