"""The README's Python blocks run as they are, in order, offline."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def python_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_snippets_run(tmp_path):
    blocks = python_blocks()
    assert len(blocks) >= 6
    script = tmp_path / "readme.py"
    script.write_text("\n".join(blocks))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "16 to erase" in result.stdout
    assert (tmp_path / "resnet50_plan.png").exists()
    assert (tmp_path / "runs" / "quick" / "model.keras").exists()
    assert (tmp_path / "runs" / "compare" / "results.json").exists()
