"""tf.distribute strategies by name, and what they are made of.

`make_strategy(name)` builds the strategy a training run uses, from one CPU
to many machines; `describe_strategy` reports it as a JSON-ready dict, and
`per_replica_batch_size` splits a global batch over its replicas. Which task
this process is in a multi-worker run (`TF_CONFIG`, `is_chief`) and where it
may write (`writable_dir`) is in `keras_eraserelu.training.cluster`.

Create the strategy before anything else touches TensorFlow: a
`MultiWorkerMirroredStrategy` cannot be created once the TensorFlow runtime
has started.

Example:

```python
strategy = make_strategy("auto")
print(describe_strategy(strategy))
batch = per_replica_batch_size(256, strategy)
with strategy.scope():
    model = create_model("cifar_resnet20")
    model.compile(...)
with writable_dir("runs/exp1", strategy) as out_dir:
    model.fit(...)
    model.save(os.path.join(out_dir, "model.keras"))
```
"""

from __future__ import annotations

import glob
import logging
import os
import warnings

import keras

from keras_eraserelu.core import check_choice, check_int
from keras_eraserelu.core import tensorflow as tf
from keras_eraserelu.training.cluster import (
    TF_CONFIG_EXAMPLE,
    TRAINING_JOBS,
    is_chief,
    read_tf_config,
    worker_count,
)
from keras_eraserelu.training.distribution import (
    BackendStrategy,
    backend_platform,
    make_backend_strategy,
    offers,
)

STRATEGY_CHOICES = ("auto", "cpu", "gpu", "mirrored", "multiworker", "tpu")

# Environment hints that a TPU may be reachable; without one, "auto" does not
# try a TPU resolver (which may wait on a metadata server).
_TPU_ENV_HINTS = ("TPU_NAME", "COLAB_TPU_ADDR", "TPU_ACCELERATOR_TYPE")
_PUBLIC_STRATEGIES = (
    "TPUStrategy",
    "MultiWorkerMirroredStrategy",
    "MirroredStrategy",
    "OneDeviceStrategy",
)

_logger = logging.getLogger(__name__)


def make_strategy(name="auto", *, tpu=None):
    """Builds a `tf.distribute.Strategy` by name.

    - `"cpu"`: `OneDeviceStrategy("/cpu:0")`.
    - `"gpu"`: `OneDeviceStrategy("/gpu:0")`.
    - `"mirrored"`: `MirroredStrategy` over all local GPUs, or over the
      logical CPU devices when there is no GPU.
    - `"multiworker"`: `MultiWorkerMirroredStrategy` from `TF_CONFIG`, which
      is checked first; also applies `compat.patch_multiworker_fit` so that
      `model.fit` works on Keras versions that fail there.
    - `"tpu"`: `TPUStrategy` on the TPU named by `tpu`.
    - `"auto"`: a TPU when a TPU is hinted at (`tpu=` given, or one of the
      environment variables TPU_NAME, COLAB_TPU_ADDR, TPU_ACCELERATOR_TYPE, or
      a `/dev/accel*` device) and its resolver works; else
      `MultiWorkerMirroredStrategy` when TF_CONFIG names several training
      workers; else `MirroredStrategy` when there are several GPUs; else the
      default strategy (one device, the GPU if there is one).

    On the JAX and PyTorch backends it returns a `BackendStrategy` instead
    (`keras_eraserelu.training.distribution`): on JAX "auto" and
    "data_parallel" are `keras.distribution.DataParallel` over the devices
    of every process (several processes when Keras' KERAS_DISTRIBUTION_*
    variables say so; "auto" only when there are several devices), "cpu"
    one CPU device; on
    PyTorch "auto" is Keras' device and "cpu" the CPU. A name the backend
    does not offer raises at once, listing what each backend offers.

    Args:
        name: str. One of `STRATEGY_CHOICES` on TensorFlow, of
            `BACKEND_STRATEGY_CHOICES[backend]` elsewhere. Defaults to "auto".
        tpu: str or None. TPU name or address for `TPUClusterResolver`
            ("local" on a TPU VM). Defaults to None.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        TypeError: if `name` is not a str.
        ValueError: if `name` is unknown, TF_CONFIG is missing or wrong for
            "multiworker", or the GPU or TPU asked for is not there.

    Example:

    ```python
    strategy = make_strategy("mirrored")
    strategy.num_replicas_in_sync  # number of GPUs, or of logical CPUs
    ```
    """
    if keras.backend.backend() != "tensorflow":
        return make_backend_strategy(name)
    if isinstance(name, str) and name not in STRATEGY_CHOICES:
        check_choice("strategy", name, STRATEGY_CHOICES + ("data_parallel",))
        raise ValueError(
            f"strategy={name!r} is not available on the tensorflow backend. {offers()}"
        )
    check_choice("strategy", name, STRATEGY_CHOICES)
    if name == "auto":
        return _auto_strategy(tpu)
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "gpu":
        if not tf.config.list_physical_devices("GPU"):
            raise ValueError(
                "make_strategy('gpu') needs a GPU, but TensorFlow sees none. "
                f"Devices found: {_physical_device_names()}. Use 'cpu', "
                "'mirrored' or 'auto' on this machine."
            )
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    if name == "mirrored":
        return _mirrored_strategy()
    if name == "multiworker":
        return _multiworker_strategy()
    return _tpu_strategy(tpu)


