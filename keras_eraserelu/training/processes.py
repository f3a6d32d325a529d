"""Several JAX processes training one model: Keras' variables, checked,
and joining them (`keras.distribution.initialize`) once.

Every process gets the same variables but for its id:
`KERAS_DISTRIBUTION_JOB_ADDRESSES` (the coordinator's "host:port", or every
process's, comma-separated, the coordinator first),
`KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`
(`eraserelu train --coordinator-address --num-processes --process-id` sets
them). Process 0 is the chief.

Example:

```python
settings = read_process_settings()   # None for a single process
if settings is not None:
    initialize_processes(settings)
process_position()                   # (process id, number of processes)
```
"""

from __future__ import annotations

import dataclasses
import os
import re

import keras

# Keras' own variables for several processes (keras.distribution.initialize).
ADDRESSES_VARIABLE = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
PROCESSES_VARIABLE = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_VARIABLE = "KERAS_DISTRIBUTION_PROCESS_ID"
PROCESS_VARIABLES = (ADDRESSES_VARIABLE, PROCESSES_VARIABLE, PROCESS_ID_VARIABLE)
PROCESSES_EXAMPLE = (
    f"{ADDRESSES_VARIABLE}=host0:1234 {PROCESSES_VARIABLE}=2 {PROCESS_ID_VARIABLE}=0"
)


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
