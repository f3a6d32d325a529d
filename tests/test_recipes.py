"""Recipes and CoupledSGD: schedules at their boundaries, L2 against NumPy."""

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_eraserelu.models.registry import list_models
from keras_eraserelu.training.optimizers import CoupledSGD
from keras_eraserelu.training.paper_recipes import (
    get_recipe,
    list_recipes,
    recipe_for_model,
)
from keras_eraserelu.training.recipe import Recipe, RecipeSchedule

# ---------------------------------------------------------------- schedules

# (recipe, global batch, epoch, expected lr): values worked out by hand from the
# papers. He et al.: /10 at 82 and 123 of 164 epochs; WRN: x0.2 at 60, 120, 160
# of 200; ResNeXt: /10 at 150 and 225 of 300; ImageNet: /10 at 30, 60, 80 of 90.
BOUNDARIES = [
    ("he_cifar", None, 0.0, 0.1),
    ("he_cifar", None, 81.99, 0.1),
    ("he_cifar", None, 82.0, 0.01),
    ("he_cifar", None, 122.99, 0.01),
    ("he_cifar", None, 123.0, 0.001),
    ("he_cifar", None, 164.0, 0.001),
    ("he_cifar_warmup", None, 0.0, 0.01),
    ("he_cifar_warmup", None, 0.99, 0.01),
    ("he_cifar_warmup", None, 1.0, 0.1),
    ("he_cifar_warmup", None, 82.0, 0.01),
    ("preact_cifar", None, 0.5, 0.01),
    ("preact_cifar", None, 123.0, 0.001),
    ("wrn_cifar", None, 59.99, 0.1),
    ("wrn_cifar", None, 60.0, 0.02),
    ("wrn_cifar", None, 119.99, 0.02),
    ("wrn_cifar", None, 120.0, 0.004),
    ("wrn_cifar", None, 159.99, 0.004),
    ("wrn_cifar", None, 160.0, 0.0008),
    ("resnext_cifar", None, 149.99, 0.1),
    ("resnext_cifar", None, 150.0, 0.01),
    ("resnext_cifar", None, 224.99, 0.01),
    ("resnext_cifar", None, 225.0, 0.001),
    # At the reference batch the gradual warm-up changes nothing.
    ("imagenet_step", None, 0.0, 0.1),
    ("imagenet_step", None, 29.99, 0.1),
    ("imagenet_step", None, 30.0, 0.01),
    ("imagenet_step", None, 59.99, 0.01),
    ("imagenet_step", None, 60.0, 0.001),
    ("imagenet_step", None, 79.99, 0.001),
    ("imagenet_step", None, 80.0, 0.0001),
    # Batch 8192 = 32 x 256: from 0.1 to 3.2 over 5 epochs (Goyal et al.).
    ("imagenet_step", 8192, 0.0, 0.1),
    ("imagenet_step", 8192, 2.5, 0.1 + (3.2 - 0.1) / 2),
    ("imagenet_step", 8192, 5.0, 3.2),
    ("imagenet_step", 8192, 30.0, 0.32),
    ("imagenet_cosine", None, 0.0, 0.1),
    ("imagenet_cosine", None, 22.5, 0.05 * (1 + math.sqrt(0.5))),
    ("imagenet_cosine", None, 45.0, 0.05),
    ("imagenet_cosine", None, 90.0, 0.0),
    ("imagenet_cosine", None, 95.0, 0.0),
    # Batch 512: factor from 1/2 to 1 over 5 epochs times the scaled cosine.
    ("imagenet_cosine", 512, 0.0, 0.1),
    ("imagenet_cosine", 512, 2.5, 0.75 * 0.1 * (1 + math.cos(math.pi * 2.5 / 90))),
    ("imagenet_cosine", 512, 45.0, 0.1),
]


@pytest.mark.parametrize("name, batch, epoch, expected", BOUNDARIES)
def test_learning_rate_at_boundaries(name, batch, epoch, expected):
    lr = get_recipe(name).learning_rate(epoch, global_batch_size=batch)
    assert lr == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_learning_rate_scales_linearly_with_the_global_batch():
    recipe = get_recipe("he_cifar_warmup")
    for epoch in (0.0, 0.5, 1.0, 50.0, 82.0, 130.0):
        assert recipe.learning_rate(epoch, 512) == pytest.approx(
            4 * recipe.learning_rate(epoch, 128)
        )
    assert recipe.learning_rate(0.0, 256) == pytest.approx(0.02)  # warm-up too
    assert recipe.learning_rate(1.0, 64) == pytest.approx(0.05)


