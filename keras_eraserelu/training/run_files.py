"""The files of a training run directory, written atomically.

`DIR/history.json` holds the run's configuration, versions, replicas and one
record per finished epoch, rewritten (through a temporary file and
`os.replace`) at every epoch end: a run killed at any moment leaves either
the previous file or the new one, never half of one. Epoch records are keyed
by epoch, so an epoch redone after a crash replaces its record instead of
adding a second one. `EpochCheckpoint` keeps model and optimizer state in
`DIR/backup/` the same crash-safe way, for `restore_checkpoint` to resume.

Example:

```python
writer = HistoryWriter("runs/r1/history.json", config={"model": "cifar_resnet20"})
model.fit(..., callbacks=[writer])
read_history("runs/r1/history.json")["epochs"][-1]["val_accuracy"]
```
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile

import keras

HISTORY_FILE = "history.json"
MODEL_FILE = "model.keras"
CHECKPOINT_DIR = "backup"
CHECKPOINT_STATE = "state.json"
TENSORBOARD_DIR = "tensorboard"
MIN_FREE_BYTES = 64 * 2**20  # below this a run would die at its first checkpoint


class DamagedRunFileError(ValueError):
    """A file of a run directory cannot be read: it names the file and the way
    out."""

    def __init__(self, path, problem):
        super().__init__(
            f"{path} is damaged ({problem}). Delete it to redo the epochs it "
            "recorded, or start the run over with --restart (`restart=True`)."
        )
        self.path = path


def check_output_dir(out):
    """Raises a ValueError naming `out` if a run could not write there.

    Checked before any data is loaded or model built: `out` must be a
    directory or not exist yet, its nearest existing folder must be writable,
    and its disk must have at least `MIN_FREE_BYTES` free.

    Example:

    ```python
    check_output_dir("runs/r20")   # None, or a ValueError saying why not
    ```
    """
    path = os.path.abspath(os.fspath(out))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"The output directory {out!r} is an existing file, not a directory. "
            "Choose a directory path (it is created if missing)."
        )
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(
            f"The output directory {out!r} cannot be created: {existing!r} is a "
            "file, not a directory."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(
            f"The output directory {out!r} is not writable: no permission to "
            f"write in {existing!r}. Choose another directory."
        )
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise ValueError(
            f"No space left for the output directory {out!r}: {free / 2**20:.1f} "
            f"MiB free on the disk of {existing!r}, at least "
            f"{MIN_FREE_BYTES // 2**20} MiB needed. Free some space or choose "
            "another disk."
        )


def check_same_run(directory, stored, expected, *, what="run", way_out):
    """Raises a ValueError when the settings a directory's files record
    (`stored`) differ from this run's (`expected`) in any of its keys.

    The message names both values of each differing key, then `way_out`.

    Example:

    ```python
    check_same_run("runs/r", {"seed": 0}, {"seed": 1}, way_out="Choose another.")
    # ValueError: 'runs/r' holds another run (seed=0); this one has seed=1. ...
    ```
    """
    different = [key for key in expected if stored.get(key) != expected[key]]
    if different:
        theirs = ", ".join(f"{k}={stored.get(k)!r}" for k in different)
        ours = ", ".join(f"{k}={expected[k]!r}" for k in different)
        raise ValueError(
            f"{os.fspath(directory)!r} holds another {what} ({theirs}); this one "
            f"has {ours}. {way_out}"
        )


def clear_run(directory):
    """Removes a run's own files (history, checkpoint, model, TensorBoard logs)
    from `directory`, for a run started over; other files stay."""
    for name in (HISTORY_FILE, MODEL_FILE):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            os.remove(path)
    for name in (CHECKPOINT_DIR, TENSORBOARD_DIR):
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def read_json(path):
    """The content of a JSON file of a run, or None when it does not exist.

    Raises:
        DamagedRunFileError: when the file is not valid JSON (e.g. truncated).
    """
    if not os.path.exists(path):
        return None
    try:
        with open(path) as stream:
            return json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DamagedRunFileError(path, f"not valid JSON: {error}") from None


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file and `os.replace`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it owner-only
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save_model(model, path):
    """Saves a `.keras` file through a temporary file and `os.replace`."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves model and optimizer state after every epoch, crash-safe.

    Each epoch's weights go to a new file (`backup/epoch-<n>.weights.h5`);
    only once it is complete does `backup/state.json` (written atomically)
    point to it, and older files are removed. A process killed at any moment
    leaves a state that points to a complete file. Keras' own
    `BackupAndRestore` writes its weights file in place, so a kill during the
    write leaves a file that cannot be loaded.

    Args:
        directory: str. The run directory (the files go to its `backup/`).
        enabled: bool. False on non-chief workers: nothing is written.
    """

    def __init__(self, directory, enabled=True):
        super().__init__()
        self.directory = os.path.join(directory, CHECKPOINT_DIR)
        self.enabled = enabled

    def on_epoch_end(self, epoch, logs=None):
        if not self.enabled:
            return
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epoch + 1}.weights.h5"
        self.model.save_weights(os.path.join(self.directory, name))
        state = {
            "epoch": epoch + 1,
            "weights": name,
            "seed_states": [v.numpy().tolist() for v in _seed_states(self.model)],
        }
        atomic_write_text(
            os.path.join(self.directory, CHECKPOINT_STATE), json.dumps(state)
        )
        for old in os.listdir(self.directory):
            if old.endswith(".weights.h5") and old != name:
                os.remove(os.path.join(self.directory, old))


def checkpoint_epoch(directory):
    """The number of finished epochs the checkpoint of a run holds (0: none).

    Raises:
        DamagedRunFileError: when `backup/state.json` cannot be read.
    """
    return _checkpoint_state(directory)["epoch"]


def restore_checkpoint(model, directory):
    """Loads the last complete checkpoint of a run into a compiled `model`:
    weights, optimizer state and the state of every random seed generator
    (dropout), so that the run continues as if it had never stopped.

    Returns:
        The number of finished epochs it holds (0 when there is none), to pass
        to `fit(initial_epoch=...)`.

    Raises:
        DamagedRunFileError: when the state or the weights file is damaged.
    """
    state = _checkpoint_state(directory)
    if not state["epoch"]:
        return 0
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    path = os.path.join(directory, CHECKPOINT_DIR, state["weights"])
    try:
        model.load_weights(path)
    except (OSError, ValueError, KeyError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DamagedRunFileError(path, f"cannot be loaded: {reason}") from None
    seeds = _seed_states(model)
    stored = state.get("seed_states", [])
    if len(stored) == len(seeds):
        for variable, value in zip(seeds, stored):
            variable.assign(value)
    return state["epoch"]


def _checkpoint_state(directory):
    state_path = os.path.join(directory, CHECKPOINT_DIR, CHECKPOINT_STATE)
    state = read_json(state_path)
    if state is None:
        return {"epoch": 0}
    if not (
        isinstance(state, dict)
        and isinstance(state.get("epoch"), int)
        and isinstance(state.get("weights"), str)
    ):
        raise DamagedRunFileError(state_path, "expected 'epoch' and 'weights'")
    return state


def _seed_states(model):
    """The state variables of the model's random seed generators (dropout...),
    which `save_weights` leaves out."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def clear_checkpoint(directory):
    """Removes a finished run's checkpoint files."""
    folder = os.path.join(directory, CHECKPOINT_DIR)
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)


