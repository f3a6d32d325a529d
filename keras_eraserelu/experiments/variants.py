"""Variants: the arms of a comparison, and the check that each fits its data.

A `Variant` is a model (anything `model_source` accepts: a registry or
keras.applications name, a builder, a keras.Model, a .keras file), an erase
placement and a name; `as_variants` normalises `(model, erase)` pairs, names and
builders to `Variant`s; `depth_variants` makes CIFAR ResNets of several
depths for a depth sweep; `check_fits` builds a variant once for a data set
and checks its inputs and classes. `keras_eraserelu.experiments.comparison.compare`
trains them.

Example:

```python
variants = as_variants(["cifar_resnet20", ("cifar_resnet20", "last")])
[v.name for v in variants]          # ['cifar_resnet20-none', 'cifar_resnet20-last']
check_fits(variants[1], "cifar10")  # raises if it does not fit
depth_variants([20, 56])            # 4 variants, depth-major
```
"""

from __future__ import annotations

import dataclasses
import re

import keras

from keras_eraserelu.core import check_bool, erase_arguments, is_int
from keras_eraserelu.data import dataset_source
from keras_eraserelu.models import list_models, model_source


@dataclasses.dataclass(frozen=True)
class Variant:
    """One arm of a comparison: a model, an erase placement and a name.

    Args:
        model: a registry or keras.applications name, a builder called as
            `builder(input_shape=..., classes=..., erase=...)`, a keras.Model
            or a `.keras` path (see `model_source`).
        erase: "none", "last", "first", "all", an int k or site names.
            Defaults to "none".
        name: str or None. Directory and table name. Defaults to
            `"<model>-<erase>"`.
        depth: int or None. For depth sweeps. Defaults to the number ending
            a `...resnet<depth>` model name.
        model_kwargs: dict or None. More builder arguments.
        reinitialize: bool or None. A given model starts each seed from
            fresh weights drawn under the seed (True) or from its own (False).
            None: True, except for a KerasHub preset. Defaults to None.

    Example:

    ```python
    Variant("cifar_resnet56", "last").name             # 'cifar_resnet56-last'
    Variant(my_builder, "last", name="mine", depth=50)
    ```
    """

    model: object
    erase: object = "none"
    name: str | None = None
    depth: int | None = None
    model_kwargs: dict | None = None
    reinitialize: bool | None = None
    source: object = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.reinitialize is not None:
            check_bool("reinitialize", self.reinitialize)
        source = model_source(self.model, reinitialize=self.reinitialize)
        object.__setattr__(self, "source", source)
        if self.erase not in (None, "none"):
            erase_arguments(self.erase)  # raises for an unknown placement
        erase = "none" if self.erase is None else self.erase
        object.__setattr__(self, "erase", erase)
        if self.name is None:
            object.__setattr__(self, "name", f"{self.model_name}-{_label(erase)}")
        if not isinstance(self.name, str) or not re.fullmatch(r"[\w.+=-]+", self.name):
            raise ValueError(
                "A variant name must be a non-empty str of letters, digits and "
                f"'_.+=-' (it names a directory). Received: name={self.name!r}."
            )
        if self.depth is None:
            match = re.search(r"resnet(\d+)$", self.model_name)
            object.__setattr__(self, "depth", int(match.group(1)) if match else None)

    @property
    def model_name(self):
        """The model's name: the registry name, the builder's, the model's."""
        return self.source.name

    @property
    def erased(self):
        return self.erase != "none"