def boundary_steps(recipe, steps_per_epoch):
    """Steps just before and at every boundary, computed from the fractions."""
    thresholds = [m * recipe.epochs for m in recipe.milestones]
    thresholds.append(recipe.warmup_epochs)
    steps = {0, 1, recipe.epochs * steps_per_epoch - 1, recipe.epochs * steps_per_epoch}
    for threshold in thresholds:
        first = math.ceil(round(threshold * steps_per_epoch, 6))
        steps.update({max(first - 1, 0), first})
    return sorted(steps)


@pytest.mark.parametrize("name", list_recipes())
@pytest.mark.parametrize("batch", [None, 1024])
def test_schedule_fn_matches_learning_rate_at_step_boundaries(name, batch):
    recipe = get_recipe(name)
    steps_per_epoch = 391
    schedule = recipe.schedule_fn(steps_per_epoch, global_batch_size=batch)
    peak = recipe.base_lr * recipe.batch_scale(batch)
    for step in boundary_steps(recipe, steps_per_epoch):
        expected = recipe.learning_rate(step / steps_per_epoch, batch)
        assert float(schedule(step)) == pytest.approx(
            expected, rel=1e-5, abs=1e-7 * peak
        ), step


def test_schedule_fn_drops_on_the_paper_iterations():
    # He et al.: 32k and 48k iterations; at 391 it/epoch 82 and 123 epochs are
    # steps 32062 and 48093.
    schedule = get_recipe("he_cifar").schedule_fn(steps_per_epoch=391)
    values = [float(schedule(s)) for s in (32061, 32062, 48092, 48093)]
    np.testing.assert_allclose(values, [0.1, 0.01, 0.01, 0.001], rtol=1e-6)
    warm = get_recipe("he_cifar_warmup").schedule_fn(steps_per_epoch=391)
    np.testing.assert_allclose([float(warm(390)), float(warm(391))], [0.01, 0.1])


@pytest.mark.parametrize("name", ["he_cifar_warmup", "imagenet_cosine"])
def test_schedule_fn_serializes(name):
    schedule = get_recipe(name).schedule_fn(steps_per_epoch=50, global_batch_size=512)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, RecipeSchedule)
    assert restored.recipe == schedule.recipe
    for step in (0, 49, 50, 249, 250, 2000, 4499, 4500):
        assert float(restored(step)) == float(schedule(step))


def test_with_epochs_keeps_milestone_fractions():
    short = get_recipe("wrn_cifar").with_epochs(20)
    assert short.epochs == 20
    assert short.milestones == (0.3, 0.6, 0.8)
    lrs = [short.learning_rate(e) for e in (5.99, 6.0, 12.0, 16.0)]
    np.testing.assert_allclose(lrs, [0.1, 0.02, 0.004, 0.0008])
    warm = get_recipe("he_cifar_warmup").with_epochs(82)
    assert warm.warmup_epochs == pytest.approx(0.5)
    assert warm.learning_rate(0.49) == 0.01
    assert warm.learning_rate(0.5) == 0.1


def test_get_recipe_overrides_and_paper_values():
    recipe = get_recipe("he_cifar", weight_decay=5e-4, epochs=10)
    assert (recipe.weight_decay, recipe.epochs) == (5e-4, 10)
    wrn = get_recipe("wrn_cifar")
    assert (wrn.nesterov, wrn.gamma, wrn.weight_decay, wrn.epochs) == (
        True,
        0.2,
        5e-4,
        200,
    )
    for name in list_recipes():
        assert "arXiv" in get_recipe(name).source


def test_recipe_optimizer_is_coupled_sgd_with_the_schedule():
    optimizer = get_recipe("wrn_cifar").optimizer(steps_per_epoch=10)
    assert isinstance(optimizer, CoupledSGD)
    assert (optimizer.momentum, optimizer.nesterov, optimizer.l2) == (0.9, True, 5e-4)
    assert isinstance(optimizer._learning_rate, RecipeSchedule)


