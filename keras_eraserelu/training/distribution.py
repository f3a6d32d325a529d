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
them). `make_backend_strategy` then calls `keras.distribution.initialize`
once, and "auto" and "data_parallel" are a DataParallel over the devices of
every process (`BatchShareDataParallel`): every process reads the same
pipeline of global batches and feeds its own contiguous part of each, so
the processes train on the batches one process would. Process 0 is the
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
import os
import re

import keras

BACKEND_STRATEGY_CHOICES = {
    "tensorflow": ("auto", "cpu", "gpu", "mirrored", "multiworker", "tpu"),
    "jax": ("auto", "cpu", "data_parallel"),
    "torch": ("auto", "cpu"),
}
# Keras' own variables for several processes (keras.distribution.initialize).
ADDRESSES_VARIABLE = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
PROCESSES_VARIABLE = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_VARIABLE = "KERAS_DISTRIBUTION_PROCESS_ID"
PROCESS_VARIABLES = (ADDRESSES_VARIABLE, PROCESSES_VARIABLE, PROCESS_ID_VARIABLE)
PROCESSES_EXAMPLE = (
    f"{ADDRESSES_VARIABLE}=host0:1234 {PROCESSES_VARIABLE}=2 {PROCESS_ID_VARIABLE}=0"
)


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


class BatchShareDataParallel(keras.distribution.DataParallel):
    """`keras.distribution.DataParallel` that splits each global batch in
    place: process i takes the i-th of its equal contiguous parts.

    Keras' own split of a tf.data pipeline over processes (`rebatch` to the
    per-process batch, then `shard`) moves examples across batches: a test
    set whose last batch is smaller than the global batch then gives the
    processes different numbers of batches, and the one with more waits
    for the others forever. Here every global batch stays what one process
    would train on, so the runs are the same; a batch that does not split
    over the devices (a test set's last one) leaves out its last
    `rows % devices` rows, saying so, instead of failing to shard.

    Args:
        devices: list of Keras device names, of every process.

    Example:

    ```python
    distribution = BatchShareDataParallel(devices=keras.distribution.list_devices())
    ```
    """

    def __init__(self, devices):
        # `distribute_dataset` cuts tf.data pipelines whatever the flag; it
        # stays on so that Keras refuses any other data not cut for this
        # process (`BackendStrategy.feed` turns it off as it cuts them).
        super().__init__(devices=devices)

    def distribute_dataset(self, dataset):
        """This process's share of every batch of a tf.data pipeline."""
        from keras_eraserelu.core import tensorflow_loaded

        tf = tensorflow_loaded()  # without it, nothing is a tf.data.Dataset
        if tf is None or not isinstance(dataset, tf.data.Dataset):
            return dataset
        return share_batches(dataset, *self.share())

    def share(self):
        """(process id, process count, device count): this process's share."""
        import jax

        return jax.process_index(), jax.process_count(), self.device_mesh.devices.size


def batch_share(rows, process_id, num_processes, num_devices):
    """(start, stop): the rows of a global batch of `rows` that process
    `process_id` feeds, the rows past the last multiple of `num_devices`
    left out. Works on Python ints and on tensors.

    Example:

    ```python
    batch_share(16, 1, 2, 2)  # (8, 16)
    batch_share(5, 0, 2, 2)   # (0, 2): the fifth row is left out
    ```
    """
    each = (rows - rows % num_devices) // num_processes
    return process_id * each, (process_id + 1) * each


def share_batches(dataset, process_id, num_processes, num_devices):
    """`dataset` (batched, tf.data) cut to this process's `batch_share` of
    each batch; a batch left with no rows is dropped, and a cut one said on
    standard error."""
    import sys

    from keras_eraserelu.core import tensorflow as tf

    def share(*element):
        rows = tf.shape(tf.nest.flatten(element)[0])[0]
        start, stop = batch_share(rows, process_id, num_processes, num_devices)
        left_out = rows % num_devices
        tf.cond(left_out > 0, lambda: _say_left_out(tf, sys, rows, left_out,
                num_devices), lambda: tf.constant(False))  # fmt: skip
        part = tf.nest.map_structure(lambda value: value[start:stop], element)
        return part if len(part) > 1 else part[0]

    def not_empty(*element):
        return tf.shape(tf.nest.flatten(element)[0])[0] > 0

    return dataset.map(share).filter(not_empty)


