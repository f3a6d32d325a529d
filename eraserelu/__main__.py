"""`python -m eraserelu`: the same as the `eraserelu` console script.

Example:

```
python -m eraserelu inspect cifar_resnet20
```
"""

import sys

from eraserelu.cli import run

if __name__ == "__main__":
    sys.exit(run())
