"""Tiny deterministic data and model shared by the distribute_* test scripts.

A Dense model without batch normalisation, so one step on a global batch gives
the same update however the batch is split over replicas.
"""

import numpy as np

GLOBAL_BATCH = 16
EPOCHS = 2


def make_data():
    rng = np.random.default_rng(0)
    x = rng.random((64, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [1.5]]) + 0.1).astype("float32")
    return x, y


def make_dataset():
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    x, y = make_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    return dataset.with_options(options)


def build_model():
    """A compiled 4-8-1 Dense model with fixed initial weights."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(1, name="out"),
        ]
    )
    rng = np.random.default_rng(1)
    model.set_weights(
        [rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    )
    model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    return model


def train(strategy):
    """Builds the model under `strategy`, fits it; returns (model, history)."""
    with strategy.scope():
        model = build_model()
    history = model.fit(
        make_dataset(),
        epochs=EPOCHS,
        validation_data=make_dataset(),
        shuffle=False,
        verbose=0,
    )
    return model, history.history
