"""Strategies of the JAX and PyTorch backends, shaped like tf.distribute's.

On the TensorFlow backend a training run is spread by a
`tf.distribute.Strategy` (`keras_eraserelu.training.strategies`). On JAX it
is spread by `keras.distribution.DataParallel` over a mesh of the local
devices (Keras shards each batch and replicates the weights); PyTorch trains
on one device: Keras 3.15.1 has no `keras.distribution` for the torch
backend (`keras.distribution.list_devices()` fails there). A
`BackendStrategy` holds that choice with the few members `train` reads from
a tf.distribute strategy: `scope()`, `num_replicas_in_sync`, and a
description.

Several JAX processes (one per host, or several on one host) train one
model when Keras' variables say so, the same on every process but for the
id: `KERAS_DISTRIBUTION_JOB_ADDRESSES` (the coordinator's "host:port", or
every process's, comma-separated, the coordinator first),
`KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`
(`eraserelu train --coordinator-address --num-processes --process-id` sets
them). `make_backend_strategy` then joins them once
(`keras_eraserelu.training.processes`), and "auto" and "data_parallel" are a
DataParallel over the devices of every process (`BatchShareDataParallel`):
every process reads the same pipeline of global batches and feeds its own
contiguous part of each (`keras_eraserelu.training.batch_shares`), so the
processes train on the batches one process would. Process 0 is the
chief (`keras_eraserelu.training.cluster.is_chief`).

| backend | strategy names | "auto" |
|---|---|---|
| tensorflow | auto, cpu, gpu, mirrored, multiworker, tpu | `make_strategy` |
| jax | auto, cpu, data_parallel | DataParallel when several devices or processes |
| torch | auto, cpu | Keras' device (a GPU when there is one) |

Example:

```python
# KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2
strategy = make_backend_strategy("auto")
strategy.num_replicas_in_sync  # 2
with strategy.scope():         # build, compile and fit in it
    model = create_model("cifar_resnet8")
```
"""

from __future__ import annotations

import contextlib
import dataclasses

import keras

from keras_eraserelu.training.batch_shares import BatchShareDataParallel, ShareBatches
from keras_eraserelu.training.processes import (
    PROCESS_VARIABLES,
    PROCESSES_VARIABLE,
    initialize_processes,
    read_process_settings,
)

BACKEND_STRATEGY_CHOICES = {
    "tensorflow": ("auto", "cpu", "gpu", "mirrored", "multiworker", "tpu"),
    "jax": ("auto", "cpu", "data_parallel"),
    "torch": ("auto", "cpu"),
}


@dataclasses.dataclass(frozen=True)
class BackendStrategy:
    """How a run on the JAX or PyTorch backend spreads over devices.

    Attributes:
        name: str. "DataParallel" or "OneDevice".
        backend: str. "jax" or "torch".
        platform: str. "cpu", "gpu" or "tpu".
        devices: tuple of str. Keras device names ("cpu:0", ...).
        distribution: a `keras.distribution.Distribution` or None.
        device: str or None. The device to pin to (`keras.device`), or None
            for the backend's default.
        process_id: int. This process's index among `num_processes`.
        num_processes: int. Processes training together (JAX).
    """

    name: str
    backend: str
    platform: str
    devices: tuple
    distribution: object = None
    device: str | None = None
    process_id: int = 0
    num_processes: int = 1

    @property
    def num_replicas_in_sync(self):
        """Devices a batch is split over (1 without a distribution)."""
        return len(self.devices) if self.distribution is not None else 1

    def scope(self):
        """The context to build, compile and fit the model in."""
        if self.distribution is not None:
            return self.distribution.scope()
        if self.device is not None:
            return keras.device(self.device)
        return contextlib.nullcontext()

    def feed(self, data):
        """`data` as this process gives it to `fit`: a tf.data pipeline of
        global batches as it is (`BatchShareDataParallel.distribute_dataset`
        cuts it), a `keras.utils.PyDataset` of global batches wrapped in
        `ShareBatches` under a `BatchShareDataParallel`.

        Example:

        ```python
        model.fit(strategy.feed(batches), ...)  # batches: a PyDataset
        ```
        """
        distribution = self.distribution
        if not isinstance(distribution, BatchShareDataParallel) or not isinstance(
            data, keras.utils.PyDataset
        ):
            return data
        distribution.auto_shard_dataset = False  # the batches come cut
        return ShareBatches(data, *distribution.share())

    def describe(self):
        """A JSON-ready dict, with the keys of `describe_strategy`."""
        return {
            "strategy": self.name,
            "replicas": self.num_replicas_in_sync,
            "workers": self.num_processes,
            "is_chief": self.process_id == 0,
            "devices": list(self.devices),
            "backend": self.backend,
        }


