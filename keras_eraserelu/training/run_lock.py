"""One process per run directory: an advisory lock that names its holder.

`train`, `compare` and `tune_placements` hold `DIR/.eraserelu.lock` while
they work in `DIR`. A second process on the same directory stops at once
with a `RunLockedError` that says who holds it (pid, host, start time,
command). The lock is the operating system's (`fcntl.flock` on the open
file), so it is released when its holder ends in any way, SIGKILL included.
A clean release removes the file (and the directory, when the holder created
it and wrote nothing there); a killed holder leaves its details in it, and
the next process takes the lock over, saying so.

POSIX only (Linux, macOS). On a file system shared between machines (NFS),
`flock` is honoured by most modern servers; in a multi-worker run only the
chief takes the lock.

Example:

```python
with RunLock("runs/r20"):
    ...   # train, write files; another process gets RunLockedError
```
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import sys
import time

LOCK_FILE = ".eraserelu.lock"
_DETAILS_WAIT_S = 1.0  # a holder writes its details right after locking


class RunLockedError(ValueError):
    """Another process holds the run directory."""


class RunLock:
    """Context manager: hold the lock of a run directory (created if needed).

    Args:
        directory: str or path. The run directory.
        purpose: str. What the holder does there ("train", "compare", ...),
            recorded for whoever meets the lock. Defaults to "train".
        name: str. The lock file's name in `directory`. Defaults to
            `LOCK_FILE`; a search whose project folder Keras Tuner may delete
            (`overwrite=True`) keeps its lock beside it instead.

    Raises:
        RunLockedError: on entering, when another live process holds it.

    Example:

    ```python
    with RunLock("runs/exp", purpose="compare") as lock:
        print(lock.path)   # runs/exp/.eraserelu.lock
    ```
    """

    def __init__(self, directory, purpose="train", name=LOCK_FILE):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, name)
        self.purpose = purpose
        self._stream = None

    def __enter__(self):
        self._created = not os.path.isdir(self.directory)
        os.makedirs(self.directory, exist_ok=True)
        while True:
            stream = open(self.path, "a+")  # never truncate before holding it
            try:
                fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_details(stream, wait_s=_DETAILS_WAIT_S)
                stream.close()
                raise RunLockedError(
                    f"The run directory {self.directory!r} is in use by another "
                    f"process: {describe_holder(holder)}. Wait for it to finish, "
                    "stop it, or choose another output directory."
                ) from None
            if _same_file(stream, self.path):
                break
            stream.close()  # its holder removed that file as we opened it
        previous = _read_details(stream, wait_s=0)
        if previous:
            print(
                f"{self.directory}: taking over the lock of "
                f"{describe_holder(previous)}, which ended without releasing it "
                "(killed or crashed).",
                file=sys.stderr,
                flush=True,
            )
        stream.seek(0)
        stream.truncate()
        stream.write(json.dumps(_own_details(self.purpose)))
        stream.flush()
        os.fsync(stream.fileno())
        self._stream = stream
        return self

    def __exit__(self, *exc_info):
        stream, self._stream = self._stream, None
        # Removed while still held, so that whoever opened it in the meantime
        # sees that it is gone and opens the next one.
        os.remove(self.path)
        if self._created and not os.listdir(self.directory):
            os.rmdir(self.directory)  # nothing was written: leave no trace
        fcntl.flock(stream.fileno(), fcntl.LOCK_UN)
        stream.close()
        return False


def describe_holder(details):
    """'pid 123 on host h, train since 2026-12-01 21:46:06 UTC (eraserelu ...)'."""
    if not details:
        return "a process that has not written its details yet"
    text = (
        f"pid {details.get('pid')} on host {details.get('host')}, "
        f"{details.get('purpose')} since {details.get('started')}"
    )
    command = details.get("command")
    return f"{text} ({command})" if command else text


def _own_details(purpose):
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "purpose": purpose,
        "started": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": " ".join(sys.argv)[:200],
    }


def _same_file(stream, path):
    try:
        return os.stat(path).st_ino == os.fstat(stream.fileno()).st_ino
    except FileNotFoundError:
        return False


def _read_details(stream, wait_s):
    deadline = time.monotonic() + wait_s
    while True:
        stream.seek(0)
        text = stream.read()
        if text.strip():
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                pass  # being written right now
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)
