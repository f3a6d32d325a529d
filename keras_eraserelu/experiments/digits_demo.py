"""`eraserelu demo`: EraseReLU on a deep ResNet, offline, in a few minutes.

A CIFAR ResNet-32 (post-activation, 15 residual blocks) trains on
scikit-learn's 8x8 digits (1,437 training and 360 test images, shipped with
the package: no download), with and without EraseReLU, over several seeds,
through `keras_eraserelu.experiments.comparison.compare`. It prints the table with
confidence intervals and Welch's t-test, says in one sentence what the test
shows, writes the plots, and tells what to run next.

A short schedule on a small data set: it shows how to settle the question
with numbers, not the paper's CIFAR result. Why this configuration: on
ResNet-20 the two variants differed by less than the spread between seeds;
ResNet-56 costs about twice as much per run (tracing its graph dominates a
short run), which would leave 2 seeds in the budget; ResNet-32 with 4 seeds
of 6 epochs takes 147-159 s of CPU time in all, 189-242 s of wall time on
2 shared cores (5 minutes on 2 cores is the budget;
`benchmarks/bench_demo.py` measures it).

Example:

```python
result = demo("eraserelu-demo")   # about 150 s of CPU time: 3 minutes on 2 cores
result.differences[0]["final_error"].p_value
```
"""

from __future__ import annotations

import math
import os

from keras_eraserelu.core import tensorflow_available
from keras_eraserelu.experiments.comparison import compare

DEMO_MODEL = "cifar_resnet32"
DEMO_SEEDS = 4
DEMO_EPOCHS = 6
DEMO_BATCH_SIZE = 128
SIGNIFICANCE = 0.05


def demo(
    out="eraserelu-demo",
    *,
    seeds=DEMO_SEEDS,
    epochs=DEMO_EPOCHS,
    model=DEMO_MODEL,
    batch_size=DEMO_BATCH_SIZE,
    steps_per_epoch=None,
):
    """Compares `model` with and without EraseReLU on digits and reports.

    Args:
        out: str. The experiment directory. Defaults to "eraserelu-demo".
        seeds: int. Seeds per variant. Defaults to `DEMO_SEEDS`.
        epochs: int. Epochs per run. Defaults to `DEMO_EPOCHS`.
        model: str. A registry model. Defaults to `DEMO_MODEL`.
        batch_size: int. Defaults to `DEMO_BATCH_SIZE`.
        steps_per_epoch: int or None. Shorten epochs (for tests).

    Returns:
        The `ExperimentResult` of `compare`.

    Example:

    ```python
    demo("eraserelu-demo", seeds=2, epochs=2)    # a quicker, rougher look
    ```
    """
    print(
        f"EraseReLU demo: {model} on scikit-learn's 8x8 digits (offline), "
        f"without and with EraseReLU (erase='last'), {seeds} seeds x {epochs} "
        f"epochs, batch {batch_size}. Files go to {os.path.abspath(out)}.",
        flush=True,
    )
    result = compare(
        [(model, "none"), (model, "last")],
        "digits",
        seeds,
        out=out,
        epochs=epochs,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        gradient_stats=1,
    )
    print("\n" + verdict(result.differences[0]["final_error"], seeds))
    board = (
        f"  tensorboard --logdir {out}\n"
        "      every run's curves, gradient norms included\n"
        if tensorflow_available()  # Keras writes the logs with TensorFlow
        else ""
    )
    print(
        "\nNext:\n"
        f"{board}"
        "  eraserelu compare --models cifar_resnet20,cifar_resnet56 --erase "
        "none,last --dataset cifar10 --seeds 5 --out cifar10-compare\n"
        "      the same on CIFAR-10 with the paper's recipe (downloads CIFAR-10 "
        "once; a GPU helps)\n"
        "  eraserelu compare --depths 20,56,110 --dataset cifar10 --seeds 5 "
        "--out depth-sweep\n"
        "      does a deeper network gain more? (adds depth_sweep.png)"
    )
    return result


def verdict(difference, seeds):
    """One sentence on what the test of the final test error shows."""
    if math.isnan(difference.p_value):
        return (
            f"With {seeds} seed(s) per variant there is no interval and no test: "
            "run with 2 seeds or more."
        )
    change = 100 * difference.mean
    interval = f"[{100 * difference.ci_low:+.2f}, {100 * difference.ci_high:+.2f}]"
    if difference.p_value < SIGNIFICANCE:
        reading = (
            f"a difference this large is unlikely if both had the same mean error "
            f"(p < {SIGNIFICANCE})"
        )
    else:
        reading = (
            f"not significant at the {SIGNIFICANCE:g} level with {seeds} seeds: "
            "the data do not tell the two apart"
        )
    return (
        f"EraseReLU changed the final test error by {change:+.2f} points "
        f"(95% CI {interval}, Welch p = {difference.p_value:.3g}): {reading}."
    )