@pytest.mark.parametrize(
    "model_name, expected",
    [
        ("wrn28_10", "wrn_cifar"),
        ("resnext29_8x64d", "resnext_cifar"),
        ("cifar_preact_resnet164", "preact_cifar"),
        ("cifar_resnet110", "he_cifar_warmup"),
        ("cifar_resnet1202", "he_cifar_warmup"),
        ("cifar_resnet56", "he_cifar"),
        ("cifar_vgg16_bn", "he_cifar"),
        ("resnet_tiny", "he_cifar"),
        ("resnet50", "imagenet_step"),
        ("vgg19", "imagenet_step"),
        ("bn_inception", "imagenet_step"),
    ],
)
def test_recipe_for_model(model_name, expected):
    assert recipe_for_model(model_name) == expected


def test_every_registered_model_has_a_recipe():
    for model_name in list_models():
        assert recipe_for_model(model_name) in list_recipes()


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: get_recipe("he_cifr"), ValueError, "Did you mean 'he_cifar'"),
        (lambda: get_recipe("he_cifar", epoch=3), ValueError, "Valid fields.*epochs"),
        (lambda: get_recipe("he_cifar", epochs=-1), ValueError, "epochs.*-1"),
        (lambda: get_recipe("he_cifar", epochs=1.5), TypeError, "epochs.*int"),
        (lambda: get_recipe("he_cifar").with_epochs(0), ValueError, "epochs=0"),
        (lambda: get_recipe("he_cifar", schedule="poly"), ValueError, "'cosine'"),
        (lambda: get_recipe("he_cifar", milestones=(0.8, 0.5)), ValueError, "incr"),
        (lambda: get_recipe("he_cifar", milestones=(0.5, 1.2)), ValueError, "mile"),
        (lambda: get_recipe("he_cifar", milestones=0.5), TypeError, "milestones"),
        (lambda: get_recipe("imagenet_cosine", milestones=(0.5,)), ValueError, "step"),
        (lambda: get_recipe("he_cifar", warmup_epochs=200), ValueError, "warmup_ep"),
        (lambda: get_recipe("he_cifar", warmup_epochs=1), ValueError, "warmup_lr"),
        (lambda: get_recipe("imagenet_step", warmup_lr=0.1), ValueError, "gradual"),
        (lambda: get_recipe("he_cifar", momentum=1.5), ValueError, "momentum"),
        (lambda: get_recipe("he_cifar").learning_rate(-1), ValueError, "epoch=-1"),
        (lambda: get_recipe("he_cifar").learning_rate(1, 0), ValueError, "global_b"),
        (lambda: get_recipe("he_cifar").schedule_fn(0), ValueError, "steps_per_ep"),
        (lambda: recipe_for_model("resnet5o"), ValueError, "Did you mean 'resnet50'"),
        (lambda: CoupledSGD(l2=-1e-4), ValueError, "l2=-0.0001"),
        (lambda: CoupledSGD(l2="1e-4"), TypeError, "l2"),
        (lambda: CoupledSGD(exclude_from_l2=[1]), TypeError, "exclude_from_l2"),
        (lambda: CoupledSGD(weight_decay=1e-4), ValueError, "decoupled"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_recipe_rejects_wrong_types():
    with pytest.raises(TypeError, match="nesterov"):
        Recipe("x", 10, 128, 0.1, 0.9, "yes", 1e-4, "step")


# ------------------------------------------------------ CoupledSGD vs NumPy

X = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 2.0], [-2.0, 0.5, 1.0], [1.0, 1.0, 1.0]])
Y = np.array([[1.0, -1.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 0.5]])
KERNEL = np.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]])
BIAS = np.array([0.1, -0.3])
LR, MOMENTUM, L2 = 0.1, 0.9, 0.05


def numpy_steps(steps, nesterov, l2, l2_bias=True, convention="keras"):
    """Kernel and bias after `steps` full-batch steps on mean squared error."""
    weights = [KERNEL.copy(), BIAS.copy()]
    velocity = [np.zeros_like(w) for w in weights]
    for _ in range(steps):
        kernel, bias = weights
        dpred = 2 * (X @ kernel + bias - Y) / Y.size  # d mean((pred - y)^2)
        grads = [X.T @ dpred, dpred.sum(axis=0)]
        for i, (w, g) in enumerate(zip(weights, grads)):
            if l2 and (i == 0 or l2_bias):
                g = g + l2 * w
            if convention == "keras":  # v = m v - lr g; w += v (or m v - lr g)
                velocity[i] = MOMENTUM * velocity[i] - LR * g
                step = MOMENTUM * velocity[i] - LR * g if nesterov else velocity[i]
                weights[i] = w + step
            else:  # PyTorch: b = m b + g; w -= lr b (or lr (g + m b))
                velocity[i] = MOMENTUM * velocity[i] + g
                step = g + MOMENTUM * velocity[i] if nesterov else velocity[i]
                weights[i] = w - LR * step
    return weights


