"""`ErasableReLU`: a ReLU that can be turned into the identity gradually.

It computes `relu(x) + alpha * min(x, 0)`, with a non-trainable scalar
`alpha`: 0 gives the ReLU, 1 the identity, values between a leaky ReLU of
slope `alpha`. Callbacks move `alpha` during training (VanillaNet's deep
training, Layer Folding, DepthShrinker), then `finalize_erasure` rewrites the
layer into `Identity` or `ReLU`.

Example:

```python
layer = ErasableReLU(alpha=0.25, name="block1_out")
layer(np.array([-4.0, 2.0]))    # [-1.0, 2.0]
layer.alpha.assign(1.0)          # now the identity
```
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_eraserelu")
class ErasableReLU(keras.layers.Layer):
    """`relu(x) + alpha * min(x, 0)` with a non-trainable scalar `alpha`.

    Args:
        alpha: float in [0, 1]. The initial negative slope: 0 is a ReLU, 1 the
            identity. Defaults to 0.0.
        **kwargs: base layer arguments (`name`, `dtype`, ...).
    """

    def __init__(self, alpha=0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(
                f"`alpha` must be in [0, 1] (0: ReLU, 1: identity). Received: "
                f"alpha={alpha!r}."
            )
        self.initial_alpha = float(alpha)
        self.alpha = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_alpha),
            trainable=False,
            autocast=False,
            name="alpha",
        )
        self.supports_masking = True

    def call(self, inputs):
        alpha = ops.cast(self.alpha, inputs.dtype)
        return ops.relu(inputs) + alpha * ops.minimum(inputs, 0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        # The current alpha, so that a saved model rebuilds where it stood.
        return {**super().get_config(), "alpha": float(self.alpha.numpy())}
