"""KerasHub models keep their class through every rewrite, and through saving.

A KerasHub backbone or task (`keras_hub.models.ResNetBackbone`,
`ResNetImageClassifier`, ...) is a Functional model whose constructor builds
its graph from flat arguments: its `get_config()` returns those arguments and
its `from_config` is `cls(**config)`, so `keras.models.clone_model` can only
return a plain `Functional`. The rewriter (`cloning.py`) hands such a model
to `rebuild` instead, which returns an instance of its *kept class*: a
subclass of the original class, of the same name, registered for saving as
`keras_eraserelu.hub>ResNetBackbone`, that

- holds the rewritten graph and what the original's constructor set: its
  configuration attributes, `pyramid_outputs` (on the new tensors), name,
  dtype policy, trainable flag and compile state; for a task, its head, its
  `backbone` (kept as well) and its `preprocessor` (the same layer);
- adds to `get_config()` the layers that took the place of original ones
  (`eraserelu_rewrites`: one `{layer name: {"layer": ..., "after": ...}}`
  per rewrite), and in `from_config` builds the original class from its own
  arguments, then replays those replacements through the package's one
  rewriter on the constructor's layers. So `save_to_preset` then
  `from_preset`, and `.keras` files in safe mode, give back the rewritten
  model.

keras-hub finds the task, preprocessor or image converter of a preset by the
exact class of its backbone (`backbone_cls`): each KerasHub class with a
`backbone_cls` gets a kept twin whose `backbone_cls` is the kept backbone
class, so `keras_hub.models.ImageClassifier.from_preset(dir)` finds the task
of a rewritten backbone.

keras_hub is imported only when a KerasHub model is met (a class of its MRO
lives in the `keras_hub` package). The kept classes are made for every
KerasHub class then, and when this package is imported after keras_hub: in a
new process, import keras_hub before keras_eraserelu to open a saved
rewritten model with Keras or keras-hub (`create_model("hub:DIR")` of
`keras_eraserelu.models` does it for you).

Example:

```python
backbone = keras_hub.models.ResNetBackbone.from_preset("resnet_50_imagenet")
erased = erase_relu(backbone)        # a ResNetBackbone, every name kept
erased.pyramid_outputs               # P2 ... P5, on the erased graph
erased.save_to_preset("erased")      # ResNetBackbone.from_preset("erased")
```
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping

import keras

from keras_eraserelu.core.cloning import CLASS_KEEPERS, Replacement, rewrite_model
from keras_eraserelu.core.hub_import import when_keras_hub_imported

HUB_PACKAGE = "keras_hub"
REWRITES = "eraserelu_rewrites"
_SAVED_PACKAGE = "keras_eraserelu.hub"
_PLAIN = (type(None), bool, int, float, str)
_KEPT = {}  # original KerasHub class -> its kept class


def kept_class(original):
    """The kept class of a KerasHub class (a kept class is its own)."""
    original = getattr(original, "eraserelu_original", original)
    if original not in _KEPT:
        _KEPT[original] = _make_kept(original)
    return _KEPT[original]


def register_kept_classes():
    """Makes and registers the kept class of every KerasHub model class, and
    of every class keyed by a backbone class, imported so far (idempotent)."""
    hub_models = sys.modules[HUB_PACKAGE].models
    levels = (hub_models.Backbone, hub_models.Task)
    for candidate in list(keras.saving.get_custom_objects().values()):
        if not isinstance(candidate, type) or not _in_hub(candidate):
            continue
        if issubclass(candidate, levels) or getattr(candidate, "backbone_cls", None):
            kept_class(candidate)


def rebuild(model, rewriter):
    """The keeper of KerasHub models: `model`'s graph rewritten by `rewriter`,
    as an instance of its kept class (see the module docstring)."""
    hub_models = _keras_hub().models
    original = getattr(type(model), "eraserelu_original", type(model))
    levels = [lvl for lvl in (hub_models.Task, hub_models.Backbone)
              if issubclass(original, lvl)]  # fmt: skip
    if not levels:
        warnings.warn(
            f"'{model.name}' is a {original.__name__} from keras_hub, neither a "
            "Backbone nor a Task: it is rewritten as a plain Functional model.",
            stacklevel=2,
        )
        inputs, outputs, _ = rewriter.clone(model)
        return keras.Model(inputs, outputs, name=model.name)
    properties, attributes = _state(model)
    tensors = _tensors_in([properties, attributes])
    inputs, outputs, images = rewriter.clone(model, tensors)
    tensor_images = {id(tensor): image for tensor, image in zip(tensors, images)}

    def image_of(value):
        if isinstance(value, keras.KerasTensor):
            return tensor_images[id(value)]
        if isinstance(value, keras.layers.Layer):
            new = rewriter.image(value)
            return value if new is None else new
        return value

    kept = kept_class(original)
    instance = kept.__new__(kept)
    for name, value in properties.items():  # a task's constructor reads them
        setattr(instance, name, _map(value, image_of))
    if levels[0] is hub_models.Task:
        settings = {"compile": False}  # the model's own compile state follows
    else:
        settings = {"dtype": model.dtype_policy}
    levels[0].__init__(
        instance, inputs=inputs, outputs=outputs, name=model.name, **settings
    )
    for name, value in attributes.items():
        if name not in vars(instance):
            setattr(instance, name, _map(value, image_of))
    rewrites = (*rewrites_of(model), *_recorded(model, rewriter))
    object.__setattr__(instance, "_eraserelu_rewrites", rewrites)
    if model.compiled:
        compiled = keras.saving.deserialize_keras_object(model.get_compile_config())
        instance.compile(**compiled)
    return instance


def rewrites_of(model):
    """The replacements recorded in a kept model, one dict per rewrite."""
    return tuple(getattr(model, "_eraserelu_rewrites", ()))


def _keras_hub():
    import keras_hub  # the optional `hub` extra: only KerasHub models lead here

    register_kept_classes()
    return keras_hub


def _make_kept(original):
    namespace = {
        "__module__": __name__,
        "__qualname__": original.__name__,
        "__doc__": f"`{original.__name__}` as rewritten by keras_eraserelu: "
        "its config also holds the layers that replaced original ones.",
        "eraserelu_original": original,
    }
    backbone = getattr(original, "backbone_cls", None)
    if backbone is not None:
        namespace["backbone_cls"] = kept_class(backbone)
    if issubclass(original, keras.Model):
        namespace["get_config"] = _get_config
        namespace["from_config"] = classmethod(_from_config)
    kept = type(original.__name__, (original,), namespace)
    register = keras.saving.register_keras_serializable(
        package=_SAVED_PACKAGE, name=original.__name__
    )
    return register(kept)


def _get_config(self):
    config = self.eraserelu_original.get_config(self)
    config[REWRITES] = [dict(names) for names in rewrites_of(self)]
    return config


def _from_config(cls, config):
    config = dict(config)
    rewrites = config.pop(REWRITES, [])
    model = cls.eraserelu_original.from_config(config)
    for names in rewrites or [{}]:  # at least once, to become the kept class
        model = _replay(model, names)
    return model


def _replay(model, names):
    """`model` rewritten with the recorded replacements `names`, on its own
    layers (shared weights)."""
    own = {id(operation): operation.name for operation in model.operations}

    def replace(operation, copy):
        recorded = names.get(own.get(id(operation)))
        if recorded is None:
            return None
        after = recorded.get("after")
        return Replacement(
            keras.saving.deserialize_keras_object(recorded["layer"]),
            None if after is None else keras.saving.deserialize_keras_object(after),
        )

    return rewrite_model(model, replace, share_weights=True)


def _recorded(model, rewriter):
    """The replacements `rewriter` made in `model`'s own graph, serialized."""
    names = {}
    for operation in model.operations:
        replacement = rewriter.replacement_of(operation)
        if replacement is None:
            continue
        after = replacement.after
        names[operation.name] = {
            "layer": keras.saving.serialize_keras_object(replacement.layer),
            "after": None
            if after is None
            else keras.saving.serialize_keras_object(after),
        }
    return [names] if names else []


