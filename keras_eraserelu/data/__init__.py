"""Data: the catalogue of data sets, the input pipelines, augmentation.

Example:

```python
from keras_eraserelu.data import load_dataset
train = load_dataset("cifar10", "train", batch_size=128, seed=0)
mine = load_dataset((x, y), "train", batch_size=64)   # or a folder, a .npz, ...
```

tf.data is the engine wherever TensorFlow is installed; where it is not,
in-memory data (digits, arrays, a .npz file) come as the same stream in a
`keras.utils.PyDataset` (`ArrayBatches`).
"""

from keras_eraserelu.data.array_batches import ArrayBatches
from keras_eraserelu.data.catalogue import (
    DATASETS,
    DatasetSpec,
    dataset_spec,
    digits_arrays,
    resolve_split,
)
from keras_eraserelu.data.data_source import (
    DataSource,
    InMemoryArrays,
    renormalized,
)
from keras_eraserelu.data.pipelines import (
    distributed_dataset,
    load_dataset,
    numpy_dataset,
)
from keras_eraserelu.data.registered import register_dataset, registered_names
from keras_eraserelu.data.sources import dataset_source

__all__ = [
    "ArrayBatches",
    "DATASETS",
    "DataSource",
    "DatasetSpec",
    "InMemoryArrays",
    "dataset_source",
    "dataset_spec",
    "digits_arrays",
    "distributed_dataset",
    "load_dataset",
    "numpy_dataset",
    "register_dataset",
    "registered_names",
    "renormalized",
    "resolve_split",
]
