"""Which task this process is in a multi-worker run, and where it may write.

In a multi-worker run every worker runs the same program; only the chief
writes the run directory, and `writable_dir` hands the other workers a
temporary directory that is removed afterwards, so they leave nothing to
clean up.

A multi-worker cluster is described by the `TF_CONFIG` environment variable,
the same on every worker except for `task`:

```
TF_CONFIG='{"cluster": {"worker": ["host0:2222", "host1:2222"]},
            "task": {"type": "worker", "index": 0}}'
```

`read_tf_config` checks it; `is_chief` and `worker_count` read it, or the
cluster resolver of a strategy. Several JAX processes are described by
Keras' variables instead (`KERAS_DISTRIBUTION_NUM_PROCESSES`,
`KERAS_DISTRIBUTION_PROCESS_ID`, read by
`keras_eraserelu.training.processes`): there process 0 is the chief, and
they take precedence over TF_CONFIG. The strategies themselves are in
`keras_eraserelu.training.strategies`.

Example:

```python
read_tf_config()["task"]  # {'type': 'worker', 'index': 0}
worker_count(strategy)    # 2
with writable_dir("runs/exp1", strategy) as out_dir:
    model.fit(...)
    model.save(os.path.join(out_dir, "model.keras"))
```
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile

import keras

from keras_eraserelu.core import did_you_mean, is_int
from keras_eraserelu.core import tensorflow as tf
from keras_eraserelu.training.distribution import BackendStrategy
from keras_eraserelu.training.processes import process_position

# The jobs whose tasks train (a cluster may also hold e.g. an "evaluator").
TRAINING_JOBS = ("chief", "worker")
# A TF_CONFIG for error messages: two workers, this one worker 0.
TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host0:2222", "host1:2222"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def read_tf_config():
    """Reads and checks the TF_CONFIG environment variable.

    Returns:
        The parsed dict with a "cluster" of jobs (lists of "host:port") and a
        "task" whose "type" is a job of the cluster and whose "index" is in
        range, or None when TF_CONFIG is unset or empty.

    Raises:
        ValueError: naming the faulty field, when TF_CONFIG is not JSON or
            does not describe this task inside its cluster.

    Example:

    ```python
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": ["localhost:12345", "localhost:23456"]},
        "task": {"type": "worker", "index": 1}})
    read_tf_config()["task"]  # {'type': 'worker', 'index': 1}
    ```
    """
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"TF_CONFIG is not valid JSON ({error.msg} at character {error.pos}). "
            f"Expected an object such as {TF_CONFIG_EXAMPLE}. "
            f"Received: TF_CONFIG={raw!r}."
        ) from None
    if not isinstance(config, dict):
        raise ValueError(
            f"TF_CONFIG must be a JSON object such as {TF_CONFIG_EXAMPLE}. "
            f"Received: TF_CONFIG={raw!r}."
        )
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError(
            "TF_CONFIG['cluster'] must map job names to lists of 'host:port' "
            f"addresses, e.g. {TF_CONFIG_EXAMPLE}. Received: cluster={cluster!r}."
        )
    for job, tasks in cluster.items():
        if not isinstance(tasks, list) or not all(
            isinstance(address, str) and ":" in address for address in tasks
        ):
            raise ValueError(
                f"TF_CONFIG['cluster'][{job!r}] must be a list of 'host:port' "
                f"strings. Received: {tasks!r}."
            )
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(
            "TF_CONFIG['task'] must say which task this process is, e.g. "
            f'{{"type": "worker", "index": 0}}. Received: task={task!r}.'
        )
    task_type, index = task["type"], task["index"]
    if task_type not in cluster:
        raise ValueError(
            f"TF_CONFIG['task']['type']={task_type!r} is not a job of "
            f"TF_CONFIG['cluster'], whose jobs are {list(cluster)}."
            f"{did_you_mean(task_type, list(cluster))}"
        )
    count = len(cluster[task_type])
    if not is_int(index) or not 0 <= index < count:
        raise ValueError(
            f"TF_CONFIG['task']['index']={index!r} is not a task of job "
            f"{task_type!r}, which has {count} task(s): expected an int from 0 to "
            f"{count - 1}. Received: TF_CONFIG={raw!r}."
        )
    return config


def is_chief(strategy=None):
    """Whether this process is the one that writes files.

    The chief is the "chief" task, or worker 0 when the cluster has no chief;
    among several JAX processes, process 0. A process without TF_CONFIG or
    Keras' process variables, or driving TPUs, is the chief.

    Args:
        strategy: `tf.distribute.Strategy`, `BackendStrategy`,
            `keras.distribution.Distribution` or None. Read its cluster
            resolver or processes when it has them, else Keras' process
            variables (JAX), else TF_CONFIG. Defaults to None.

    Returns:
        bool.
    """
    task_type, task_id, jobs = _task(strategy)
    if task_type is None:
        return True
    if "chief" in jobs:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


def worker_count(strategy=None):
    """Number of training processes (chief and workers, or JAX processes);
    1 without TF_CONFIG or Keras' process variables.

    Args:
        strategy: as in `is_chief`. Defaults to None.

    Returns:
        int.
    """
    _, _, jobs = _task(strategy)
    return max(1, sum(jobs.get(job, 0) for job in TRAINING_JOBS))


@contextlib.contextmanager
def writable_dir(out_dir, strategy=None):
    """Context manager: the directory this worker may write its outputs to.

    The chief gets `out_dir` (created if needed). Other workers get a fresh
    temporary directory, removed when the block ends, so code that saves
    checkpoints or logs can run the same on every worker.

    Args:
        out_dir: str or path. The run directory.
        strategy: `tf.distribute.Strategy` or None. See `is_chief`.
            Defaults to None.

    Yields:
        str, the directory to write to.

    Example:

    ```python
    with writable_dir("runs/exp1", strategy) as out_dir:
        model.save(os.path.join(out_dir, "model.keras"))
    ```
    """
    if is_chief(strategy):
        os.makedirs(out_dir, exist_ok=True)
        yield os.fspath(out_dir)
        return
    temp_dir = tempfile.mkdtemp(prefix="keras_eraserelu_worker_")
    try:
        yield temp_dir
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def chief_or_temp_dir(out_dir, strategy=None):
    """`out_dir` on the chief; elsewhere a temporary directory removed at exit.

    The plain-function form of `writable_dir`, for code that cannot wrap its
    work in a `with` block.

    Args:
        out_dir: str or path. The run directory.
        strategy: `tf.distribute.Strategy` or None. See `is_chief`.
            Defaults to None.

    Returns:
        str, the directory to write to.
    """
    if is_chief(strategy):
        os.makedirs(out_dir, exist_ok=True)
        return os.fspath(out_dir)
    temp_dir = tempfile.mkdtemp(prefix="keras_eraserelu_worker_")
    atexit.register(shutil.rmtree, temp_dir, ignore_errors=True)
    return temp_dir


def _task(strategy):
    """(task_type, task_id, {job: number of tasks}) of this process."""
    processes = _jax_processes(strategy)
    if processes is not None:
        process_id, count = processes
        return "worker", process_id, {"worker": count}
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and isinstance(
        resolver, tf.distribute.cluster_resolver.TPUClusterResolver
    ):
        return None, None, {}
    if resolver is not None and resolver.task_type is not None:
        jobs = resolver.cluster_spec().as_dict()
        return (
            resolver.task_type,
            resolver.task_id,
            {job: len(tasks) for job, tasks in jobs.items()},
        )
    config = read_tf_config()
    if config is None:
        return None, None, {}
    jobs = {job: len(tasks) for job, tasks in config["cluster"].items()}
    return config["task"]["type"], config["task"]["index"], jobs


def _jax_processes(strategy):
    """(process id, process count) when `strategy` is a JAX one, or none is
    given and Keras' variables announce several processes; else None."""
    if isinstance(strategy, BackendStrategy):
        return strategy.process_id, strategy.num_processes
    distribution = getattr(keras.distribution, "Distribution", None)
    given = distribution is not None and isinstance(strategy, distribution)
    if strategy is not None and not given:
        return None
    process_id, count = process_position()
    return (process_id, count) if given or count > 1 else None
