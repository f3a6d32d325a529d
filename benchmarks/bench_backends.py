"""Training images/s of `train()` itself on the TensorFlow, JAX and PyTorch backends.

Each backend runs in its own process (Keras reads KERAS_BACKEND at import):
`train(model, ((x, y), (x_val, y_val)), ...)` on synthetic CIFAR-shaped
arrays (normalized random images, random labels; CIFAR-10 cannot be
downloaded here), with the recipe, strategy ("auto"), precision and XLA
rules of that backend, the package's tf.data pipeline and one `fit` of
several epochs. A callback times the steps of every epoch after its first
step; the first epoch (tracing, compilation) is left out, and the median of
the other epochs is reported. Plain PyTorch (the same network written by
hand in `bench_vs_pytorch.py`, `torch.optim.SGD`, autocast for bfloat16)
runs in the torch process between the Keras runs (for cifar_resnet56 only,
the one network written there). The table gives images/s and the ratios to
TensorFlow's `train()` and to plain PyTorch at the same precision.

Usage (PyTorch and JAX CPU wheels: `pip install torch==2.13.0 jax`):

```
python benchmarks/bench_backends.py                       # cifar_resnet56
python benchmarks/bench_backends.py --model cifar_resnet20 --epochs 3 --steps 4
```

Figures of the project's shared 2-core CPU are in
`benchmarks/results/backends_cpu.txt` (with the load the machine had).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "mixed_bfloat16")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar_resnet56")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="the first untimed")
    parser.add_argument("--steps", type=int, default=4, help="steps per epoch")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    parser.add_argument("--no-plain-torch", action="store_true")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one backend's run
    return parser.parse_args(argv)


def worker(args):
    """In a process of one backend: every precision through `train()`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    sys.path.insert(0, str(HERE))
    from train_timing import time_train

    rng = np.random.default_rng(0)
    count = args.batch_size * args.steps
    x = rng.standard_normal((count, 32, 32, 3), dtype="float32")
    y = rng.integers(0, 10, count).astype("int32")
    data = ((x, y), (x[: args.batch_size], y[: args.batch_size]))
    results = []
    for precision in args.precisions:
        start = time.perf_counter()
        rate, epochs, result = time_train(
            args.model, data, batch_size=args.batch_size, epochs=args.epochs,
            steps=args.steps, precision=precision,
        )  # fmt: skip
        results.append({
            "backend": keras.backend.backend(), "kind": "train()",
            "precision": result.config["precision"],
            "jit_compile": result.config["jit_compile"],
            "images_per_s": rate,
            "epochs_images_per_s": [round(r, 1) for r in epochs],
            "total_s": round(time.perf_counter() - start, 1),
        })  # fmt: skip
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        plain = args.model == "cifar_resnet56" and not args.no_plain_torch
        if keras.backend.backend() == "torch" and plain:  # its one network
            results.append(plain_torch(args, precision, x, y))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print("RESULTS " + json.dumps(results), flush=True)


def plain_torch(args, precision, x, y):
    """The hand-written PyTorch ResNet-56 of bench_vs_pytorch.py."""
    sys.path.insert(0, str(HERE))
    import bench_vs_pytorch as reference
    import torch

    options = argparse.Namespace(batch_size=args.batch_size, seed=0)
    name = "bfloat16" if "bfloat16" in precision else "float32"
    runner = reference.TorchRunner(torch, options, name, x, y.astype("int64"))
    runner.run(2)  # warm-up
    rates = [runner.run(args.steps) for _ in range(args.epochs - 1)]
    return {"backend": "pytorch", "kind": "plain", "precision": precision,
            "images_per_s": statistics.median(rates),
            "epochs_images_per_s": [round(r, 1) for r in rates]}  # fmt: skip


def table(results):
    """Images/s, and the ratios to TensorFlow's train() and to plain PyTorch
    at the same precision."""

    def rates(kind, backend):
        return {r["precision"]: r["images_per_s"] for r in results
                if r["kind"] == kind and r["backend"] == backend}  # fmt: skip

    bases = rates("train()", "tensorflow"), rates("plain", "pytorch")
    lines = ["| backend | precision | jit | images/s | vs TF train() | vs PyTorch |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        ratios = [
            f"{r['images_per_s'] / base[r['precision']]:.2f}x"
            if r["precision"] in base else "-"
            for base in bases
        ]  # fmt: skip
        lines.append(
            f"| {r['backend']} {r['kind']} | {r['precision']} | "
            f"{r.get('jit_compile', '-')} | {r['images_per_s']:.1f} | "
            f"{' | '.join(ratios)} |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    results = []
    for backend in args.backends:
        command = [
            sys.executable,
            __file__,
            "--worker",
            backend,
            *(argv or sys.argv[1:]),
        ]
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
        process = subprocess.run(command, env=env, capture_output=True, text=True)
        found = [
            line for line in process.stdout.splitlines() if line.startswith("RESULTS ")
        ]
        if process.returncode or not found:
            print(f"{backend} failed:\n{process.stderr[-3000:]}", file=sys.stderr)
            continue
        results += json.loads(found[-1][len("RESULTS ") :])
    print(
        f"{args.model}, batch {args.batch_size}, {args.steps} steps x "
        f"{args.epochs - 1} timed epochs (median), CPU, {os.cpu_count()} cores"
    )
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
