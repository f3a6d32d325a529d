"""Callbacks that erase gradually and watch what erasure does inside a network.

- `ProgressiveErase` moves every `ErasableReLU`'s alpha from 0 (ReLU) to 1
  (identity) over a window of epochs, logging `alpha`.
- `ActivationStats` logs, per ReLU site, the fraction of dead units
  (`dead/<site>`) and of zero outputs (`zero/<site>`) on a probe batch.
- `GradientStats` logs, per layer, the mean and variance over an epoch's steps
  of the training gradient's norm (`grad_mean/<layer>`, `grad_var/<layer>`).

Their values land in `model.fit`'s History and, when these callbacks come
before `keras.callbacks.TensorBoard` in the list, in TensorBoard. On the
console, `keras_eraserelu.training.progress.LayerStatsProgbar` shows each per-layer
family as its mean (`train` uses it).

Example:

```python
model.fit(x, y, epochs=10, callbacks=[
    ProgressiveErase(start_epoch=2, end_epoch=6),
    ActivationStats(x[:256]),
    GradientStats(every=10),
    keras.callbacks.TensorBoard("logs"),
])
```
"""

from __future__ import annotations

import math
import sys
import warnings

import keras
import numpy as np
from keras import ops

from keras_eraserelu.core import check_choice, erasable_layers, find_relus

SCHEDULES = ("linear", "cosine")
PER_CHOICES = ("epoch", "step")


