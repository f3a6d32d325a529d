"""Batch normalization on TensorFlow's fused kernel, for every builder.

Keras 3 computes `BatchNormalization` from separate ops: the moments, an
elementwise normalization, the gradient of each, and under mixed precision
casts to float32 and back. Keras 2, PyTorch and cuDNN run one fused kernel
forward and one backward. On the TensorFlow backend `FusedBatchNormalization`
calls that kernel (`FusedBatchNormV3`, which oneDNN and cuDNN implement);
a CIFAR ResNet-56 training step ran 1.25-1.45x faster at float32 and
1.4-2.3x faster at bfloat16 on a CPU (`benchmarks/bench_vs_pytorch.py`).

It is a drop-in subclass of `keras.layers.BatchNormalization`: the same
arguments, weights, config and numbers (the moving variance is updated with
the biased batch variance, as Keras does). Whatever the fused kernel cannot
do (other backends, masks, renorm, synchronized statistics, an axis other
than the last, inputs that are not 4D) runs Keras' own implementation.

Example:

```python
x = keras.Input((32, 32, 16))
y = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, name="bn")(x)
```
"""

from __future__ import annotations

import keras

_FUSED_DTYPES = ("float32", "bfloat16", "float16")


@keras.saving.register_keras_serializable(package="keras_eraserelu")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by one fused kernel.

    Takes exactly the arguments of `keras.layers.BatchNormalization` and
    gives the same outputs, gradients and moving statistics. Models built
    with it load wherever `keras_eraserelu` is imported.

    Example:

    ```python
    bn = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    y = bn(keras.ops.ones((8, 4, 4, 3)), training=True)
    ```
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # the fused path runs on TensorFlow only

        channels = inputs.shape[-1]
        scale = self.gamma if self.scale else tf.ones([channels], "float32")
        offset = self.beta if self.center else tf.zeros([channels], "float32")
        scale, offset = tf.cast(scale, "float32"), tf.cast(offset, "float32")
        if not (training and self.trainable):
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                scale,
                offset,
                mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance),
                epsilon=self.epsilon,
                is_training=False,
            )
            return tf.cast(outputs, self.compute_dtype)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, scale, offset, epsilon=self.epsilon, is_training=True
        )
        # The kernel returns the unbiased variance; Keras keeps the biased one.
        count = tf.cast(tf.size(inputs, out_type=tf.int64) // channels, "float32")
        variance = variance * ((count - 1.0) / tf.maximum(count, 1.0))
        rate = 1.0 - self.momentum  # moving <- momentum * moving + rate * batch
        self.moving_mean.assign_sub((self.moving_mean - mean) * rate)
        self.moving_variance.assign_sub((self.moving_variance - variance) * rate)
        return tf.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and not self.renorm
            and not self.synchronized
            and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES
        )
