"""The `eraserelu` program hides TensorFlow's start-up lines, nothing else."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eraserelu.quiet import NOISE, LineFilter

ROOT = Path(__file__).parents[1]

# Lines TensorFlow 2.21 printed here at start-up, on a machine without a GPU.
TENSORFLOW_NOISE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written"
    b" to STDERR\n"
    b"I0000 00:00:1796163014.975061   27020 port.cc:153] oneDNN custom operations"
    b" are on. You may see slightly different numerical results.\n"
    b"I0000 00:00:1796163014.975369   27020 cudart_stub.cc:31] Could not find cuda"
    b" drivers on your machine, GPU will not be used.\n"
    b"E0000 00:00:1796163017.861029   27020 cuda_platform.cc:52] failed call to"
    b" cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
)
KEPT = (
    b"Epoch 1/3\n",
    b"E0000 00:00:1796163017.861029   27020 conv_ops.cc:52] a real kernel error\n",
    b"Traceback (most recent call last):\n",
    b"eraserelu train: error: argument --batch-size: expected an int >= 1.\n",
    b"WARNING:absl:a Python warning\n",
    b"Image 12\n",
)


def _filtered(chunks):
    kept = []
    line_filter = LineFilter(kept.append)
    for chunk in chunks:
        line_filter.feed(chunk)
    line_filter.close()
    return b"".join(kept)


def test_noise_lines_are_dropped_and_everything_else_kept():
    for line in TENSORFLOW_NOISE.splitlines(keepends=True):
        assert NOISE.match(line), line
    noise = TENSORFLOW_NOISE.splitlines(keepends=True)
    stream = b"".join(n + k for n, k in zip(noise * 2, KEPT))
    expected = b"".join(KEPT)
    assert _filtered([stream]) == expected
    # However the pipe splits the bytes, the same lines come out.
    for cut in range(1, len(stream)):
        assert _filtered([stream[:cut], stream[cut:]]) == expected, cut
    assert _filtered([bytes([b]) for b in stream]) == expected


def test_text_that_cannot_be_noise_passes_before_its_line_ends():
    kept = []
    line_filter = LineFilter(kept.append)
    line_filter.feed(b"\r 40%|####      | 4/10")
    assert kept == [b"\r 40%|####      | 4/10"]  # a progress bar is not held
    line_filter.feed(b"\nI0000 00:00:17.5   1 port.cc:153] oneDNN")
    assert kept == [b"\r 40%|####      | 4/10", b"\n"]  # may be noise: held
    line_filter.feed(b" on\nEpoch")
    assert kept[2:] == [b"Epoch"]


def _program(*args, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "eraserelu", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("level", [None, "0"])
def test_the_program_is_quiet_unless_the_user_asks(level):
    extra = {} if level is None else {"TF_CPP_MIN_LOG_LEVEL": level}
    result = _program("inspect", "cifar_resnet8", **extra)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cifar_resnet8: 7 sites, 3 modules" in result.stdout
    noise = [
        line
        for line in result.stderr.splitlines()
        if NOISE.match(line.encode() + b"\n")
    ]
    if level is None:
        assert noise == [], result.stderr
    else:  # the user's own level: TensorFlow says everything it says
        assert any("port.cc" in line or "InitializeLog" in line for line in noise)


def test_errors_still_reach_the_user():
    result = _program("inspect", "no_such_model.keras")
    assert result.returncode == 2
    assert "eraserelu inspect: error: " in result.stderr
    assert "no_such_model.keras" in result.stderr