def _state(model):
    """What the constructor of `model` set: the settable properties of its
    KerasHub classes (`pyramid_outputs`, a task's `backbone` ...) and its
    public attributes holding plain data, tensors or layers."""
    properties = {}
    for klass in reversed(type(model).__mro__):
        if not _in_hub(klass):
            continue
        for name, attribute in vars(klass).items():
            if isinstance(attribute, property) and attribute.fset and name[0] != "_":
                properties[name] = getattr(model, name)
    attributes = {
        name: value
        for name, value in vars(model).items()
        if name[0] != "_" and name not in properties and _is_state(value)
    }
    return properties, attributes


def _is_state(value):
    if isinstance(value, (*_PLAIN, keras.KerasTensor, keras.layers.Layer)):
        return True
    if isinstance(value, Mapping):
        return all(_is_state(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(_is_state(item) for item in value)
    return False


def _map(value, function):
    """`value` with `function` applied to every leaf of its dicts, lists and
    tuples (Keras' tracked containers become plain ones)."""
    if isinstance(value, Mapping):
        return {key: _map(item, function) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_map(item, function) for item in value)
    if isinstance(value, list):
        return [_map(item, function) for item in value]
    return function(value)


def _tensors_in(value):
    found = []

    def collect(leaf):
        if isinstance(leaf, keras.KerasTensor):
            found.append(leaf)

    _map(value, collect)
    return found


def _in_hub(klass):
    return klass.__module__.partition(".")[0] == HUB_PACKAGE


CLASS_KEEPERS[HUB_PACKAGE] = rebuild
when_keras_hub_imported(register_kept_classes, HUB_PACKAGE)
