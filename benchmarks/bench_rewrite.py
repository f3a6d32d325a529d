"""erase_relu against what a user writes by hand today, side by side.

Baseline: `keras.models.clone_model(model)` then `clone.set_weights(...)`.
Measured: `erase_relu(model)` (weights copied) and
`erase_relu(model, share_weights=True)`. Rounds alternate the three so noise
hits them alike; the median of each is reported with the ratios.

    python benchmarks/bench_rewrite.py [--models ResNet152,DenseNet201,...] [--rounds 3]

Goal: erase_relu <= 1.0x of the baseline, share_weights=True <= 0.3x.
"""

import argparse
import gc
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_eraserelu as ker  # noqa: E402

DEFAULT_MODELS = "ResNet152,DenseNet201,InceptionV3,VGG16"


def baseline(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def timed(function, model):
    gc.collect()
    start = time.perf_counter()
    result = function(model)
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    candidates = {
        "clone+set_weights": baseline,
        "erase_relu": ker.erase_relu,
        "erase_relu(share)": lambda m: ker.erase_relu(m, share_weights=True),
    }
    print(f"keras {keras.__version__}, {args.rounds} rounds, median seconds")
    print(
        f"{'model':<12} {'baseline':>9} {'erase':>9} {'share':>9} {'erase/base':>11} "
        f"{'share/base':>11}"
    )
    for name in args.models.split(","):
        model = getattr(keras.applications, name)(weights=None)
        times = {key: [] for key in candidates}
        for _ in range(args.rounds):
            for key, function in candidates.items():
                times[key].append(timed(function, model))
        base, erase, share = (statistics.median(times[k]) for k in candidates)
        print(
            f"{name:<12} {base:9.2f} {erase:9.2f} {share:9.2f} {erase / base:10.2f}x "
            f"{share / base:10.2f}x",
            flush=True,
        )
        del model
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
