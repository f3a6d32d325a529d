"""The named training recipes of the papers, and the default one per model.

EraseReLU (Dong et al. 2017, arXiv 1709.07634) trained each family with the
settings of that family's own paper; these recipes are those settings, as
`Recipe`s (`keras_eraserelu.training.recipe`, whose `Recipe` and `RecipeSchedule` are
importable from here too). Rates are given at the paper's batch and scale
linearly with the global batch.

| recipe | arXiv | epochs | batch | lr | momentum | wd | schedule |
|---|---|---|---|---|---|---|---|
| he_cifar | 1512.03385 | 164 | 128 | 0.1 | 0.9 | 1e-4 | /10 at 50%, 75% |
| he_cifar_warmup | 1512.03385 | 164 | 128 | 0.1 | 0.9 | 1e-4 | he_cifar, 0.01 epoch 1 |
| preact_cifar | 1603.05027 | 164 | 128 | 0.1 | 0.9 | 1e-4 | as he_cifar_warmup |
| wrn_cifar | 1605.07146 | 200 | 128 | 0.1 | 0.9 Nesterov | 5e-4 | x0.2 at 30, 60, 80% |
| resnext_cifar | 1611.05431 | 300 | 128 | 0.1 | 0.9 | 5e-4 | /10 at 50%, 75% |
| imagenet_step | 1706.02677 | 90 | 256 | 0.1 | 0.9 | 1e-4 | /10 at epochs 30, 60, 80 |
| imagenet_cosine | 1608.03983 | 90 | 256 | 0.1 | 0.9 | 1e-4 | cosine to 0 |

The two ImageNet recipes carry Goyal et al.'s 5-epoch "gradual" warm-up: the
rate ramps linearly from `base_lr` (the rate of the reference batch) to the
scaled rate. At the reference batch of 256 or below it is a no-op, so the
recipes are then the plain step (He et al.) and cosine schedules.

Example:

```python
recipe = get_recipe(recipe_for_model("cifar_resnet110"))   # he_cifar_warmup
recipe.learning_rate(epoch=100, global_batch_size=256)     # 0.02
model.compile(optimizer=recipe.optimizer(steps_per_epoch=196,
                                         global_batch_size=256), ...)
```
"""

from __future__ import annotations

import dataclasses
import re

from keras_eraserelu.core import check_choice, check_type, did_you_mean
from keras_eraserelu.training.recipe import Recipe

# First matching rule wins; recipe_for_model() documents them.
_MODEL_RULES = (
    (r"wrn.*", "wrn_cifar"),
    (r"resnext.*", "resnext_cifar"),
    (r"cifar_preact.*", "preact_cifar"),
    (r"cifar_resnet(\d+)", None),  # by depth, see recipe_for_model
    (r"cifar_.*|.*_tiny", "he_cifar"),
    (r"resnet(18|34|50|101|152)|vgg(16|19)|inception_v3|bn_inception", "imagenet_step"),
)


def get_recipe(name, **overrides):
    """The recipe `name`, with some fields replaced.

    Args:
        name: str. One of `list_recipes()`.
        **overrides: `Recipe` fields to replace, e.g. `epochs=10`.

    Returns:
        A `Recipe` (checked again with the overrides).

    Raises:
        ValueError: for an unknown name or field, or an invalid value.

    Example:

    ```python
    get_recipe("he_cifar", weight_decay=5e-4).weight_decay   # 0.0005
    ```
    """
    check_choice("recipe name", name, list_recipes())
    fields = [field.name for field in dataclasses.fields(Recipe)]
    for field in overrides:
        if field not in fields:
            raise ValueError(
                f"Unknown Recipe field {field!r} in the overrides of "
                f"get_recipe({name!r}). Valid fields: {fields}."
                f"{did_you_mean(field, fields)}"
            )
    return dataclasses.replace(_RECIPES[name], **overrides)


def list_recipes():
    """Sorted names of the built-in recipes."""
    return sorted(_RECIPES)


# The recipe of a model no rule covers (a user's model, a keras.applications
# name, a builder): the CIFAR ResNet recipe of He et al. 2016.
DEFAULT_USER_RECIPE = "he_cifar"


def default_recipe(model_name):
    """`recipe_for_model(model_name)` for the registry, else
    `DEFAULT_USER_RECIPE`.

    Example:

    ```python
    default_recipe("wrn28_10"), default_recipe("my_net")   # 'wrn_cifar', 'he_cifar'
    ```
    """
    try:
        return recipe_for_model(model_name)
    except ValueError:
        return DEFAULT_USER_RECIPE


