"""Hides TensorFlow's start-up log lines from the `eraserelu` program.

TensorFlow writes lines such as `I0000 00:00:17... port.cc:153] oneDNN
custom operations are on`, `cudart_stub.cc:31] Could not find cuda
drivers`, `cuda_platform.cc:52] failed call to cuInit` and absl's `WARNING:
All log messages before absl::InitializeLog() is called are written to
STDERR` from C++, partly before it reads `TF_CPP_MIN_LOG_LEVEL`, so that
variable alone does not hide them. `hide_tensorflow_noise` sets it (level
2: C++ errors still show) and routes file descriptor 2 through a filter that
drops those lines: absl-format INFO and WARNING lines, absl's preamble, and
the errors of the CUDA probe on a machine without a GPU driver. Everything
else, Python's own messages and tracebacks included, passes unchanged and at
once. A user who set `TF_CPP_MIN_LOG_LEVEL` sees everything TensorFlow says.

Example:

```python
hide_tensorflow_noise()   # then import TensorFlow and work
```
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are "
    rb"written to STDERR"
    rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] .*"
    rb"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ (cuda_\w+|cudart_stub)\.cc:\d+\] .*)\r?\n?$"
)
# A line start that may still turn out to be noise: held until its end.
_MAYBE_NOISE = re.compile(
    rb"^([IWE]\d{0,4}|[IWE]\d{4} .*|W|WA|WAR|WARN|WARNI|WARNIN|WARNING.*)$"
)


def hide_tensorflow_noise():
    """Filters fd 2 for the rest of the process, unless TF_CPP_MIN_LOG_LEVEL
    is set already. Returns whether the filter was installed."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    read_end, write_end = os.pipe()
    terminal = os.dup(2)
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_forward, args=(read_end, terminal), daemon=True)
    thread.start()

    def restore():
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: EOF
        thread.join(timeout=5)

    atexit.register(restore)
    return True


def _forward(read_end, terminal):
    line_filter = LineFilter(lambda data: os.write(terminal, data))
    while chunk := os.read(read_end, 65536):
        line_filter.feed(chunk)
    line_filter.close()


class LineFilter:
    """Writes what it is fed, less the lines that `NOISE` matches.

    A line is held only while its start could still be noise; any other
    text (a progress bar's `\\r` updates, a prompt) passes as it comes.

    Example:

    ```python
    kept = []
    line_filter = LineFilter(kept.append)
    line_filter.feed(b"I0000 00:00:1.5 7 port.cc:153] oneDNN on\\nreal\\n")
    kept   # [b"real\\n"]
    ```
    """

    def __init__(self, write):
        self.write = write
        self.pending = b""  # the start of a line not yet judged
        self.passing = False  # the current line is not noise: pass the rest

    def feed(self, data):
        while data:
            if self.passing:
                end = data.find(b"\n") + 1
                self.write(data[:end] if end else data)
                if not end:
                    return
                data, self.passing = data[end:], False
                continue
            self.pending, data = self.pending + data, b""
            while (end := self.pending.find(b"\n") + 1) > 0:
                line, self.pending = self.pending[:end], self.pending[end:]
                if not NOISE.match(line):
                    self.write(line)
            if self.pending and not _MAYBE_NOISE.match(self.pending):
                self.write(self.pending)
                self.pending, self.passing = b"", True

    def close(self):
        if self.pending and not NOISE.match(self.pending):
            self.write(self.pending)
        self.pending = b""