def as_variants(variants, reinitialize=None):
    """Normalises variant specifications to a list of `Variant`s.

    Args:
        variants: a list of `Variant`, `(model, erase)` pairs, or models
            (erase "none": names, builders, keras.Model, .keras paths); or
            one of them.
        reinitialize: bool or None. For the variants made here (a `Variant`
            keeps its own). Defaults to None (see `Variant`).

    Returns:
        A list of `Variant` with distinct names.

    Raises:
        TypeError: for an entry of another type.
        ValueError: for an empty list, an unknown model or placement, or a
            name used twice.

    Example:

    ```python
    as_variants(["cifar_resnet20", ("cifar_resnet20", "last")])
    ```
    """
    if isinstance(variants, (str, Variant, keras.Model)) or callable(variants):
        variants = [variants]
    if not isinstance(variants, (list, tuple)) or not variants:
        raise ValueError(
            "`variants` must be a non-empty list of Variant, (model, erase) "
            f"pairs, registry names or builders. Received: variants={variants!r}."
        )
    result = []
    for spec in variants:
        if isinstance(spec, Variant):
            result.append(spec)
        elif isinstance(spec, tuple) and len(spec) == 2:
            result.append(Variant(*spec, reinitialize=reinitialize))
        elif isinstance(spec, str) or callable(spec):
            result.append(Variant(spec, reinitialize=reinitialize))
        else:
            raise TypeError(
                "Each variant must be a Variant, a (model, erase) pair, a "
                "registry name, a builder, a keras.Model or a .keras path. "
                f"Received: {spec!r}."
            )
    names = [v.name for v in result]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(
            f"Variant names must be distinct; {repeated} appear more than once. "
            "Give each a `name=`."
        )
    return result


def depth_variants(depths, erase=("none", "last")):
    """CIFAR ResNet variants of several depths, for "deeper benefits more".

    Args:
        depths: list of int, each 6n + 2 (20, 56, 110; unregistered depths
            such as 14 use `cifar_resnet(depth)`).
        erase: placements per depth. Defaults to ("none", "last").

    Returns:
        A list of `Variant`, depth-major.

    Example:

    ```python
    compare(depth_variants([20, 56, 110]), "cifar10", seeds=5, out="sweep")
    ```
    """
    from keras_eraserelu.models import cifar_resnet

    result = []
    for depth in depths:
        if not is_int(depth) or depth < 8:
            raise ValueError(f"Each depth must be an int 6n + 2. Received: {depth!r}.")
        depth = int(depth)
        if (depth - 2) % 6:
            raise ValueError(
                f"Each depth must be 6n + 2 (8, 14, 20, 26, ...). Received: {depth}."
            )
        model = f"cifar_resnet{depth}"
        if model not in list_models():
            model = _depth_builder(cifar_resnet, depth)
        result.extend(Variant(model, placement, depth=depth) for placement in erase)
    return result


def check_fits(variant, dataset):
    """Builds `variant` for the data set once and checks inputs and classes.

    `compare` calls it for every variant before it trains anything.

    Args:
        variant: a `Variant`.
        dataset: a `DataSource` or anything `dataset_source` accepts. The
            data set it will train on.

    Raises:
        ValueError (TypeError for a builder's bad signature): if the builder
            fails for the data set's image shape, ignores `input_shape=` or
            `classes=`, or the placement selects no site.

    Example:

    ```python
    check_fits(Variant("resnet_tiny"), "digits")  # ValueError: ... too small
    ```
    """
    from keras_eraserelu.core import plan_erasure

    spec = dataset_source(dataset).spec
    shape, _ = variant.source.fitted_input(spec.image_shape)
    classes = spec.num_classes
    try:
        model = variant.source.build(shape, classes, **(variant.model_kwargs or {}))
        if variant.erased:
            plan_erasure(model, **erase_arguments(variant.erase))
    except (ValueError, TypeError) as error:
        raise type(error)(
            f"Variant {variant.name!r} cannot be built for the data set "
            f"{spec.name!r} (images {shape}, {classes} classes): {error}"
        ) from error
    got_shape, got_classes = tuple(model.input_shape[1:]), model.output_shape[-1]
    keras.backend.clear_session()
    fits = all(g in (None, s) for g, s in zip(got_shape, shape))
    if len(got_shape) != len(shape) or not fits or got_classes != classes:
        raise ValueError(
            f"Variant {variant.name!r} does not fit the data set {spec.name!r}: "
            f"its model takes inputs of shape {got_shape} and predicts "
            f"{got_classes} classes; {spec.name!r} has images of shape {shape} "
            f"and {classes} classes. A builder must honour `input_shape=` and "
            "`classes=`."
        )


def _label(erase):
    if isinstance(erase, str):
        return erase
    if isinstance(erase, int):
        return f"k{erase}"
    return "sites"


def _depth_builder(cifar_resnet, depth):
    def builder(**kwargs):
        return cifar_resnet(depth, **kwargs)

    builder.__name__ = f"cifar_resnet{depth}"
    return builder