def recipe_for_model(model_name):
    """The default recipe name for a model of the registry.

    `wrn*` -> wrn_cifar; `resnext*` -> resnext_cifar; `cifar_preact*` ->
    preact_cifar; `cifar_resnet<depth>` -> he_cifar_warmup for depth >= 110,
    he_cifar below; other `cifar_*` and the `*_tiny` test models ->
    he_cifar; resnet18..152, vgg16/19, inception_v3, bn_inception ->
    imagenet_step.

    Args:
        model_name: str. A model name (`list_models()`).

    Returns:
        A recipe name for `get_recipe`.

    Raises:
        ValueError: if no rule covers `model_name`.

    Example:

    ```python
    recipe_for_model("cifar_resnet56")    # 'he_cifar'
    ```
    """
    check_type("model_name", model_name, str)
    for pattern, recipe in _MODEL_RULES:
        match = re.fullmatch(pattern, model_name)
        if match and recipe is None:
            return "he_cifar_warmup" if int(match.group(1)) >= 110 else "he_cifar"
        if match:
            return recipe
    from keras_eraserelu.models import list_models

    hint = did_you_mean(model_name, list_models())
    raise ValueError(
        f"No default recipe for model {model_name!r}. Pass a recipe name "
        f"explicitly (one of {list_recipes()}).{hint}"
    )


_HE = "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. "
# fmt: off
_CIFAR = dict(epochs=164, batch_size=128, base_lr=0.1, momentum=0.9, nesterov=False,
              weight_decay=1e-4, schedule="step", milestones=(0.5, 0.75))
_IMAGENET = dict(epochs=90, batch_size=256, base_lr=0.1, momentum=0.9, nesterov=False,
                 weight_decay=1e-4, warmup_epochs=5.0, warmup="gradual")
_RECIPES = {recipe.name: recipe for recipe in (
    Recipe("he_cifar", **_CIFAR, source=_HE + "CVPR 2016, arXiv 1512.03385, section "
           "4.2: batch 128, lr 0.1 divided by 10 at 32k and 48k of 64k iterations "
           "(391 iterations per epoch: epochs 82 and 123 of 164)."),
    Recipe("he_cifar_warmup", **_CIFAR, warmup_epochs=1.0, warmup_lr=0.01,
           source=_HE + "arXiv 1512.03385, section 4.2: for ResNet-110 (and the "
           "deeper ResNet-1202) lr 0.01 for about 400 iterations (~1 epoch), then "
           "as he_cifar."),
    Recipe("preact_cifar", **_CIFAR, warmup_epochs=1.0, warmup_lr=0.01,
           source="He, Zhang, Ren, Sun. Identity Mappings in Deep Residual "
           "Networks. ECCV 2016, arXiv 1603.05027, appendix: the he_cifar schedule "
           "with the 0.01 warm-up for the first 400 iterations in all CIFAR runs "
           "(noted as not needed by the pre-activation unit)."),
    Recipe("wrn_cifar", **{**_CIFAR, "epochs": 200, "nesterov": True,
           "weight_decay": 5e-4, "milestones": (0.3, 0.6, 0.8)}, gamma=0.2,
           source="Zagoruyko, Komodakis. Wide Residual Networks. BMVC 2016, arXiv "
           "1605.07146: Nesterov momentum 0.9, lr 0.1 times 0.2 at epochs 60, 120, "
           "160 of 200, weight decay 5e-4, batch 128."),
    Recipe("resnext_cifar", **{**_CIFAR, "epochs": 300, "weight_decay": 5e-4},
           source="Xie, Girshick, Dollar, Tu, He. Aggregated Residual "
           "Transformations for Deep Neural Networks. CVPR 2017, arXiv 1611.05431, "
           "section 5.3: batch 128, lr 0.1 divided by 10 at epochs 150 and 225 of "
           "300, weight decay 5e-4."),
    Recipe("imagenet_step", **_IMAGENET, schedule="step",
           milestones=(1 / 3, 2 / 3, 8 / 9),
           source="Goyal et al. Accurate, Large Minibatch SGD: Training ImageNet "
           "in 1 Hour. arXiv 1706.02677: lr 0.1 per 256 images scaled linearly, "
           "divided by 10 at epochs 30, 60, 80 of 90, 5-epoch gradual warm-up; "
           "the ResNet recipe of He et al. (arXiv 1512.03385: batch 256, lr 0.1, "
           "weight decay 1e-4)."),
    Recipe("imagenet_cosine", **_IMAGENET, schedule="cosine",
           source="Loshchilov, Hutter. SGDR: Stochastic Gradient Descent with "
           "Warm Restarts. ICLR 2017, arXiv 1608.03983 (cosine annealing, one "
           "cycle, no restart); budget and warm-up of imagenet_step."),
)}
# fmt: on