def read_history(path):
    """The content of a `history.json`, or None when there is none.

    Raises:
        DamagedRunFileError: when the file is not a run's history.
    """
    content = read_json(path)
    if content is not None and not (
        isinstance(content, dict) and isinstance(content.get("epochs"), list)
    ):
        raise DamagedRunFileError(path, "expected a run's 'config' and 'epochs'")
    return content


def versions():
    """Versions of the package and of the stack it ran on: Keras, its backend
    and the backend's library, TensorFlow (when installed), Python."""
    import importlib

    from keras_eraserelu.version import __version__

    found = {
        "keras_eraserelu": __version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }
    for name in dict.fromkeys(("tensorflow", keras.backend.backend())):
        try:
            found[name] = importlib.import_module(name).__version__
        except ImportError:
            pass
    found["python"] = platform.python_version()
    return found


class HistoryWriter(keras.callbacks.Callback):
    """Rewrites `history.json` atomically at every epoch end.

    Args:
        path: str. The `history.json` to write.
        config: dict. The run's configuration (JSON-ready).
        extra: dict. Other fields (replicas, versions, ...).
        previous: dict or None. The file's content from an interrupted run,
            whose finished epochs are kept.
        enabled: bool. False on non-chief workers: nothing is written.
    """

    def __init__(self, path, config, extra=None, previous=None, enabled=True):
        super().__init__()
        self.path = path
        self.enabled = enabled
        self.content = {"config": config, **(extra or {}), "completed": False}
        self.records = {r["epoch"]: r for r in (previous or {}).get("epochs", [])}

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch}
        for key, value in (logs or {}).items():
            record[key] = _plain(value)
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and "learning_rate" not in record:
            record["learning_rate"] = _plain(optimizer.learning_rate)
        self.records = {e: r for e, r in self.records.items() if e < epoch}
        self.records[epoch] = record
        self.write()

    def write(self, completed=False):
        self.content["completed"] = completed
        self.content["epochs"] = [self.records[e] for e in sorted(self.records)]
        if self.enabled:
            atomic_write_text(self.path, json.dumps(self.content, indent=2))
        return self.content


def _plain(value):
    """A JSON-ready float (NaN and infinities as strings) from a log value."""
    try:
        number = float(keras.ops.convert_to_numpy(value))
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else str(number)
