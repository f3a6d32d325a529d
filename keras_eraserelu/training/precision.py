"""Mixed precision and XLA choices that follow the device a strategy uses.

`"auto"` picks what is fast and safe on the strategy's device:

| device | precision "auto" | jit_compile "auto" |
|---|---|---|
| GPU, one replica | mixed_float16 | True |
| GPU, several replicas | mixed_float16 | False |
| TPU | mixed_bfloat16 | False (TPUStrategy compiles with XLA itself) |
| CPU | float32 | False |

On the JAX backend `jit_compile` "auto" is True everywhere: Keras' JAX
trainer compiles the step with XLA (`jax.jit`), and without it runs every op
eagerly, many times slower. On PyTorch "auto" is False (True means
`torch.compile`, which Keras marks experimental). Precision "auto" follows
the device of the backend's strategy (a `BackendStrategy`) by the same table.

Why not more on a CPU: bfloat16 is fast only on CPUs with bfloat16
instructions (AVX512_BF16 or AMX); on others it is emulated and slower, and
float16 on a CPU is emulated too. So a CPU trains in float32 unless the
caller asks for "mixed_bfloat16", and asking for a 16-bit policy where it is
likely slow gives a warning. Keras itself turns XLA off under `tf.distribute`
and on CPU-only machines, and so does "auto" here; pass True to override.

Measured with `model.fit` for cifar_resnet8 on 1,024 random 32x32 images,
batch 128 (one epoch timed, then three more), on the project's shared 2-core
AVX512_BF16 machine, 2-3 runs each under load, so only ratios mean anything:

| policy, XLA | first epoch (with tracing) | later epochs |
|---|---|---|
| float32 | 3-8 s | 460-580 img/s |
| float32, XLA | 11-15 s | 130-420 img/s |
| mixed_bfloat16 | 4-6 s | 480-800 img/s |
| mixed_float16 | 14-24 s | 60-75 img/s |

cifar_resnet56 at batch 128 (`benchmarks/bench_vs_pytorch.py`, same
machine, alternating rounds in one process): XLA warmed up in 56 s instead
of 27 s and then trained at 0.32x the rate without it (33 against 105
img/s); mixed_bfloat16 trained about 1.4x faster than float32.

Example:

```python
strategy = make_strategy("auto")
apply_precision("auto", strategy)            # before building the model
model.compile(..., jit_compile=resolve_jit_compile("auto", strategy))
```
"""

from __future__ import annotations

import warnings

import keras

from keras_eraserelu.core import check_choice
from keras_eraserelu.core import tensorflow as tf
from keras_eraserelu.training.strategies import strategy_platform

# "bfloat16" / "float16" policies (variables in 16 bits too) are left out on
# purpose: SGD updates of 16-bit weights lose most of their digits.
PRECISION_CHOICES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")

_AUTO_PRECISION = {"gpu": "mixed_float16", "tpu": "mixed_bfloat16", "cpu": "float32"}
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_precision(precision="auto", strategy=None):
    """The Keras dtype policy name for `precision` on `strategy`'s device.

    Args:
        precision: str. One of `PRECISION_CHOICES`; "auto" gives
            mixed_float16 on a GPU, mixed_bfloat16 on a TPU and float32 on
            a CPU. Defaults to "auto".
        strategy: `tf.distribute.Strategy` or None (the current one).
            Defaults to None.

    Returns:
        str, a policy name for `keras.config.set_dtype_policy`.

    Raises:
        TypeError: if `precision` is not a str.
        ValueError: if `precision` is unknown.

    Example:

    ```python
    resolve_precision("auto", make_strategy("cpu"))  # 'float32'
    ```
    """
    check_choice("precision", precision, PRECISION_CHOICES)
    platform = strategy_platform(strategy)
    if precision == "auto":
        return _AUTO_PRECISION[platform]
    if platform == "cpu" and precision != "float32":
        _warn_slow_cpu_precision(precision)
    return precision


def apply_precision(precision="auto", strategy=None):
    """Sets Keras' global dtype policy from `precision`; returns its name.

    Call it before building the model: layers take the policy that is global
    when they are created.

    Args:
        precision: str. See `resolve_precision`. Defaults to "auto".
        strategy: `tf.distribute.Strategy` or None. Defaults to None.

    Returns:
        str, the policy name now set.

    Example:

    ```python
    apply_precision("mixed_bfloat16")
    keras.config.dtype_policy().name  # 'mixed_bfloat16'
    ```
    """
    name = resolve_precision(precision, strategy)
    keras.config.set_dtype_policy(name)
    return name


def resolve_jit_compile(jit_compile="auto", strategy=None):
    """Whether to compile the train step with XLA on `strategy`'s device.

    On TensorFlow, "auto" is True on a single GPU only. False on a CPU,
    where XLA made the first epoch several seconds longer and the later ones
    no faster
    (cifar_resnet8) or about 3x slower (cifar_resnet56; see the module
    docstring). False under several replicas, as in Keras' own
    "auto", and on a TPU, where `TPUStrategy` compiles every step with XLA
    anyway. On JAX "auto" is True, on PyTorch False (module docstring).

    Args:
        jit_compile: bool or "auto". Defaults to "auto".
        strategy: `tf.distribute.Strategy` or None (the current one).
            Defaults to None.

    Returns:
        bool, the value for `model.compile(jit_compile=...)`.

    Raises:
        ValueError: if `jit_compile` is neither a bool nor "auto".

    Example:

    ```python
    resolve_jit_compile("auto", make_strategy("cpu"))  # False
    ```
    """
    if isinstance(jit_compile, bool):
        return jit_compile
    if jit_compile != "auto":
        raise ValueError(
            "`jit_compile` must be True, False or 'auto'. "
            f"Received: jit_compile={jit_compile!r}."
        )
    backend = keras.backend.backend()
    if backend != "tensorflow":
        return backend == "jax"
    strategy = strategy or tf.distribute.get_strategy()
    platform = strategy_platform(strategy)
    return platform == "gpu" and strategy.num_replicas_in_sync == 1


def cpu_has_bfloat16():
    """Whether this CPU has bfloat16 instructions (Linux only; else False)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:
        return False
    return any(flag in flags for flag in _BF16_CPU_FLAGS)


def _warn_slow_cpu_precision(precision):
    if precision == "mixed_bfloat16" and cpu_has_bfloat16():
        return
    reason = (
        "float16 arithmetic is emulated on CPUs"
        if precision == "mixed_float16"
        else "this CPU has no bfloat16 instructions (AVX512_BF16 or AMX)"
    )
    warnings.warn(
        f"precision={precision!r} on a CPU is likely slower than float32: "
        f"{reason}. Use 'float32' or 'auto' for CPU training.",
        stacklevel=3,
    )