class ShareBatches(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` of global batches cut to one process's
    `batch_share` of each, as `share_batches` cuts a tf.data pipeline.

    Args:
        batches: `keras.utils.PyDataset`. Gives global batches.
        process_id, num_processes, num_devices: as in `batch_share`.

    Example:

    ```python
    ShareBatches(batches, 1, 2, 2)[0]  # rows 8 to 16 of batches[0] (16 rows)
    ```
    """

    def __init__(self, batches, process_id, num_processes, num_devices):
        super().__init__(
            workers=batches.workers,
            use_multiprocessing=batches.use_multiprocessing,
            max_queue_size=batches.max_queue_size,
        )
        self.batches = batches
        self.share = (process_id, num_processes, num_devices)

    @property
    def num_batches(self):
        return self.batches.num_batches

    def __getitem__(self, index):
        batch = self.batches[index]
        rows = len(keras.tree.flatten(batch)[0])
        start, stop = batch_share(rows, *self.share)
        return keras.tree.map_structure(lambda value: value[start:stop], batch)

    def on_epoch_begin(self):
        self.batches.on_epoch_begin()

    def on_epoch_end(self):
        self.batches.on_epoch_end()


def _say_left_out(tf, sys, rows, left_out, num_devices):
    tf.print(
        "keras_eraserelu: a batch of", rows, "examples does not split over",
        num_devices, "devices; left out: its last", left_out,
        output_stream=sys.stderr,
    )  # fmt: skip
    return tf.constant(True)


@dataclasses.dataclass(frozen=True)
class ProcessSettings:
    """Where this process stands among several JAX processes.

    Attributes:
        coordinator: str. "host:port" of process 0, which the others join.
        num_processes: int. Processes training together (>= 2).
        process_id: int. This process, from 0 (the chief) to
            `num_processes - 1`.
    """

    coordinator: str
    num_processes: int
    process_id: int


def read_process_settings(environ=None):
    """The multi-process settings in Keras' variables, checked.

    Reads `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `..._NUM_PROCESSES` and
    `..._PROCESS_ID` (what `keras.distribution.initialize` reads). A single
    process (none of them set, or NUM_PROCESSES=1) gives None.

    Args:
        environ: mapping or None. Defaults to `os.environ`.

    Returns:
        A `ProcessSettings`, or None for a single process.

    Raises:
        ValueError: naming the variable, when one is missing, not an int,
            out of range, or the addresses are not "host:port".

    Example:

    ```python
    read_process_settings({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "h0:1234",
                           "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                           "KERAS_DISTRIBUTION_PROCESS_ID": "1"}).process_id  # 1
    ```
    """
    environ = os.environ if environ is None else environ
    given = {name: environ.get(name, "").strip() for name in PROCESS_VARIABLES}
    if not any(given.values()):
        return None
    if given[PROCESSES_VARIABLE] and _int_variable(given, PROCESSES_VARIABLE, 1) == 1:
        _int_variable(given, PROCESS_ID_VARIABLE, 0, 0)  # a lone process is 0
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ValueError(
            f"Several JAX processes need all of {', '.join(PROCESS_VARIABLES)}; "
            f"missing here: {', '.join(missing)}. Set them on every process, e.g. "
            f"{PROCESSES_EXAMPLE} (with this process's id)."
        )
    count = _int_variable(given, PROCESSES_VARIABLE, 2)
    process_id = _int_variable(given, PROCESS_ID_VARIABLE, 0, count - 1)
    return ProcessSettings(_coordinator(given[ADDRESSES_VARIABLE], count),
                           count, process_id)  # fmt: skip


def initialize_processes(settings):
    """Joins the processes of `settings` (`keras.distribution.initialize`),
    once per process; a second call with the same settings does nothing.

    On CPU, JAX's collectives across processes go through gloo, which this
    turns on when the installed JAX does not by default.

    Args:
        settings: a `ProcessSettings`.

    Raises:
        RuntimeError: when JAX computed something before (it can no longer
            join), or joined other processes than `settings` says.
    """
    import jax

    if jax.distributed.is_initialized():
        _check_joined(settings)
        return
    if jax.config.jax_cpu_collectives_implementation is None:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        keras.distribution.initialize(
            settings.coordinator, settings.num_processes, settings.process_id
        )
    except RuntimeError as error:
        raise RuntimeError(
            f"Cannot join {settings.num_processes} JAX processes as process "
            f"{settings.process_id} ({error}). JAX must not have computed "
            "anything in this process before: create the strategy (or call "
            "train) first."
        ) from error


def process_position(environ=None):
    """(process id, number of processes) of this JAX process: JAX's own
    once the processes joined, else what Keras' variables announce; (0, 1)
    for a single process or another backend.

    Example:

    ```python
    process_position()  # (1, 2) on the second of two processes
    ```
    """
    if keras.backend.backend() != "jax":
        return 0, 1
    import jax

    if jax.distributed.is_initialized():
        return jax.process_index(), jax.process_count()
    settings = read_process_settings(environ)
    if settings is None:
        return 0, 1
    return settings.process_id, settings.num_processes


def _check_joined(settings):
    import jax

    joined = (jax.process_index(), jax.process_count())
    if joined != (settings.process_id, settings.num_processes):
        raise RuntimeError(
            f"This process joined {joined[1]} JAX processes as process {joined[0]}, "
            f"but {PROCESSES_VARIABLE}={settings.num_processes} and "
            f"{PROCESS_ID_VARIABLE}={settings.process_id}. A process joins once: "
            "start a new one for other settings."
        )


def _int_variable(given, name, minimum, maximum=None):
    text = given[name] or str(minimum)  # an unset id of a single process: 0
    expected = f"an int >= {minimum}" if maximum is None else (
        f"an int from {minimum} to {maximum}"
    )  # fmt: skip
    if not re.fullmatch(r"\d+", text) or not (
        minimum <= int(text) <= (maximum if maximum is not None else int(text))
    ):
        raise ValueError(
            f"{name} must be {expected}. Received: {name}={given[name]!r}."
        )
    return int(text)


def _coordinator(addresses, count):
    """The coordinator's "host:port": the first of the addresses given."""
    listed = [part.strip() for part in addresses.split(",")]
    if not all(re.fullmatch(r"[^\s,]+:\d+", part) for part in listed):
        raise ValueError(
            f"{ADDRESSES_VARIABLE} must be the coordinator's host:port (or every "
            f"process's, comma-separated, the coordinator first), e.g. "
            f"10.0.0.1:1234. Received: {ADDRESSES_VARIABLE}={addresses!r}."
        )
    if len(listed) > 1 and len(listed) != count:
        raise ValueError(
            f"{ADDRESSES_VARIABLE} lists {len(listed)} addresses but "
            f"{PROCESSES_VARIABLE}={count}: give one address per process, or "
            "the coordinator's alone."
        )
    return listed[0]
