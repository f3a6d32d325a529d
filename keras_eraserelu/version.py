"""The package's version, read by setup.cfg and recorded in every run.

Example:

```python
from keras_eraserelu.version import __version__
```
"""

__version__ = "0.1.0"
