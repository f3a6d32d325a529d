"""Register the kept KerasHub classes whenever keras_hub is imported.

A file holding an erased KerasHub model names its kept class
(`keras_eraserelu.hub>ResNetBackbone`, see `keras_eraserelu.core.hub`),
which exists only once keras_hub is imported and the kept classes are
registered. `import keras_eraserelu` must not import keras_hub (seconds, and
an optional extra), so `when_keras_hub_imported(register)` runs `register`
at once if keras_hub is loaded already, else right after a later
`import keras_hub` finishes (a finder on `sys.meta_path` that wraps the
module's loader once, then removes itself). Then `load_model` opens such a
file whichever of the two packages was imported first.

Example:

```python
import keras_eraserelu, keras_hub          # either order
model = keras.models.load_model("erased_resnet.keras")
```
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys


def when_keras_hub_imported(register, package="keras_hub"):
    """Calls `register()` now if `package` is imported, else once it is."""
    if package in sys.modules:
        register()
        return
    if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(package, register))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds `package` through the other finders, and runs `register` after
    its module has executed."""

    def __init__(self, package, register):
        self.package = package
        self.register = register

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.package:
            return None
        sys.meta_path.remove(self)  # once: the next lookups go straight through
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            self.register()

        spec.loader.exec_module = exec_module
        return spec
