"""keras_eraserelu: EraseReLU (arXiv 1709.07634) for any Keras 3 model.

Example:

```python
import keras_eraserelu as ker
plan = ker.plan_erasure(model)       # dry run: which ReLUs, and why
new_model = ker.erase_relu(model)    # the last ReLU of every module made linear
```
"""

from keras_eraserelu.graph.modules import Module
from keras_eraserelu.graph.sites import KNOWN_KINDS, RELU_KINDS, ReluSite, find_relus
from keras_eraserelu.plan import ErasePlan, plan_erasure
from keras_eraserelu.rewrite import erase_relu

__version__ = "0.1.0"

__all__ = [
    "ErasePlan",
    "KNOWN_KINDS",
    "Module",
    "RELU_KINDS",
    "ReluSite",
    "erase_relu",
    "find_relus",
    "plan_erasure",
]