def dense_model():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                2,
                kernel_initializer=keras.initializers.Constant(KERNEL),
                bias_initializer=keras.initializers.Constant(BIAS),
                name="dense",
            ),
        ]
    )
    return model


def train(optimizer, steps=2):
    model = dense_model()
    model.compile(optimizer=optimizer, loss="mse")
    for _ in range(steps):
        model.train_on_batch(X.astype("float32"), Y.astype("float32"))
    return model


@pytest.mark.parametrize("nesterov", [False, True])
def test_coupled_sgd_matches_numpy_two_steps(nesterov):
    model = train(CoupledSGD(LR, momentum=MOMENTUM, nesterov=nesterov, l2=L2))
    expected = numpy_steps(2, nesterov, L2)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The L2 term and the momentum both moved the result, and the PyTorch
    # convention gives the same weights at a constant learning rate.
    without_l2 = numpy_steps(2, nesterov, 0.0)
    assert np.abs(expected[0] - without_l2[0]).max() > 1e-3
    assert np.abs(expected[0] - numpy_steps(1, nesterov, L2)[0]).max() > 1e-3
    for keras_w, torch_w in zip(
        expected, numpy_steps(2, nesterov, L2, convention="torch")
    ):
        np.testing.assert_allclose(keras_w, torch_w, rtol=1e-12)


def test_excluded_variables_get_no_l2():
    optimizer = CoupledSGD(LR, momentum=MOMENTUM, l2=L2, exclude_from_l2=["bias"])
    model = train(optimizer)
    kernel, bias = model.get_weights()
    expected_kernel, expected_bias = numpy_steps(2, False, L2, l2_bias=False)
    np.testing.assert_allclose(kernel, expected_kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, expected_bias, rtol=1e-5, atol=1e-6)
    assert np.abs(expected_bias - numpy_steps(2, False, L2)[1]).max() > 1e-4
    assert [optimizer.uses_l2(v) for v in model.trainable_variables] == [True, False]


def test_compiled_model_round_trips_through_keras_file(tmp_path):
    recipe = get_recipe("he_cifar_warmup", weight_decay=L2, l2_exclude=("bias",))
    model = train(recipe.optimizer(steps_per_epoch=2, global_batch_size=4), steps=1)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    optimizer = loaded.optimizer
    assert isinstance(optimizer, CoupledSGD)
    assert (optimizer.l2, optimizer.exclude_from_l2) == (L2, ("bias",))
    assert optimizer._learning_rate.recipe == recipe
    assert int(optimizer.iterations) == 1
    # The velocity came back too: one more step gives the same weights.
    for m in (model, loaded):
        m.train_on_batch(X.astype("float32"), Y.astype("float32"))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


MIRRORED = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from keras_eraserelu.training.optimizers import CoupledSGD
x, y, kernel, bias, lr, momentum, l2 = json.loads(sys.argv[1])
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        2, kernel_initializer=keras.initializers.Constant(kernel),
        bias_initializer=keras.initializers.Constant(bias))])
    model.compile(optimizer=CoupledSGD(lr, momentum=momentum, nesterov=True,
                                       l2=l2, exclude_from_l2="bias"), loss="mse")
model.fit(np.float32(x), np.float32(y), batch_size=4, epochs=2, shuffle=False,
          verbose=0)
print("REPLICAS", strategy.num_replicas_in_sync)
print("WEIGHTS", json.dumps([w.tolist() for w in model.get_weights()]))
"""


def test_coupled_sgd_under_mirrored_strategy():
    arguments = [a.tolist() for a in (X, Y, KERNEL, BIAS)] + [LR, MOMENTUM, L2]
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(
        line.split(" ", 1) for line in result.stdout.splitlines() if " " in line
    )
    assert lines["REPLICAS"] == "2"
    weights = json.loads(lines["WEIGHTS"])
    for got, want in zip(weights, numpy_steps(2, True, L2, l2_bias=False)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
