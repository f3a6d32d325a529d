"""Time `eraserelu demo` end to end against its budget of 5 minutes on 2 cores.

Runs the console command in a fresh process, as a user would (imports,
every build, trace and epoch, the plots), into a new temporary directory,
and prints the wall time, the CPU time the process used, and the ratio of
the wall time to the 300 s budget. A shared machine stretches the wall time
but not the CPU time, so the script also prints the load average: on 2
cores that nothing else uses, the wall time is at least CPU time / 2.

Usage:

```
python benchmarks/bench_demo.py                 # the demo as shipped
python benchmarks/bench_demo.py --seeds 2 --epochs 2    # a cheaper variant
```
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

BUDGET_S = 300.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, help="default: the demo's")
    parser.add_argument("--epochs", type=int, help="default: the demo's")
    parser.add_argument("--keep", action="store_true", help="keep the demo's files")
    args = parser.parse_args(argv)

    out = os.path.join(tempfile.mkdtemp(prefix="bench-demo-"), "eraserelu-demo")
    command = [sys.executable, "-m", "eraserelu", "demo", "--out", out]
    for flag in ("seeds", "epochs"):
        if getattr(args, flag) is not None:
            command += [f"--{flag}", str(getattr(args, flag))]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"cores: {os.cpu_count()}, load average before: {_load()}", flush=True)
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, check=False)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"load average after: {_load()}")
    if completed.returncode != 0:
        print(f"the demo failed with exit code {completed.returncode}")
        return completed.returncode
    print(
        f"demo wall time: {wall:.1f} s; ratio to the {BUDGET_S:.0f} s budget: "
        f"{wall / BUDGET_S:.2f}; CPU time {cpu:.1f} s (user + system)"
    )
    if args.keep:
        print(f"files kept in {out}")
    else:
        shutil.rmtree(os.path.dirname(out))
    return 0


def _load():
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
