"""A fix that lets `model.fit` run under `MultiWorkerMirroredStrategy`, and
under `MirroredStrategy` when a first batch splits unevenly over replicas.

Keras 3 (checked up to 3.15.1, TensorFlow backend) fails on the first step
of `fit` when the model was built under a multi-worker
`tf.distribute.MultiWorkerMirroredStrategy`, with
`ValueError: Attempt to convert a value (PerReplica:{...}) with an
unsupported type`. Upstream reports: keras-team/keras#20585 and #20329.
Two places in `keras/src/backend/tensorflow/trainer.py` are at fault:

1. `TensorFlowTrainer._maybe_symbolic_build` takes the first distributed
   batch and "reduces" it with `strategy.reduce("MEAN", batch, axis=None)`
   only to learn its shapes and dtypes. Under a multi-worker strategy that
   is a collective all-reduce of a nested structure, which the collective
   ops cannot convert. The fix takes each tensor's first local value
   instead (`strategy.experimental_local_results(v)[0]`): it has the same
   per-replica shape and dtype, and needs no communication. The same
   reduction fails under a one-worker `MirroredStrategy` when the first
   batch of an evaluation splits unevenly over the replicas (a validation
   set of 10 images, 8 per replica: `AddN` of shapes [8, ...] and [2, ...]),
   so the fix applies to every strategy of more than one replica.
2. `reduce_per_replica` reduces the step's outputs (loss and metric values,
   usually scalars) with `strategy.reduce("MEAN", v, axis=0)` in
   multi-worker mode; a scalar has no axis 0. The fix uses `axis=None`,
   the element-wise mean over replicas, which is what the single-worker
   branch of the same function computes
   (`tf.reduce_mean(local_results, axis=0)`).

`patch_multiworker_fit()` wraps exactly these two functions; every other
case (no strategy or one replica, a one-worker strategy's reduction of
outputs, TPU, `predict`'s concatenation) goes to the original code
unchanged. It switches itself off when the installed
Keras is newer than the newest release known to be broken
(`LAST_KNOWN_BROKEN`), and each half also checks that the faulty call is
still in the installed source, so a Keras that fixed one half only gets
the other.

Example:

```python
from keras_eraserelu.core import tensorflow as tf
from keras_eraserelu.training.compat import patch_multiworker_fit

strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
patch_multiworker_fit()  # True on Keras <= 3.15.x
with strategy.scope():
    model = ...  # build and compile, then model.fit(...) as usual
```
"""

from __future__ import annotations

import functools
import inspect
import re

import keras

# The newest Keras release on which `fit` under MultiWorkerMirroredStrategy was
# seen failing (3.15.1). Raise it when a newer Keras still fails the two-worker
# test in tests/test_distribute.py.
LAST_KNOWN_BROKEN = (3, 15)

_PATCHED = "_keras_eraserelu_multiworker_fix"

# The faulty calls, compared with all whitespace removed.
_BUILD_BUG = 'distribute_strategy.reduce("MEAN",maybe_distributed_data_batch'
_REDUCE_BUG = 'strategy.reduce("MEAN",v,axis=0)'


def keras_version():
    """The installed Keras version as a tuple of ints, e.g. `(3, 15, 1)`."""
    return tuple(int(part) for part in re.findall(r"\d+", keras.version())[:3])


def needs_multiworker_fix(version=None):
    """Whether this Keras is one whose `fit` fails under multi-worker training.

    Args:
        version: tuple of ints or None. The Keras version to judge; None reads
            the installed one. Defaults to None.

    Returns:
        True when the backend is TensorFlow, the version is at most
        `LAST_KNOWN_BROKEN` and at least one faulty call is in the source.
    """
    version = keras_version() if version is None else tuple(version)
    if keras.backend.backend() != "tensorflow":
        return False
    if version[:2] > LAST_KNOWN_BROKEN:
        return False
    trainer = _trainer_module()
    build, reduce = _targets(trainer)
    return _has_bug(build, _BUILD_BUG) or _has_bug(reduce, _REDUCE_BUG)


def patch_multiworker_fit(version=None):
    """Makes `model.fit` work under `MultiWorkerMirroredStrategy`.

    Wraps `TensorFlowTrainer._maybe_symbolic_build` and `reduce_per_replica`
    in Keras' TensorFlow trainer as the module docstring explains. Call it
    once, before the first `fit`; calling it again does nothing.

    Args:
        version: tuple of ints or None. Passed to `needs_multiworker_fix`
            (tests use it to pretend a fixed Keras). Defaults to None.

    Returns:
        True when this call patched Keras, False when the installed Keras
        needs no fix or was patched before.

    Example:

    ```python
    if patch_multiworker_fit():
        print("patched Keras for multi-worker fit")
    ```
    """
    if not needs_multiworker_fix(version):
        return False
    trainer = _trainer_module()
    build, reduce = _targets(trainer)
    patched = False
    if not getattr(build, _PATCHED, False) and _has_bug(build, _BUILD_BUG):
        trainer.TensorFlowTrainer._maybe_symbolic_build = _local_symbolic_build(
            build, trainer
        )
        patched = True
    if not getattr(reduce, _PATCHED, False) and _has_bug(reduce, _REDUCE_BUG):
        trainer.reduce_per_replica = _scalar_safe_reduce(reduce, trainer)
        patched = True
    return patched


def is_patched():
    """Whether `patch_multiworker_fit` has wrapped Keras in this process."""
    build, reduce = _targets(_trainer_module())
    return getattr(build, _PATCHED, False) or getattr(reduce, _PATCHED, False)


def _trainer_module():
    from keras.src.backend.tensorflow import trainer

    return trainer


def _targets(trainer):
    """The two functions the fix wraps (None where this Keras lacks one)."""
    return (
        getattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build", None),
        getattr(trainer, "reduce_per_replica", None),
    )


def _has_bug(function, bug):
    if function is None:
        return False
    function = inspect.unwrap(function)
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return bug in re.sub(r"\s+", "", source)


def _local_symbolic_build(original, trainer):
    """`_maybe_symbolic_build` that reads shapes from local values."""

    @functools.wraps(original)
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if (
            iterator is not None
            and strategy is not None
            and strategy.num_replicas_in_sync > 1
        ):
            for _, _, it in iterator:
                data_batch = keras.tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0], next(it)
                )
                break
            iterator = None
        return original(self, iterator=iterator, data_batch=data_batch)

    setattr(_maybe_symbolic_build, _PATCHED, True)
    return _maybe_symbolic_build


def _scalar_safe_reduce(original, trainer):
    """`reduce_per_replica` whose multi-worker mean is over replicas only."""

    @functools.wraps(original)
    def reduce_per_replica(values, strategy, reduction):
        is_mean = reduction == "mean" or (
            reduction == "auto" and not trainer._is_tpu_strategy(strategy)
        )
        if is_mean and trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values
            )
        return original(values, strategy, reduction)

    setattr(reduce_per_replica, _PATCHED, True)
    return reduce_per_replica
