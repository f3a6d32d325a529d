"""Training: recipes and schedules, the optimizer, precision, strategies and
the cluster (with the multi-worker fix), callbacks, monitors, the run
directory and `train`.

Example:

```python
from keras_eraserelu.training import train
result = train("cifar_resnet20", "cifar10", erase="last", out="runs/r20")
```
"""

from keras_eraserelu.training.callbacks import (
    ActivationStats,
    GradientStats,
    ProgressiveErase,
)
from keras_eraserelu.training.cluster import (
    is_chief,
    read_tf_config,
    worker_count,
    writable_dir,
)
from keras_eraserelu.training.compat import patch_multiworker_fit
from keras_eraserelu.training.fitting import FittedData, fit_data_to_model
from keras_eraserelu.training.history_plot import plot_history_stats
from keras_eraserelu.training.optimizers import CoupledSGD
from keras_eraserelu.training.paper_recipes import (
    DEFAULT_USER_RECIPE,
    default_recipe,
    get_recipe,
    list_recipes,
    recipe_for_model,
)
from keras_eraserelu.training.precision import (
    apply_precision,
    resolve_jit_compile,
    resolve_precision,
)
from keras_eraserelu.training.progress import LayerStatsProgbar
from keras_eraserelu.training.recipe import Recipe, RecipeSchedule
from keras_eraserelu.training.run_files import (
    HISTORY_FILE,
    MODEL_FILE,
    DamagedRunFileError,
    atomic_save_model,
    atomic_write_text,
    check_output_dir,
    check_same_run,
    checkpoint_epoch,
    clear_run,
    read_history,
    read_json,
)
from keras_eraserelu.training.run_lock import RunLock, RunLockedError
from keras_eraserelu.training.strategies import describe_strategy, make_strategy
from keras_eraserelu.training.trainer import (
    TrainResult,
    existing_run,
    run_identity,
    train,
)

__all__ = [
    "DEFAULT_USER_RECIPE",
    "ActivationStats",
    "CoupledSGD",
    "DamagedRunFileError",
    "FittedData",
    "GradientStats",
    "HISTORY_FILE",
    "LayerStatsProgbar",
    "MODEL_FILE",
    "ProgressiveErase",
    "Recipe",
    "RecipeSchedule",
    "RunLock",
    "RunLockedError",
    "TrainResult",
    "apply_precision",
    "atomic_save_model",
    "atomic_write_text",
    "check_output_dir",
    "check_same_run",
    "checkpoint_epoch",
    "clear_run",
    "default_recipe",
    "describe_strategy",
    "existing_run",
    "fit_data_to_model",
    "get_recipe",
    "is_chief",
    "list_recipes",
    "make_strategy",
    "patch_multiworker_fit",
    "plot_history_stats",
    "read_history",
    "read_json",
    "read_tf_config",
    "recipe_for_model",
    "resolve_jit_compile",
    "resolve_precision",
    "run_identity",
    "train",
    "worker_count",
    "writable_dir",
]
