"""Data: the catalogue of data sets, the input pipelines, augmentation.

Example:

```python
from keras_eraserelu.data import load_dataset
train = load_dataset("cifar10", "train", batch_size=128, seed=0)
```
"""

from keras_eraserelu.data.catalogue import (
    DATASETS,
    DatasetSpec,
    dataset_spec,
    digits_arrays,
    resolve_split,
)
from keras_eraserelu.data.pipelines import (
    distributed_dataset,
    load_dataset,
    numpy_dataset,
)

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "dataset_spec",
    "digits_arrays",
    "distributed_dataset",
    "load_dataset",
    "numpy_dataset",
    "resolve_split",
]
