"""The `eraserelu` command line, run in-process and as the installed script."""

import json
import subprocess
import sys

import keras
import pytest

from eraserelu.cli import main


def test_inspect_application_prints_table_and_writes_json_and_picture(tmp_path, capsys):
    plot, data = tmp_path / "plan.png", tmp_path / "plan.json"
    code = main(
        [
            "inspect",
            "VGG16",
            "--input-shape",
            "32,32,3",
            "--plot",
            str(plot),
            "--json",
            str(data),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "vgg16: 15 sites, 5 modules (ended by poolings), 5 to erase" in out
    assert "block1_conv2" in out and "last ReLU of module 0" in out
    assert json.loads(data.read_text())["erased"][0] == "block1_conv2"
    assert plot.stat().st_size > 10_000


def test_inspect_keras_file_with_placement_flags(tmp_path, capsys):
    model = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    path = tmp_path / "r50.keras"
    model.save(path)
    assert main(["inspect", str(path), "--where", "first", "--exclude", "conv5_*"]) == 0
    out = capsys.readouterr().out
    assert "resnet50: 49 sites, 16 modules (ended by merges), 13 to erase" in out


def test_bad_model_name_is_a_clear_error(capsys):
    assert main(["inspect", "ResNet05"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'ResNet05'" in err and "Did you mean 'ResNet50'" in err


def test_missing_file_and_bad_shape_are_clear_errors(capsys):
    assert main(["inspect", "nowhere/model.keras"]) == 2
    assert "Model file not found" in capsys.readouterr().err
    assert main(["inspect", "VGG16", "--input-shape", "32x32"]) == 2
    assert (
        "argument --input-shape: expected comma-separated positive ints like "
        "224,224,3. Received: '32x32'." in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "command", [["eraserelu"], [sys.executable, "-m", "eraserelu"]]
)
def test_console_script_and_module_are_installed(command):
    """The README installs the package, so the script must be on PATH."""
    result = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "inspect" in result.stdout
    assert "export" in result.stdout
