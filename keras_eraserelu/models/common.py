"""What every builder shares: the input, the classifier head, and the finish
(weights file, erasure), with keras.applications' arguments checked up front.

Example:

```python
inputs, x = model_input(input_tensor, input_shape, default=(32, 32, 3), min_size=8)
...  # the family's layers, every one named
outputs = classifier_head(x, include_top, pooling, classes, classifier_activation)
return finish_model(inputs, outputs, name, weights=weights, erase=erase)
```
"""

from __future__ import annotations

import os

import keras

from keras_eraserelu.core import (
    check_choice,
    check_int,
    erase_arguments,
    erase_relu,
    is_int,
)

POOLING_CHOICES = (None, "avg", "max")


def check_builder_args(include_top, weights, pooling, classes, classifier_activation):
    """Checks keras.applications' arguments before any layer is built."""
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise TypeError(
                "`weights` must be None or the path of a local weights file "
                f"(no downloads). Received: weights={weights!r}."
            )
        if not os.path.exists(weights):
            raise FileNotFoundError(
                f"Weights file not found: weights={str(weights)!r}. Expected None "
                "(random initialisation) or the path of an existing "
                "`.weights.h5` file saved from the same architecture."
            )
    check_choice("pooling", pooling, POOLING_CHOICES)
    check_int("classes", classes, minimum=1)
    if include_top and classifier_activation not in (None, "softmax", "linear"):
        keras.activations.get(classifier_activation)  # raises for unknown names


def model_input(input_tensor, input_shape, default, min_size, name="input"):
    """The input layer and tensor, from `input_tensor` or `input_shape`.

    Args:
        input_tensor: KerasTensor or None. Build the model on this tensor.
        input_shape: tuple or None. `(height, width, channels)`; defaults to
            `default`.
        default: tuple. The family's standard input shape.
        min_size: int. The smallest height and width the family accepts.
        name: str. Name of the input layer.

    Returns:
        `(inputs, x)`: what to pass to `keras.Model`, and the tensor to build on.
    """
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise TypeError(
                "`input_tensor` must be a KerasTensor from `keras.Input` or a "
                f"layer. Received: {input_tensor!r}."
            )
        shape = tuple(input_tensor.shape[1:])
    else:
        shape = tuple(default if input_shape is None else input_shape)
    if len(shape) != len(default) or any(
        d is not None and (not is_int(d) or d < 1) for d in shape
    ):
        raise ValueError(
            f"`input_shape` must be {len(default)} positive ints like {default} "
            f"(height, width, channels). Received: input_shape={shape}."
        )
    if any(d is not None and d < min_size for d in shape[:-1]):
        raise ValueError(
            f"`input_shape` {shape} is too small for this model: height and width "
            f"must be at least {min_size}."
        )
    if input_tensor is not None:
        sources = keras.utils.get_source_inputs(input_tensor)
        return (sources[0] if len(sources) == 1 else sources), input_tensor
    inputs = keras.Input(shape=shape, name=name)
    return inputs, inputs


def classifier_head(
    x, include_top, pooling, classes, classifier_activation, name="head", dropout=0.0
):
    """Global pooling and the classifier, as keras.applications does it.

    With `include_top`, global average pooling, a Dropout layer
    `{name}_dropout` when `dropout` is not 0, and a Dense classifier whose
    output is float32 even under a mixed-precision policy. Without it,
    `pooling` None / "avg" / "max" decides the feature output.
    """
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
        return classifier(x, classes, classifier_activation, name=f"{name}_fc")
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name=f"{name}_pool")(x)
    return x


def classifier(x, classes, classifier_activation, name):
    """A Dense classifier with a float32 output under any dtype policy."""
    return keras.layers.Dense(
        classes, activation=classifier_activation, dtype="float32", name=name
    )(x)


def finish_model(inputs, outputs, name, weights=None, erase=None):
    """The `keras.Model`, erased as asked, with weights loaded from a file.

    Args:
        inputs, outputs: the graph's ends.
        name: str. Model name.
        weights: str or None. A local weights file to load.
        erase: None (the original network), `"last"`, `"first"`, `"all"`, an
            int k, or a list of site names: the placement vocabulary of
            `erase_relu`.
    """
    model = keras.Model(inputs, outputs, name=name)
    if erase is not None and erase != "none":
        # Copied, not shared: layers of the discarded original stay out of
        # the new graph, so `layer.output` stays unambiguous.
        model = erase_relu(model, **erase_arguments(erase))
    if weights is not None:
        model.load_weights(weights)
    return model
