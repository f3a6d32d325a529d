"""Small layers the model families need, registered for saving and loading.

`ZeroPadShortcut` is the parameter-free "option A" shortcut of the CIFAR
ResNets (He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", 2016, arXiv 1512.03385, section 4.2): it subsamples the
feature map by the stride and pads the new channels with zeros, so a
residual block can change shape without a projection.

Example:

```python
x = keras.Input((32, 32, 16))
y = ZeroPadShortcut(filters=32, strides=2, name="stage2_block1_shortcut")(x)
y.shape   # (None, 16, 16, 32)
```
"""

from __future__ import annotations

import keras

from keras_eraserelu.core import check_int


@keras.saving.register_keras_serializable(package="keras_eraserelu")
class ZeroPadShortcut(keras.layers.Layer):
    """Identity shortcut that subsamples by `strides` and zero-pads channels.

    The output keeps every `strides`-th row and column of the input
    (starting at the first), then appends `filters - channels` channels of
    zeros after the input channels. It has no weights. With `strides=1` and
    `filters` equal to the input channels it is the identity.

    Args:
        filters: int. Number of output channels; at least the number of
            input channels.
        strides: int. Spatial subsampling factor. Defaults to 1.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Example:

    ```python
    shortcut = ZeroPadShortcut(64, strides=2, name="stage3_block1_shortcut")
    shortcut(keras.ops.ones((2, 16, 16, 32))).shape   # (2, 8, 8, 64)
    ```
    """

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.strides = check_int("strides", strides, minimum=1)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "ZeroPadShortcut expects 4D inputs (batch, height, width, "
                f"channels). Received: input_shape={tuple(input_shape)}."
            )
        channels = input_shape[-1]
        if channels is None or channels > self.filters:
            raise ValueError(
                f"ZeroPadShortcut '{self.name}' cannot pad {channels} input "
                f"channels to filters={self.filters}: `filters` must be at least "
                "the (known) number of input channels."
            )
        self.built = True

    def call(self, inputs):
        if self.strides > 1:
            # A 1x1 average pool keeps every `strides`-th row and column,
            # exactly as a strided slice does, but its TensorFlow kernels
            # (forward and gradient) run 3-4x faster than StridedSlice's
            # (benchmarks/bench_shortcut.py).
            inputs = keras.ops.average_pool(
                inputs,
                pool_size=1,
                strides=self.strides,
                padding="valid",
                data_format="channels_last",
            )
        extra = self.filters - inputs.shape[-1]
        if extra == 0:
            return inputs
        return keras.ops.pad(inputs, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape

        def subsample(size):
            return None if size is None else -(-size // self.strides)

        return (batch, subsample(height), subsample(width), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "strides": self.strides})
        return config
