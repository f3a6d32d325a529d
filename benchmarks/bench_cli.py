"""Start-up time of the `eraserelu` command line against `import keras`.

`eraserelu --help`, `eraserelu train --help` and an argument error
(`eraserelu train --batch-size 0 --out x`, exit status 2) must answer without
importing TensorFlow or Keras. Each is run as a user runs it, in a fresh
process through the installed console script, side by side with the baseline
`python -c "import keras"`, alternating in rounds (the order rotates every
round, so the slow drifts of a shared machine hit all alike). The script
prints the median wall time of each and its ratio to `import keras`.
Goal: <= 0.1x.

Measured on a 2-core Intel Xeon (AMX), TensorFlow 2.21.0, Keras 3.15.1,
11 rounds, on a busy machine (load average 3.9: other jobs ran):

| command | median | / import keras |
|---|---|---|
| python -c "import keras" | 9.159 s | 1.000x |
| eraserelu --help | 0.080 s | 0.009x |
| eraserelu train --help | 0.082 s | 0.009x |
| eraserelu train --batch-size 0 --out x | 0.085 s | 0.009x |

Again after the package's layout change, on an idle machine, 7 rounds:
`import keras` 5.472 s; the three command lines 0.048-0.050 s, 0.009x each.

Goal met. Before the front end moved to the `eraserelu` package
(`keras_eraserelu.cli` imported Keras with the package), `eraserelu --help`
took 12.1 s (one run, same machine).

Usage:

```
python benchmarks/bench_cli.py [--rounds 11]
```
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

GOAL = 0.1


def _commands():
    script = shutil.which("eraserelu") or "eraserelu"
    return {
        'python -c "import keras"': ([sys.executable, "-c", "import keras"], 0),
        "eraserelu --help": ([script, "--help"], 0),
        "eraserelu train --help": ([script, "train", "--help"], 0),
        "eraserelu train --batch-size 0 --out x": (
            [script, "train", "--batch-size", "0", "--out", "x"],
            2,
        ),
    }


def _time(command, expected_code, env):
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    if completed.returncode != expected_code:
        raise SystemExit(
            f"{command} exited {completed.returncode}, expected {expected_code}:\n"
            + completed.stderr.decode(errors="replace")
        )
    return wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=11, help="rounds of all commands. Defaults to 11"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(
            f"argument --rounds: expected an int >= 1. Received: {args.rounds}"
        )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    commands = _commands()
    names = list(commands)
    times = {name: [] for name in names}
    _time(*commands[names[0]], env)  # warm the file cache once
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_time(*commands[name], env))
    baseline = statistics.median(times[names[0]])
    print(f"cores: {os.cpu_count()}, rounds: {args.rounds}")
    print(f"{'command':<42} {'median':>9} {'/ import keras':>15}")
    for name in names:
        median = statistics.median(times[name])
        print(f"{name:<42} {median:>8.3f}s {median / baseline:>14.3f}x")
    worst = max(statistics.median(times[name]) for name in names[1:]) / baseline
    verdict = "met" if worst <= GOAL else "not met"
    print(
        f"slowest command line / import keras: {worst:.3f}x "
        f"(goal <= {GOAL}x: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
