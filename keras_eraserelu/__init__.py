"""keras_eraserelu: EraseReLU (arXiv 1709.07634) for any Keras 3 model.

Example:

```python
import keras_eraserelu as ker
plan = ker.plan_erasure(model)       # dry run: which ReLUs, and why
new_model = ker.erase_relu(model)    # the last ReLU of every module made linear
folded, report = ker.fold_linear(new_model)   # fewer layers, same outputs
ker.models.create_model("cifar_resnet110", erase="last")
ker.training.train("cifar_resnet20", "cifar10", erase="last", out="runs/r20")
```

The package is laid out by layer, each a subpackage reachable as an
attribute: `core` (Keras only: the graph walker, the plan, the rewriter),
`models`, `data` and `folding` (`fold_linear`, Keras only) above it,
`training` above those, `experiments` and `tuning` on top. `experiments` and
`tuning` load on first use (`data` comes with `training`; TensorFlow
Datasets loads only when a catalogue data set is read).

Importing the package registers every class it can put in a `.keras` file
(layers, the optimizer and its schedule: `models` and `training` load with
it), so `keras.models.load_model(path)` opens those files in a new process
after `import keras_eraserelu`. `export_plain(model)` makes a copy that opens
with Keras alone.
"""

import importlib

from keras_eraserelu import core, data, folding, models, training
from keras_eraserelu.core import (
    KNOWN_KINDS,
    RELU_KINDS,
    ErasableReLU,
    ErasePlan,
    Module,
    ReluSite,
    erase_relu,
    finalize_erasure,
    find_relus,
    make_erasable,
    plan_erasure,
)
from keras_eraserelu.folding import FoldReport, SpatialBias, fold_linear
from keras_eraserelu.models import export_plain
from keras_eraserelu.version import __version__ as __version__

_LAZY_SUBPACKAGES = ("experiments", "tuning")

__all__ = [
    "ErasableReLU",
    "ErasePlan",
    "FoldReport",
    "KNOWN_KINDS",
    "Module",
    "RELU_KINDS",
    "ReluSite",
    "SpatialBias",
    "core",
    "data",
    "erase_relu",
    "experiments",
    "export_plain",
    "finalize_erasure",
    "find_relus",
    "fold_linear",
    "folding",
    "make_erasable",
    "models",
    "plan_erasure",
    "training",
    "tuning",
]


def __getattr__(name):
    """`keras_eraserelu.experiments` and `.tuning`: imported when first used
    (Keras Tuner loads only then)."""
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"keras_eraserelu.{name}")
    raise AttributeError(f"module 'keras_eraserelu' has no attribute {name!r}")
