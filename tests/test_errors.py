"""Bad input: clear errors that name the thing, what was expected, the choices."""

import keras
import numpy as np
import pytest

import keras_eraserelu as ker
from tests.test_rewrite import residual_net


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.fc = keras.layers.Dense(2, activation="relu")

    def call(self, x):
        return self.fc(x)


@pytest.fixture(scope="module")
def model():
    return residual_net()


def test_subclassed_model_is_refused_with_what_to_do():
    model = Subclassed()
    model(np.ones((1, 3), "float32"))
    with pytest.raises(TypeError, match="subclassed model.*functional API"):
        ker.erase_relu(model)


def test_unbuilt_sequential_is_refused():
    model = keras.Sequential([keras.layers.Dense(2, activation="relu")])
    with pytest.raises(ValueError, match="not built.*keras.Input"):
        ker.plan_erasure(model)


def test_non_keras_object_is_refused():
    with pytest.raises(TypeError, match="Expected a Keras 3 `keras.Model`.*str"):
        ker.find_relus("resnet50")


def test_selector_matching_nothing_lists_close_names(model):
    with pytest.raises(
        ValueError, match="'b1_relu'.*matched no site.*Did you mean 'b1_relu1'"
    ):
        ker.plan_erasure(model, select="b1_relu")
    with pytest.raises(ValueError, match="`exclude` entry 'zzz' matched no site"):
        ker.erase_relu(model, exclude=["zzz"])
    with pytest.raises(ValueError, match="function <lambda> matched no site"):
        ker.plan_erasure(model, select=lambda site: False)


def test_out_of_range_indices(model):
    with pytest.raises(
        IndexError, match="index 99 is out of range.*valid indices -6 to 5"
    ):
        ker.plan_erasure(model, select=99)
    with pytest.raises(
        IndexError, match="where=5 is out of range for module 0 .*'b1_out'"
    ):
        ker.plan_erasure(model, where=5)
    with pytest.raises(IndexError, match="`modules` index 7 is out of range"):
        ker.plan_erasure(model, modules=7)


def test_unknown_where_kinds_and_ratio(model):
    with pytest.raises(
        ValueError, match="Unknown where='lats'.*'last', 'first', 'all'"
    ):
        ker.plan_erasure(model, where="lats")
    with pytest.raises(
        ValueError, match="Unknown activation kind 'rleu'.*Did you mean 'relu'"
    ):
        ker.plan_erasure(model, kinds="rleu")
    with pytest.raises(ValueError, match=r"`ratio` must be a number in \[0, 1\]"):
        ker.plan_erasure(model, ratio=1.5)
    with pytest.raises(ValueError, match="Unknown ratio_from='middle'"):
        ker.plan_erasure(model, ratio_from="middle")
    with pytest.raises(TypeError, match="entries must be names.*float"):
        ker.plan_erasure(model, select=1.5)


def test_plan_and_placement_arguments_do_not_mix(model):
    plan = ker.plan_erasure(model)
    with pytest.raises(
        ValueError, match="either `plan=` or placement arguments.*exclude"
    ):
        ker.erase_relu(model, plan=plan, exclude="b1_out")
    with pytest.raises(TypeError, match="`plan` must be an ErasePlan"):
        ker.erase_relu(model, plan={"erased": []})


def test_plan_for_another_model_is_refused(model):
    other = keras.applications.VGG16(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    with pytest.raises(
        ValueError, match="made for model 'vgg16'.*not activation sites"
    ):
        ker.erase_relu(model, plan=ker.plan_erasure(other))


def test_nothing_half_done_on_failure(model):
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError):
        ker.erase_relu(model, select="missing")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
