"""Shared fixtures: quiet TensorFlow, a fixed seed, float32 after every test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def seed_and_policy():
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def images():
    """A batch of 2 random 32x32 RGB images."""
    return np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
