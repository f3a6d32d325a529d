"""keras_eraserelu: EraseReLU (arXiv 1709.07634) for any Keras 3 model.

Example:

```python
import keras_eraserelu as ker
plan = ker.plan_erasure(model)       # dry run: which ReLUs, and why
new_model = ker.erase_relu(model)    # the last ReLU of every module made linear
```

Training, data, experiments, tuning and callbacks live in their own modules
(`keras_eraserelu.training`, `.data`, `.experiments`, `.tuning_search`,
`.callbacks`), so that importing the rewriter needs Keras alone.

Importing the package registers every class it can put in a `.keras` file
(layers, the optimizer and its schedule), so `keras.models.load_model(path)`
opens those files in a new process after `import keras_eraserelu`.
`export_plain(model)` makes a copy that opens with Keras alone.
"""

# Registers every class the package can put in a `.keras` file: CoupledSGD,
# RecipeSchedule, FusedBatchNormalization, ZeroPadShortcut (and ErasableReLU
# below). These modules import nothing that Keras does not import itself (no
# TensorFlow Datasets, no Keras Tuner).
from keras_eraserelu import models, optimizers, recipe  # noqa: F401
from keras_eraserelu.erasable import finalize_erasure, make_erasable
from keras_eraserelu.export import export_plain
from keras_eraserelu.graph.modules import Module
from keras_eraserelu.graph.sites import KNOWN_KINDS, RELU_KINDS, ReluSite, find_relus
from keras_eraserelu.layers import ErasableReLU
from keras_eraserelu.plan import ErasePlan, plan_erasure
from keras_eraserelu.rewrite import erase_relu

__version__ = "0.1.0"

__all__ = [
    "ErasableReLU",
    "ErasePlan",
    "KNOWN_KINDS",
    "Module",
    "RELU_KINDS",
    "ReluSite",
    "erase_relu",
    "export_plain",
    "finalize_erasure",
    "find_relus",
    "make_erasable",
    "plan_erasure",
]
