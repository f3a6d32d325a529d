"""Images/s of `train()` itself: a callback that times every epoch's steps.

Shared by bench_backends.py and bench_gpu.py. The first step of each epoch
is left out (it waits for the input pipeline to start), and the first epoch
(tracing, XLA compilation) is reported but not counted.

Example:

```python
rate, per_epoch, result = time_train("cifar_resnet20", data, batch_size=128,
                                     epochs=3, steps=4, precision="float32")
```
"""

import statistics
import time

import keras

from keras_eraserelu.training import train


class StepTimer(keras.callbacks.Callback):
    """Images/s of each epoch, from the end of its first step to its last."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.marks = []

    def on_train_batch_end(self, batch, logs=None):
        self.marks.append(time.perf_counter())  # logs are synced by Keras

    def on_epoch_end(self, epoch, logs=None):
        steps = len(self.marks) - 1
        self.epochs.append(self.batch_size * steps / (self.marks[-1] - self.marks[0]))


def time_train(model, data, *, batch_size, epochs, steps, **train_kwargs):
    """(median images/s of epochs 2.., every epoch's images/s, TrainResult)."""
    timer = StepTimer(batch_size)
    result = train(
        model, data, epochs=epochs, batch_size=batch_size, steps_per_epoch=steps,
        validation_steps=1, callbacks=[timer], verbose=0, **train_kwargs,
    )  # fmt: skip
    return statistics.median(timer.epochs[1:]), timer.epochs, result
