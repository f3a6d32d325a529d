"""plan_erasure: positions, proportions, explicit choices, the report."""

import json
import re

import keras
import pytest
from matplotlib.colors import to_rgba

import keras_eraserelu as ker
from keras_eraserelu.core.plan_plot import COLORS
from tests.test_rewrite import residual_net


@pytest.fixture(scope="module")
def resnet50():
    return keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )


def names(plan):
    return [site.name for site in plan.erased]


def test_where_first_all_and_k(resnet50):
    assert names(ker.plan_erasure(resnet50, "first"))[:2] == [
        "conv2_block1_1_relu",
        "conv2_block2_1_relu",
    ]
    assert len(ker.plan_erasure(resnet50, "all").erased) == 48  # all but the stem
    assert names(ker.plan_erasure(resnet50, 1))[:1] == ["conv2_block1_2_relu"]
    assert names(ker.plan_erasure(resnet50, -1)) == names(ker.plan_erasure(resnet50))


def test_ratio_counts_from_either_end(resnet50):
    start = ker.plan_erasure(resnet50, ratio=0.25)
    end = ker.plan_erasure(resnet50, ratio=0.25, ratio_from="end")
    assert names(start) == [f"conv2_block{k}_out" for k in (1, 2, 3)] + [
        "conv3_block1_out"
    ]
    assert names(end) == ["conv4_block6_out"] + [
        f"conv5_block{k}_out" for k in (1, 2, 3)
    ]
    assert "not chosen" in start.sites[-1].reason


def test_modules_by_index_name_and_glob(resnet50):
    plan = ker.plan_erasure(resnet50, modules=[0, "conv5_block3_out", "conv4_*"])
    assert len(plan.erased) == 1 + 1 + 6
    assert plan.modules[0].stage == 0 and plan.modules[-1].stage == 3


def test_select_forms_and_exclusion_wins(resnet50):
    sites = ker.find_relus(resnet50)
    by_regex = ker.plan_erasure(resnet50, select="re:conv2_block[12]_.*relu")
    assert names(by_regex) == [
        "conv2_block1_1_relu",
        "conv2_block1_2_relu",
        "conv2_block2_1_relu",
        "conv2_block2_2_relu",
    ]
    by_pattern = ker.plan_erasure(resnet50, select=re.compile(r"block1_out$"))
    assert len(by_pattern.erased) == 4
    by_index = ker.plan_erasure(resnet50, select=[0, -1])
    assert names(by_index) == [sites[0].name, sites[-1].name]
    by_function = ker.plan_erasure(resnet50, select=lambda s: s.module == 3)
    assert names(by_function) == [
        "conv3_block1_1_relu",
        "conv3_block1_2_relu",
        "conv3_block1_out",
    ]
    both = ker.plan_erasure(resnet50, select="conv2_*", exclude=["conv2_block2_*", 1])
    assert "conv2_block2_out" not in names(both) and sites[1].name not in names(both)
    assert (
        next(s for s in both.sites if s.name == "conv2_block2_out").reason == "excluded"
    )
    with_where = ker.plan_erasure(resnet50, "last", select="conv2_*")
    assert names(with_where) == [f"conv2_block{k}_out" for k in (1, 2, 3)]


def test_plan_reports_as_table_dict_and_picture(resnet50, tmp_path):
    plan = ker.plan_erasure(resnet50)
    text = str(plan)
    assert text.splitlines()[0] == plan.summary()
    assert "conv2_block1_out" in text and "last ReLU of module 0" in text
    assert "stem (before the first module)" in text
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["erased"] == [s.path for s in plan.erased]
    assert len(data["modules"]) == 16 and data["boundary"] == "merge"
    path = tmp_path / "plan.png"
    figure = plan.plot(path)
    assert_draws_plan(figure, plan, [1] + [3] * 16)
    assert path.exists()
    # The stem's ReLU is kept; each module's last ReLU (position 2) is erased.
    cells = plan_cells(figure)
    assert [color for color, _ in cells[0]] == [to_rgba(COLORS["keep"])]
    for row in cells[1:]:
        assert [color for color, _ in row] == [to_rgba(COLORS["keep"])] * 2 + [
            to_rgba(COLORS["erase"])
        ]
    assert [row[2][1] for row in cells[1:]] == names(plan)
    assert legend_entries(figure) == [
        ("erased by this plan", to_rgba(COLORS["erase"])),
        ("kept", to_rgba(COLORS["keep"])),
    ]