def describe_strategy(strategy):
    """A JSON-ready summary of `strategy`.

    Args:
        strategy: a `tf.distribute.Strategy` or a `BackendStrategy`.

    Returns:
        dict with "strategy" (class name), "replicas", "workers", "is_chief"
        and "devices" (device names of this worker); a `BackendStrategy`
        adds "backend".

    Example:

    ```python
    describe_strategy(make_strategy("cpu"))
    # {'strategy': 'OneDeviceStrategy', 'replicas': 1, 'workers': 1,
    #  'is_chief': True, 'devices': ['/job:localhost/replica:0/task:0/device:CPU:0']}
    ```
    """
    if isinstance(strategy, BackendStrategy):
        return strategy.describe()
    return {
        "strategy": strategy_name(strategy),
        "replicas": int(strategy.num_replicas_in_sync),
        "workers": worker_count(strategy),
        "is_chief": is_chief(strategy),
        "devices": _worker_devices(strategy),
    }


def strategy_name(strategy):
    """The public class name of `strategy`, e.g. "MultiWorkerMirroredStrategy".

    (`tf.distribute.MultiWorkerMirroredStrategy` is implemented by a class
    named CollectiveAllReduceStrategy; the default strategy is "DefaultStrategy".)
    A `BackendStrategy` gives its own name ("DataParallel", "OneDevice").
    """
    if isinstance(strategy, BackendStrategy):
        return strategy.name
    for name in _PUBLIC_STRATEGIES:
        if isinstance(strategy, getattr(tf.distribute, name)):
            return name
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return "DefaultStrategy"
    return type(strategy).__name__


def strategy_platform(strategy=None):
    """ "tpu", "gpu" or "cpu": the kind of device `strategy` computes on.

    Args:
        strategy: `tf.distribute.Strategy`, `BackendStrategy` or None (the
            current strategy; on JAX and PyTorch, Keras' default device).
            Defaults to None.

    Returns:
        str.
    """
    if isinstance(strategy, BackendStrategy):
        return strategy.platform
    if strategy is None and keras.backend.backend() != "tensorflow":
        return backend_platform()
    strategy = strategy or tf.distribute.get_strategy()
    if any(c.__name__.startswith("TPUStrategy") for c in type(strategy).__mro__):
        return "tpu"
    devices = " ".join(_worker_devices(strategy)).upper()
    return "gpu" if "GPU" in devices else "cpu"


def per_replica_batch_size(global_batch_size, strategy):
    """The batch size each replica gets from a global batch.

    Args:
        global_batch_size: int. Examples per step over all replicas.
        strategy: a `tf.distribute.Strategy` (read: `num_replicas_in_sync`).

    Returns:
        int, `global_batch_size // strategy.num_replicas_in_sync`.

    Raises:
        TypeError: if `global_batch_size` is not an int.
        ValueError: if it is not positive or not divisible by the replicas;
            the message suggests the nearest valid sizes.

    Example:

    ```python
    per_replica_batch_size(128, strategy)  # 64 with 2 replicas
    ```
    """
    global_batch_size = check_int("global_batch_size", global_batch_size, minimum=1)
    replicas = int(strategy.num_replicas_in_sync)
    if global_batch_size % replicas:
        below = global_batch_size // replicas * replicas
        nearest = [size for size in (below, below + replicas) if size > 0]
        raise ValueError(
            f"The global batch size {global_batch_size} is not divisible by the "
            f"{replicas} replicas of {strategy_name(strategy)}; each replica must "
            f"get the same number of examples. Nearest valid global batch sizes: "
            f"{' or '.join(str(size) for size in nearest)}."
        )
    return global_batch_size // replicas


def _auto_strategy(tpu):
    hinted = tpu is not None or any(os.environ.get(v) for v in _TPU_ENV_HINTS)
    if hinted or glob.glob("/dev/accel*"):
        try:
            return _tpu_strategy(tpu)
        except ValueError as error:
            _logger.info("make_strategy('auto'): no TPU (%s)", error)
    config = read_tf_config()
    if config is not None and worker_count() > 1:
        return _multiworker_strategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _mirrored_strategy():
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    hint = (
        " Split the CPU with tf.config.set_logical_device_configuration "
        "before TensorFlow starts to get several replicas."
        if len(devices) == 1
        else ""
    )
    warnings.warn(
        f"make_strategy('mirrored'): no GPU found; mirroring over the "
        f"{len(devices)} logical CPU device(s) {devices}.{hint}",
        stacklevel=3,
    )
    return tf.distribute.MirroredStrategy(devices)


def _multiworker_strategy():
    from keras_eraserelu.training.compat import patch_multiworker_fit

    config = read_tf_config()
    if config is None:
        raise ValueError(
            "make_strategy('multiworker') needs the TF_CONFIG environment "
            "variable, which is not set. Set it on every worker, e.g. "
            f"TF_CONFIG='{TF_CONFIG_EXAMPLE}' (with this worker's index), or "
            "use 'auto' or 'mirrored' on one machine."
        )
    task_type = config["task"]["type"]
    if task_type not in TRAINING_JOBS:
        raise ValueError(
            f"TF_CONFIG['task']['type']={task_type!r} does not train: "
            f"MultiWorkerMirroredStrategy runs on tasks of type "
            f"{list(TRAINING_JOBS)} only."
        )
    patch_multiworker_fit()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tpu_strategy(tpu):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as error:  # The resolver raises many types when no TPU.
        raise ValueError(
            f"make_strategy('tpu'): no TPU reachable with tpu={tpu!r} "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200]}). "
            "Pass tpu='local' on a TPU VM or the TPU's name or grpc:// address, "
            f"or use 'auto'. Devices found: {_physical_device_names()}."
        ) from error
    return tf.distribute.TPUStrategy(resolver)


def _worker_devices(strategy):
    try:
        return [str(device) for device in strategy.extended.worker_devices]
    except RuntimeError:  # The default strategy runs on TensorFlow's default device.
        kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
        return [f"/job:localhost/replica:0/task:0/device:{kind}:0"]


def _physical_device_names():
    return [device.name for device in tf.config.list_physical_devices()]