class ProgressiveErase(keras.callbacks.Callback):
    """Anneals every `ErasableReLU` of the model from ReLU to identity.

    alpha is 0 until `start_epoch`, rises to 1 at `end_epoch` (linearly or on
    a half cosine), and stays 1 afterwards. Epochs count from 0, as in `fit`.

    Args:
        start_epoch: int. First epoch of the window (alpha 0 at its start).
        end_epoch: int. Epoch at whose start alpha reaches 1.
        schedule: str. `"linear"` or `"cosine"`. Defaults to `"linear"`.
        per: str. `"epoch"` updates alpha at each epoch's start, `"step"` at
            each step. Defaults to `"epoch"`.

    Example:

    ```python
    model = make_erasable(model)
    model.fit(ds, epochs=10, callbacks=[ProgressiveErase(2, 6, per="step")])
    model = finalize_erasure(model)
    ```
    """

    def __init__(self, start_epoch, end_epoch, schedule="linear", per="epoch"):
        super().__init__()
        check_choice("schedule", schedule, SCHEDULES)
        check_choice("per", per, PER_CHOICES)
        if not (isinstance(start_epoch, int) and start_epoch >= 0):
            raise ValueError(
                f"`start_epoch` must be an int >= 0. Received: {start_epoch!r}."
            )
        if not isinstance(end_epoch, int) or end_epoch <= start_epoch:
            raise ValueError(
                "The erasure window must end after it starts: expected an int "
                f"end_epoch > start_epoch={start_epoch}. Received: "
                f"end_epoch={end_epoch!r}."
            )
        self.start_epoch, self.end_epoch = start_epoch, end_epoch
        self.schedule, self.per = schedule, per
        self._layers = []
        self._epoch = 0
        self.alpha = 0.0

    def alpha_at(self, epoch):
        """alpha at a (fractional) epoch."""
        fraction = (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch)
        fraction = min(max(fraction, 0.0), 1.0)
        if self.schedule == "cosine":
            return 0.5 * (1.0 - math.cos(math.pi * fraction))
        return fraction

    def on_train_begin(self, logs=None):
        self._layers = erasable_layers(self.model)
        if not self._layers:
            raise ValueError(
                f"ProgressiveErase found no ErasableReLU layer in model "
                f"'{self.model.name}'. Create them first with `make_erasable(model)`."
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._set(self.alpha_at(epoch))

    def on_train_batch_begin(self, batch, logs=None):
        steps = self.params.get("steps") if self.params else None
        if self.per == "step" and steps:
            self._set(self.alpha_at(self._epoch + batch / steps))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["alpha"] = self.alpha

    def _set(self, alpha):
        if self._layers and float(alpha) == self.alpha:
            return
        self.alpha = float(alpha)
        # On JAX `self.model` puts the state of the steps run so far back
        # into the variables, so that the next step reads this alpha.
        _ = self.model
        for layer in self._layers:
            layer.alpha.assign(self.alpha)


class ActivationStats(keras.callbacks.Callback):
    """Logs, per ReLU site, dead units and zero outputs on a probe batch.

    A unit is a channel (the last axis); it is dead when it is never positive
    anywhere in the probe batch. Sites inside nested models are not watched.

    Args:
        probe_data: array, `(x, y)` tuple, `tf.data.Dataset` or
            `keras.utils.PyDataset` (its first batch is used): the inputs
            to probe.
        every: int. Log every `every` epochs (and at the last). Defaults to 1.

    Example:

    ```python
    stats = ActivationStats(x_test[:256])
    history = model.fit(x, y, epochs=5, callbacks=[stats])
    history.history["dead/stage1_block1_out"]
    ```
    """

    #: The prefixes of its logs, one value per site after the "/".
    LOG_FAMILIES = ("dead", "zero")

    def __init__(self, probe_data, every=1):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be an int >= 1. Received: {every!r}.")
        self.probe = _first_inputs(probe_data)
        self.every = every
        self._probe_model = None
        self._measure = None
        self._names = []

    def on_train_begin(self, logs=None):
        sites = [s for s in find_relus(self.model) if s.kind != "linear"]
        top = [s for s in sites if s.path == s.name]
        if len(top) < len(sites):
            warnings.warn(
                f"ActivationStats watches the top-level graph only; "
                f"{len(sites) - len(top)} sites inside nested models are not watched.",
                stacklevel=2,
            )
        if not top:
            raise ValueError(
                f"ActivationStats found no ReLU site in model '{self.model.name}'."
            )
        outputs = [self.model.get_layer(s.name).output for s in top]
        self._probe_model = keras.Model(self.model.input, outputs)
        self._measure = None
        self._names = [s.name for s in top]

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if logs is None or (epoch % self.every and not last):
            return
        logs.update(self.measure())

    def measure(self):
        """`{"dead/<site>": fraction, "zero/<site>": fraction}` on the probe."""
        if self._measure is None:
            self._measure = _compiled(self._fractions)
        dead, zero = self._measure(self.probe)
        dead, zero = ops.convert_to_numpy(dead), ops.convert_to_numpy(zero)
        stats = {}
        for name, d, z in zip(self._names, dead, zero):
            stats[f"dead/{name}"] = float(d)
            stats[f"zero/{name}"] = float(z)
        return stats

    def _fractions(self, probe):
        # Reduced in the graph: only two scalars per site leave it.
        outputs = self._probe_model(probe, training=False)
        if len(self._names) == 1:
            outputs = [outputs]
        dead, zero = [], []
        for output in outputs:
            output = ops.cast(output, "float32")
            channels = ops.reshape(output, (-1, output.shape[-1]))
            dead.append(ops.mean(ops.cast(ops.max(channels, 0) <= 0, "float32")))
            zero.append(ops.mean(ops.cast(ops.equal(output, 0.0), "float32")))
        return ops.stack(dead), ops.stack(zero)


class GradientStats(keras.callbacks.Callback):
    """Logs, per layer, the mean and variance over an epoch of gradient norms.

    The norms are those of the training gradients themselves, taken where the
    optimizer receives them, every `every` steps: the norm of the gradient of
    the batch loss (per replica under a distribution strategy, averaged over
    replicas), unscaled from the loss scale under mixed precision.

    Args:
        every: int. Record every `every` steps. Defaults to 10.

    Example:

    ```python
    history = model.fit(x, y, epochs=3, callbacks=[GradientStats(every=5)])
    history.history["grad_mean/fc1"], history.history["grad_var/fc1"]
    ```
    """

    #: The prefixes of its logs, one value per layer after the "/".
    LOG_FAMILIES = ("grad_mean", "grad_var")

    def __init__(self, every=10):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be an int >= 1. Received: {every!r}.")
        self.every = every
        self._layers = []
        self._patched = None

    def on_train_begin(self, logs=None):
        model = self.model
        variables = model.trainable_variables
        self._layers = sorted({_layer_of(v) for v in variables}, key=_order(variables))
        self._segment = [self._layers.index(_layer_of(v)) for v in variables]
        if keras.backend.backend() == "tensorflow":
            self._begin_tensorflow(model)
        else:
            self._begin_backend(model)
        model.make_train_function(force=True)

    def _begin_tensorflow(self, model):
        """Running sums in variables, updated inside the tf.function step."""
        import tensorflow as tf

        optimizer = model.optimizer
        self._segment = tf.constant(self._segment)
        self._replicas = float(model.distribute_strategy.num_replicas_in_sync)
        count = len(self._layers)
        with model.distribute_strategy.scope():
            self._sum = _accumulator(np.zeros(count), "grad_norm_sum")
            self._sumsq = _accumulator(np.zeros(count), "grad_norm_sumsq")
            self._count = _accumulator(0.0, "grad_norm_count")
        original = optimizer.apply_gradients
        record = self._record

        def apply_gradients(grads_and_vars, *args, **kwargs):
            grads_and_vars = list(grads_and_vars)
            record([g for g, _ in grads_and_vars])
            return original(grads_and_vars, *args, **kwargs)

        optimizer.apply_gradients = apply_gradients
        self._patched = [(optimizer, "apply_gradients")]

    def _begin_backend(self, model):
        """JAX and PyTorch: the step returns the norms in its logs (`apply` of
        the optimizer that gets the unscaled gradients computes them), and
        the sums are kept here, in NumPy."""
        optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
        if keras.backend.backend() == "jax" and optimizer is not model.optimizer:
            raise ValueError(
                "GradientStats on the JAX backend does not support a loss-scaled "
                "optimizer (precision 'mixed_float16'): the gradients are unscaled "
                "inside a conditional branch. Use 'mixed_bfloat16' or 'float32', "
                "or the tensorflow or torch backend."
            )
        count = len(self._layers)
        self._host = [np.zeros(count), np.zeros(count), 0]
        self._step = int(ops.convert_to_numpy(model.optimizer.iterations))
        self._pending = None
        groups = [
            [i for i, s in enumerate(self._segment) if s == layer]
            for layer in range(count)
        ]
        original_apply, original_step = optimizer.apply, model.train_step

        def apply(grads, trainable_variables=None):
            grads = list(grads)
            squares = [
                ops.sum(ops.square(ops.cast(g, "float32"))) if g is not None else 0.0
                for g in grads
            ]
            self._pending = ops.sqrt(
                ops.stack([sum(squares[i] for i in group) for group in groups])
            )
            return original_apply(grads, trainable_variables)

        def train_step(*args, **kwargs):
            result = original_step(*args, **kwargs)
            norms, self._pending = self._pending, None
            if isinstance(result, tuple):  # JAX: (logs, state)
                return {**result[0], _NORMS_LOG: norms}, *result[1:]
            return {**result, _NORMS_LOG: norms}

        optimizer.apply, model.train_step = apply, train_step
        self._patched = [(optimizer, "apply"), (model, "train_step")]

    def on_train_batch_end(self, batch, logs=None):
        norms = logs.pop(_NORMS_LOG, None) if logs else None
        if norms is None or keras.backend.backend() == "tensorflow":
            return
        if self._step % self.every == 0:
            norms = np.asarray(norms, "float64")
            self._host[0] += norms
            self._host[1] += norms**2
            self._host[2] += 1
        self._step += 1

    def _record(self, gradients):
        """Adds this step's per-layer norms to the sums, every `every` steps.

        Runs inside the train step, before the optimizer applies `gradients`.
        """
        import tensorflow as tf

        optimizer = self.model.optimizer
        squares = tf.stack(
            [tf.reduce_sum(tf.square(tf.cast(g, "float32"))) for g in gradients]
        )
        norms = tf.sqrt(
            tf.math.unsorted_segment_sum(squares, self._segment, len(self._layers))
        )
        norms = norms * self._replicas
        scale = getattr(optimizer, "dynamic_scale", None)
        if scale is not None:
            norms = norms / tf.cast(scale, "float32")
        record = tf.equal(tf.math.floormod(optimizer.iterations, self.every), 0)
        weight = tf.cast(record, "float32")
        self._sum.assign_add(norms * weight)
        self._sumsq.assign_add(tf.square(norms) * weight)
        self._count.assign_add(weight)

    def on_epoch_begin(self, epoch, logs=None):
        if keras.backend.backend() != "tensorflow":
            self._host = [np.zeros(len(self._layers)), np.zeros(len(self._layers)), 0]
            return
        for variable in (self._sum, self._sumsq):
            variable.assign(np.zeros(variable.shape, "float32"))
        self._count.assign(0.0)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.pop(_NORMS_LOG, None)  # JAX and torch: the last step's norms
        if keras.backend.backend() == "tensorflow":
            sums = self._sum.numpy(), self._sumsq.numpy(), float(self._count.numpy())
        else:
            sums = self._host
        total, squares, count = sums
        if logs is None or count == 0:
            return
        mean = total / count
        variance = np.maximum(squares / count - mean**2, 0.0)
        for name, m, v in zip(self._layers, mean, variance):
            logs[f"grad_mean/{name}"] = float(m)
            logs[f"grad_var/{name}"] = float(v)

    def on_train_end(self, logs=None):
        if self._patched:
            for owner, attribute in self._patched:
                delattr(owner, attribute)
            self._patched = None
            self.model.make_train_function(force=True)


# The log key under which the JAX and torch train steps hand the norms over.
_NORMS_LOG = "_gradient_stats_norms"


def _compiled(function):
    """`function` as a tf.function on TensorFlow; as is elsewhere (JAX runs
    it op by op, PyTorch without recording gradients)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if backend == "torch":
        import torch

        return torch.no_grad()(function)
    return function


def _accumulator(initial, name):
    """A float32 running sum, averaged over replicas when read."""
    return keras.Variable(
        initial, trainable=False, dtype="float32", aggregation="mean", name=name
    )


def _layer_of(variable):
    return variable.path.rsplit("/", 1)[0]


def _order(variables):
    first = {}
    for i, v in enumerate(variables):
        first.setdefault(_layer_of(v), i)
    return first.get


def _first_inputs(probe_data):
    tf = sys.modules.get("tensorflow")  # not loaded: no tf.data.Dataset either
    if tf is not None and isinstance(probe_data, tf.data.Dataset):
        probe_data = next(iter(probe_data))
    elif isinstance(probe_data, keras.utils.PyDataset):
        probe_data = probe_data[0]
    if isinstance(probe_data, tuple):
        probe_data = probe_data[0]
    return probe_data