def plan_cells(figure):
    """The picture's cells, `[[(rgba, text), ...] per row]`, top row first."""
    axis = figure.axes[0]
    texts = {}
    for text in axis.texts:  # centred in its cell
        x, y = text.get_position()
        texts[round(x - 0.47), round(-y)] = text.get_text()
    rows = {}
    for cell in axis.patches:
        x, y = round(cell.get_x()), round(-cell.get_y() - 0.42)
        assert (cell.get_width(), cell.get_height()) == pytest.approx((0.94, 0.84))
        rows.setdefault(y, {})[x] = (cell.get_facecolor(), texts.get((x, y)))
    assert sorted(rows) == list(range(len(rows)))
    for row in rows.values():  # every row starts at position 0, without gaps
        assert sorted(row) == list(range(len(row)))
    return [[rows[y][x][:2] for x in sorted(rows[y])] for y in sorted(rows)]


def legend_entries(figure):
    """`(label, rgba)` of each legend entry."""
    legend = figure.axes[0].get_legend()
    return [
        (text.get_text(), handle.get_facecolor())
        for text, handle in zip(legend.get_texts(), legend.legend_handles)
    ]


def assert_draws_plan(figure, plan, sites_per_row):
    """`figure` draws `plan`: a row of cells per module (stem and head apart),
    one cell per site named after it and coloured by the plan's decision."""
    stem = [s for s in plan.sites if s.module is None and s.module_name != "head"]
    head = [s for s in plan.sites if s.module_name == "head"]
    rows = [("stem", stem)] + [
        (
            f"{module.index}: {module.name}",
            sorted(
                (s for s in plan.sites if s.module == module.index),
                key=lambda s: s.position,
            ),
        )
        for module in plan.modules
    ]
    rows = [(label, sites) for label, sites in rows + [("head", head)] if sites]
    assert [len(sites) for _, sites in rows] == sites_per_row
    axis = figure.axes[0]
    assert [t.get_text() for t in axis.get_yticklabels()] == [r[0] for r in rows]
    states = set()
    for row, (_, sites) in zip(plan_cells(figure), rows, strict=True):
        expected = []
        for site in sites:
            state = site.decision
            if site.erased_before:
                state = "erased"
            elif site.decision == "keep" and site.reason.startswith("kind "):
                state = "not targeted"
            states.add(state)
            expected.append((to_rgba(COLORS[state]), site.name))
        assert row == expected
    assert [color for _, color in legend_entries(figure)] == [
        to_rgba(COLORS[state]) for state in COLORS if state in states
    ]
    assert axis.get_title() == plan.summary()


def test_clipped_and_leaky_kinds_need_asking_and_warn():
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for b in (1, 2):
        y = keras.layers.Conv2D(3, 3, padding="same", name=f"b{b}_conv")(x)
        x = keras.layers.ReLU(max_value=6.0, name=f"b{b}_out")(
            keras.layers.Add(name=f"b{b}_add")([x, y])
        )
    model = keras.Model(inputs, x)
    default = ker.plan_erasure(model)
    assert default.erased == []
    assert "kind 'relu6' not in kinds" in default.sites[0].reason
    asked = ker.plan_erasure(model, kinds=("relu", "relu6"))
    assert names(asked) == ["b1_out", "b2_out"]
    assert any("loses its upper clip" in w for w in asked.warnings)


def test_any_activation_kind_can_be_targeted():
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for b in (1, 2):
        y = keras.layers.Conv2D(
            3, 3, padding="same", activation="gelu", name=f"b{b}_c1"
        )(x)
        y = keras.layers.Conv2D(
            3, 3, padding="same", activation="silu", name=f"b{b}_c2"
        )(y)
        x = keras.layers.Add(name=f"b{b}_add")([x, y])
    model = keras.Model(inputs, x)
    assert names(ker.plan_erasure(model, kinds="swish")) == ["b1_c2", "b2_c2"]
    assert names(ker.plan_erasure(model, "all", kinds="any")) == [
        "b1_c1",
        "b1_c2",
        "b2_c1",
        "b2_c2",
    ]


def test_model_without_modules_points_to_select():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4, activation="relu", name="fc")]
    )
    plan = ker.plan_erasure(model)
    assert plan.erased == [] and plan.modules == ()
    assert "select=" in plan.warnings[0] and "no modules detected" in plan.summary()
    assert names(ker.plan_erasure(model, select="fc")) == ["fc"]


def test_module_detection_on_a_hand_built_residual_net():
    plan = ker.plan_erasure(residual_net(blocks=3))
    assert [m.name for m in plan.modules] == ["b1_out", "b2_out", "b3_out"]
    assert [(s.name, s.module_name) for s in plan.sites][:2] == [
        ("stem_relu", "stem"),
        ("b1_relu1", "b1_out"),
    ]
    assert next(s for s in plan.sites if s.name == "fc").module_name == "head"
