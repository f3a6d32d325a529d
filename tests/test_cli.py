"""The `eraserelu` command line, run in-process and as the installed script."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from matplotlib import image
from matplotlib.colors import to_rgba

from eraserelu.cli import main
from keras_eraserelu.core import plan_plot
from tests.test_plan import assert_draws_plan, plan_cells


def test_inspect_application_prints_table_and_writes_json_and_picture(
    tmp_path, capsys, monkeypatch
):
    drawn, original = [], plan_plot.plot_plan  # (plan, figure) per picture

    def plot_plan(plan, path=None, **kwargs):
        drawn.append((plan, original(plan, path, **kwargs)))  # saved as usual
        return drawn[-1][1]

    monkeypatch.setattr(plan_plot, "plot_plan", plot_plan)
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
    [(plan, figure)] = drawn
    assert_draws_plan(figure, plan, [2, 2, 3, 3, 3, 2])  # five blocks, fc1 fc2
    erase, keep = to_rgba(plan_plot.COLORS["erase"]), to_rgba(plan_plot.COLORS["keep"])
    assert [[color == erase for color, _ in row] for row in plan_cells(figure)] == [
        [False, True], [False, True], [False, False, True], [False, False, True],
        [False, False, True], [False, False],
    ]  # fmt: skip
    assert {color for row in plan_cells(figure) for color, _ in row} == {erase, keep}
    # The file is that figure: the same pixels as saving it again.
    again = tmp_path / "again.png"
    figure.savefig(again, dpi=120, bbox_inches="tight")
    pixels = image.imread(plot)
    assert pixels.shape[2] == 4 and min(pixels.shape[:2]) > 200
    np.testing.assert_array_equal(pixels, image.imread(again))


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
