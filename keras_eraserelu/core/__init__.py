"""The core: Keras only. The graph walker (ReLU sites in every form, module
ends), selectors, the erasure plan and its picture, the cloning engine,
`erase_relu`, `ErasableReLU`, `make_erasable` / `finalize_erasure`, and the
argument checks every layer above uses.

Example:

```python
from keras_eraserelu.core import erase_relu, plan_erasure
print(plan_erasure(model))
```
"""

from keras_eraserelu.core.checks import (
    check_bool,
    check_choice,
    check_int,
    check_model,
    check_number,
    check_type,
    did_you_mean,
    is_int,
    is_number,
)
from keras_eraserelu.core.cloning import Replacement, rewrite_model
from keras_eraserelu.core.erasable import (
    erasable_layers,
    finalize_erasure,
    make_erasable,
)
from keras_eraserelu.core.erasable_relu import ErasableReLU
from keras_eraserelu.core.flatgraph import is_graph_model
from keras_eraserelu.core.hub import register_kept_classes
from keras_eraserelu.core.modules import POOLING_LAYERS, Module
from keras_eraserelu.core.optional import (
    MissingTensorFlowError,
    tensorflow,
    tensorflow_available,
    tensorflow_loaded,
)
from keras_eraserelu.core.plan import (
    RATIO_FROM_CHOICES,
    WHERE_CHOICES,
    ErasePlan,
    erase_arguments,
    plan_erasure,
)
from keras_eraserelu.core.plan_plot import COLORS as PLAN_COLORS
from keras_eraserelu.core.rewrite import erase_relu
from keras_eraserelu.core.sites import (
    KNOWN_KINDS,
    RELU_KINDS,
    ReluSite,
    check_kinds,
    find_relus,
)

__all__ = [
    "MissingTensorFlowError",
    "POOLING_LAYERS",
    "ErasableReLU",
    "ErasePlan",
    "KNOWN_KINDS",
    "Module",
    "PLAN_COLORS",
    "RATIO_FROM_CHOICES",
    "RELU_KINDS",
    "ReluSite",
    "Replacement",
    "WHERE_CHOICES",
    "check_bool",
    "check_choice",
    "check_int",
    "check_kinds",
    "check_model",
    "check_number",
    "check_type",
    "did_you_mean",
    "erasable_layers",
    "erase_arguments",
    "erase_relu",
    "finalize_erasure",
    "find_relus",
    "is_graph_model",
    "is_int",
    "is_number",
    "make_erasable",
    "plan_erasure",
    "register_kept_classes",
    "rewrite_model",
    "tensorflow",
    "tensorflow_available",
    "tensorflow_loaded",
]
