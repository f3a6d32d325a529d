"""TensorFlow as an optional import: loaded when a module first uses it.

The rewriter, the registry and training on in-memory data run on JAX or
PyTorch where TensorFlow is not installed; tf.data pipelines, tf.distribute
and the tfds catalogue need it. A module that needs TensorFlow writes
`from keras_eraserelu.core.optional import tensorflow as tf` and calls `tf.`
as usual: the real import happens at the first attribute read, so importing
the package imports no TensorFlow, and a missing TensorFlow is reported
there, naming what needed it.

Example:

```python
from keras_eraserelu.core.optional import tensorflow as tf, tensorflow_available
if tensorflow_available():
    dataset = tf.data.Dataset.range(3)
```
"""

from __future__ import annotations

import functools
import importlib
import sys
import types


class MissingTensorFlowError(ImportError):
    """Something that needs TensorFlow ran where it cannot be imported
    (its `name` is "tensorflow", as a failed `import tensorflow` says)."""

    def __init__(self, message):
        super().__init__(message, name="tensorflow")


class _LazyTensorFlow(types.ModuleType):
    """Stands for the `tensorflow` module; imports it on first use."""

    def __getattr__(self, name):
        return getattr(_import_tensorflow(), name)


@functools.lru_cache(maxsize=1)
def _import_tensorflow():
    try:
        return importlib.import_module("tensorflow")
    except ImportError as error:
        raise MissingTensorFlowError(
            "This needs TensorFlow, which cannot be imported here "
            f"({error}). Install it (pip install tensorflow) for tf.data "
            "pipelines, tensorflow-datasets and tf.distribute; without it, the "
            "rewriter, the models and training on in-memory data (digits, "
            "NumPy arrays, a .npz file) run on KERAS_BACKEND=jax or torch."
        ) from error


tensorflow = _LazyTensorFlow("tensorflow")


@functools.lru_cache(maxsize=1)
def tensorflow_available():
    """Whether TensorFlow can be imported (it is, if it can)."""
    try:
        _import_tensorflow()
    except MissingTensorFlowError:
        return False
    return True


def tensorflow_loaded():
    """The `tensorflow` module if something imported it already, else None
    (then nothing can be a tf.data.Dataset or a tf.distribute strategy)."""
    return sys.modules.get("tensorflow")
