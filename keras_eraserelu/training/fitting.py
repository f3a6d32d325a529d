"""Data fitted to a model: what to build, what to resize to, how to normalize.

A model source says which images it wants: a user's model with a fixed
input size (the images are resized to it), a KerasHub preset with its image
converter's size and normalization (the data are normalized as the preset
expects instead of by their own statistics). `fit_data_to_model` applies
that to a data source, once, for `train`, `compare` and `tune_placements`.

Example:

```python
fitted = fit_data_to_model(model_source("hub:my_resnet"), dataset_source("cifar10"))
fitted.input_shape, fitted.image_size     # (224, 224, 3), (224, 224)
```
"""

from __future__ import annotations

import dataclasses

from keras_eraserelu.data import renormalized


@dataclasses.dataclass(frozen=True)
class FittedData:
    """What `fit_data_to_model` returns.

    Attributes:
        data: the `DataSource`, normalized as the model expects.
        input_shape: tuple. The (H, W, C) to build the model for.
        image_size: tuple or None. The (H, W) to resize the images to (None:
            as they are).
    """

    data: object
    input_shape: tuple
    image_size: tuple | None


def fit_data_to_model(model, data):
    """The data source, input shape and image size of `model` on `data`.

    Args:
        model: a `ModelSource`.
        data: a `DataSource`.

    Returns:
        A `FittedData`.
    """
    input_shape, image_size = model.fitted_input(data.spec.image_shape)
    if model.normalization is not None:
        data = renormalized(data, *model.normalization)
    return FittedData(data, input_shape, image_size)