def make_backend_strategy(name="auto", backend=None):
    """The `BackendStrategy` named `name` on the JAX or PyTorch backend.

    On JAX, when Keras' process variables announce several processes
    (`read_process_settings`), this process first joins them
    (`initialize_processes`), and "auto" and "data_parallel" span the
    devices of all of them.

    Args:
        name: str. One of `BACKEND_STRATEGY_CHOICES[backend]`.
        backend: str or None. Defaults to Keras' backend.

    Returns:
        A `BackendStrategy`.

    Raises:
        TypeError: if `name` is not a str.
        ValueError: if `name` is not a strategy of this backend (the message
            lists what each backend offers), if the process variables are
            wrong, or "cpu" is asked of several processes.
        RuntimeError: if JAX computed something before it joined.

    Example:

    ```python
    make_backend_strategy("cpu").describe()["strategy"]  # 'OneDevice'
    ```
    """
    backend = backend or keras.backend.backend()
    check_backend_strategy(name, backend)
    if backend == "jax":
        return _jax_strategy(name)
    return _torch_strategy(name)


def check_backend_strategy(name, backend=None):
    """Raises unless `name` is a strategy the backend offers."""
    backend = backend or keras.backend.backend()
    if not isinstance(name, str):
        raise TypeError(
            "`strategy` must be a str (one of "
            f"{list(BACKEND_STRATEGY_CHOICES.get(backend, ()))}) or a strategy "
            f"object. Received: strategy={name!r} of type {type(name).__name__}."
        )
    choices = BACKEND_STRATEGY_CHOICES.get(backend)
    if choices is None or name not in choices:
        raise ValueError(
            f"strategy={name!r} is not available on the {backend} backend "
            f"(KERAS_BACKEND={backend}). {offers()}"
        )
    return name


def offers():
    """One sentence listing the strategy names of every backend."""
    listed = "; ".join(
        f"{backend}: {', '.join(names)}"
        for backend, names in BACKEND_STRATEGY_CHOICES.items()
    )
    return f"Strategies by backend: {listed}."


def as_backend_strategy(strategy, backend=None):
    """A given strategy object for a run on JAX or PyTorch: a
    `BackendStrategy` as is, a `keras.distribution.Distribution` (JAX)
    wrapped in one.

    Raises:
        TypeError: for anything else (e.g. a tf.distribute strategy).
    """
    backend = backend or keras.backend.backend()
    if isinstance(strategy, BackendStrategy):
        return strategy
    distribution_class = getattr(keras.distribution, "Distribution", None)
    if backend == "jax" and isinstance(strategy, distribution_class):
        import jax

        devices = tuple(str(d) for d in strategy.device_mesh.devices.flatten())
        return BackendStrategy(
            type(strategy).__name__, "jax", backend_platform(), devices, strategy,
            process_id=jax.process_index(), num_processes=jax.process_count(),
        )  # fmt: skip
    raise TypeError(
        f"On the {backend} backend `strategy` is a name or a "
        "keras.distribution.Distribution (JAX); a tf.distribute strategy runs on "
        f"the tensorflow backend only. {offers()} Received: strategy={strategy!r}."
    )


def backend_platform(backend=None):
    """ "cpu", "gpu" or "tpu": what Keras computes on by default."""
    backend = backend or keras.backend.backend()
    if backend == "jax":
        import jax

        platform = jax.devices()[0].platform
        return "gpu" if platform in ("gpu", "cuda", "rocm") else platform
    if backend == "torch":
        kind = keras.ops.convert_to_tensor(0.0).device.type
        return "gpu" if kind == "cuda" else "cpu"
    raise ValueError(f"backend_platform is for jax and torch. Received: {backend!r}.")


def _jax_strategy(name):
    import jax

    settings = read_process_settings()
    if settings is not None and name == "cpu":
        raise ValueError(
            f"strategy='cpu' trains on this process's CPU alone, but "
            f"{PROCESSES_VARIABLE}={settings.num_processes} asks for several "
            "processes training one model. Use 'auto' or 'data_parallel', or "
            f"unset {', '.join(PROCESS_VARIABLES)}."
        )
    if name == "cpu":
        return BackendStrategy("OneDevice", "jax", "cpu", ("cpu:0",), device="cpu:0")
    if settings is not None:
        initialize_processes(settings)
    devices = tuple(keras.distribution.list_devices())
    several = jax.process_count() > 1 or len(jax.local_devices()) > 1
    if name == "data_parallel" or several:
        distribution = BatchShareDataParallel(devices=list(devices))
        return BackendStrategy(
            "DataParallel", "jax", backend_platform("jax"), devices, distribution,
            process_id=jax.process_index(), num_processes=jax.process_count(),
        )  # fmt: skip
    return BackendStrategy("OneDevice", "jax", backend_platform("jax"), devices[:1])


def _torch_strategy(name):
    if name == "cpu":
        return BackendStrategy("OneDevice", "torch", "cpu", ("cpu",), device="cpu")
    device = str(keras.ops.convert_to_tensor(0.0).device)
    return BackendStrategy("OneDevice", "torch", backend_platform("torch"), (device,))
