"""`SpatialBias`: adds a bias that may differ at each position.

When a chain such as 1x1 convolution -> 3x3 depthwise (padding="same") ->
1x1 convolution is merged into one 3x3 convolution, the first layer's bias
reaches the output everywhere except where the depthwise layer's zero
padding cut it off: along the borders the merged map's bias differs. A
convolution's bias is one value per channel, so `fold_linear` gives the
merged convolution no bias and follows it with this layer, whose weight is
the whole bias map (the shape of one output example). Then comes the
activation the chain ended with.

It is registered with Keras (`keras_eraserelu>SpatialBias`): a folded model
that holds one opens with `keras.models.load_model` after
`import keras_eraserelu`.

Example:

```python
layer = SpatialBias(activation="relu6", name="block_2_project_bias")
y = layer(keras.ops.zeros((1, 8, 8, 24)))   # builds a (8, 8, 24) bias map
```
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_eraserelu")
class SpatialBias(keras.layers.Layer):
    """Adds a bias map of the shape of one example, then an activation.

    Args:
        activation: activation name or callable applied after the bias.
            Defaults to None (linear).
        data_format: str. `"channels_last"` or `"channels_first"`: how the
            map is laid out (read by `fold_linear`; the sum is the same).
            Defaults to Keras' image data format.
        **kwargs: base layer arguments (`name`, `dtype`).

    Example:

    ```python
    y = SpatialBias(name="conv_bias")(x)    # x: (batch, 8, 8, 16)
    ```
    """

    def __init__(self, activation=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.data_format = data_format or keras.config.image_data_format()

    def build(self, input_shape):
        self.bias = self.add_weight(
            name="bias", shape=tuple(input_shape[1:]), initializer="zeros"
        )

    def call(self, inputs):
        return self.activation(inputs + keras.ops.cast(self.bias, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "activation": keras.activations.serialize(self.activation),
            "data_format": self.data_format,
        }
