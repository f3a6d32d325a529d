"""A progress bar that shows per-layer statistics as one mean each.

`ActivationStats` and `GradientStats` log one value per site or layer
(`dead/stage1_block1_out`, `grad_var/stage1_block1_conv1`, ...): the History
and TensorBoard keep them all, but Keras' progress bar prints every log, so
on a deep network each epoch's line would run to hundreds of values.
`LayerStatsProgbar` prints each family as its mean over layers
(`dead/mean`) and every other log as Keras does. `train` uses it; give it to
`fit` in `callbacks` to use it anywhere (Keras then adds no bar of its own).

Example:

```python
model.fit(x, y, epochs=5, verbose=2, callbacks=[
    ActivationStats(x[:256]), GradientStats(), LayerStatsProgbar(),
])
# 2/2 - 1s - loss: 2.31 - dead/mean: 0.0312 - zero/mean: 0.4861 - ...
```
"""

from __future__ import annotations

import keras
import numpy as np

from keras_eraserelu.training.callbacks import ActivationStats, GradientStats

PER_LAYER_FAMILIES = ActivationStats.LOG_FAMILIES + GradientStats.LOG_FAMILIES


class LayerStatsProgbar(keras.callbacks.ProgbarLogger):
    """Keras' `ProgbarLogger`, with per-layer statistics shown as means.

    Args:
        families: the log prefixes to summarize (a log `"<family>/<name>"`).
            Defaults to those of `ActivationStats` and `GradientStats`.

    Example:

    ```python
    model.fit(x, y, verbose=2, callbacks=[GradientStats(), LayerStatsProgbar()])
    ```
    """

    def __init__(self, families=PER_LAYER_FAMILIES):
        super().__init__()
        self.families = tuple(families)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, summarize_layer_logs(logs, self.families))


def summarize_layer_logs(logs, families=PER_LAYER_FAMILIES):
    """`logs` with each family's per-layer values replaced by their mean.

    Example:

    ```python
    summarize_layer_logs({"loss": 0.5, "dead/a": 0.0, "dead/b": 0.5})
    # {"loss": 0.5, "dead/mean": 0.25}
    ```
    """
    shown, grouped = {}, {}
    for key, value in (logs or {}).items():
        family = key.split("/", 1)[0]
        if "/" in key and family in families:
            grouped.setdefault(family, []).append(value)
        else:
            shown[key] = value
    for family, values in grouped.items():
        shown[f"{family}/mean"] = float(np.mean(values))
    return shown
