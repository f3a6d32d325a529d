"""The EraseReLU model zoo: builders registered by name.

Example:

```python
from keras_eraserelu.models import create_model, list_models
list_models("wrn*")                      # ['wrn16_8', 'wrn28_10', 'wrn40_4', ...]
model = create_model("cifar_resnet110", erase="last")
model_source(my_model).build((32, 32, 3), 10, erase="last")  # a fresh copy
```
"""

from keras_eraserelu.models import (  # noqa: F401  (registers the families)
    cifar_resnets,
    imagenet_resnet,
    inception,
    resnext,
    vgg,
    wide_resnet,
)
from keras_eraserelu.models.batch_norm import FusedBatchNormalization
from keras_eraserelu.models.cifar_resnets import cifar_resnet
from keras_eraserelu.models.export import export_plain
from keras_eraserelu.models.hub import (
    HUB_PREFIX,
    HubModel,
    HubPreprocessing,
    hub_preset_name,
    load_hub_model,
)
from keras_eraserelu.models.model_sources import (
    ModelSource,
    application_names,
    check_model_fits,
    model_source,
    output_is_probability,
)
from keras_eraserelu.models.registry import (
    create_model,
    get_builder,
    list_models,
    register_model,
)

__all__ = [
    "FusedBatchNormalization",
    "HUB_PREFIX",
    "HubModel",
    "HubPreprocessing",
    "ModelSource",
    "application_names",
    "check_model_fits",
    "cifar_resnet",
    "create_model",
    "export_plain",
    "get_builder",
    "hub_preset_name",
    "list_models",
    "load_hub_model",
    "model_source",
    "output_is_probability",
    "register_model",
]
