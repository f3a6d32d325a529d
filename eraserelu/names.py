"""The names the command line offers, without importing the library.

`keras_eraserelu` imports Keras as soon as any of its modules is imported, so
the parser cannot read the library's registries at `--help` time. These tuples
repeat them; `tests/test_cli_args.py` asserts that each one equals the
library's own, so a name added there and forgotten here fails a test.

Example:

```python
from eraserelu import names
"cifar10" in names.DATASETS      # True
```
"""

# keras_eraserelu.data.catalogue.DATASETS, sorted.
DATASETS = (
    "cifar10",
    "cifar100",
    "digits",
    "fashion_mnist",
    "imagenet2012",
    "mnist",
    "svhn_cropped",
)
# keras_eraserelu.training.paper_recipes.list_recipes().
RECIPES = (
    "he_cifar",
    "he_cifar_warmup",
    "imagenet_cosine",
    "imagenet_step",
    "preact_cifar",
    "resnext_cifar",
    "wrn_cifar",
)
# keras_eraserelu.training.strategies.STRATEGY_CHOICES (the names make_strategy takes).
STRATEGIES = ("auto", "cpu", "gpu", "mirrored", "multiworker", "tpu", "data_parallel")
# keras_eraserelu.training.distribution.BACKEND_STRATEGY_CHOICES (the names
# each Keras backend offers; STRATEGIES is their union).
BACKEND_STRATEGIES = {
    "tensorflow": ("auto", "cpu", "gpu", "mirrored", "multiworker", "tpu"),
    "jax": ("auto", "cpu", "data_parallel"),
    "torch": ("auto", "cpu"),
}
# keras_eraserelu.training.precision.PRECISION_CHOICES.
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
# keras_eraserelu.core.plan.WHERE_CHOICES: the position words of plan_erasure.
POSITIONS = ("last", "first", "all")
# What train / compare erase: nothing, or a position.
ERASE_WORDS = ("none", *POSITIONS)
# keras_eraserelu.core.plan.RATIO_FROM_CHOICES.
RATIO_FROM = ("start", "end")
# keras_eraserelu.core.sites.KNOWN_KINDS, its aliases, and "any".
KINDS = (
    "celu",
    "elu",
    "exponential",
    "gelu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_tanh",
    "leaky",
    "log_sigmoid",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "squareplus",
    "tanh",
    "tanh_shrink",
    "erasable",
    "thresholded",
)
KIND_ALIASES = ("hard_swish", "leaky_relu", "swish", "threshold_relu")
# keras_eraserelu.tuning.hypermodel.SPACES.
SPACES = ("per_module", "ratio", "position", "stage")
# keras_eraserelu.tuning.search.TUNERS and OBJECTIVES.
TUNERS = ("bayesian", "random", "hyperband", "grid")
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
# keras_eraserelu.folding.CHAIN_CHOICES, False written none.
FOLD_CHAINS = ("cheaper", "always", "none")
# The command line's own words.
JIT_COMPILE = ("auto", "on", "off")
TRAIN_VERBOSE = ("auto", "0", "1", "2")
