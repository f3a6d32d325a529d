"""Options that several `eraserelu` commands share, with their checks and help.

Each `add_*(parser)` adds one option (or a group) to a sub-command's parser,
with the `type=` check of `eraserelu.arguments` and a help text that lists
the valid choices and the default.

Example:

```python
train = commands.add_parser("train")
add_dataset(train)            # --dataset and the options of a user's data
add_training_arguments(train, each="the model family's")
```
"""

from __future__ import annotations

from eraserelu import arguments as a
from eraserelu import names

POSITIVE = a.int_at_least(1)
NON_NEGATIVE = a.int_at_least(0)
MODEL_HELP = (
    "a .keras file, a keras.applications name (ResNet50, built with "
    "weights=None), a registry name (cifar_resnet56) or a KerasHub preset "
    "(hub:PRESET_OR_DIR)"
)


def one_of(choices, default=None):
    """The help text `one of a, b, c. Defaults to X` of these choices."""
    listed = ", ".join(choices)
    return f"one of {listed}" + (f". Defaults to {default}" if default else "")


def add_training_arguments(parser, each):
    parser.add_argument("--epochs", type=POSITIVE, help="default: the recipe's")
    parser.add_argument(
        "--batch-size", type=POSITIVE, help="global batch; default: the recipe's"
    )
    add_recipe(parser, each)
    parser.add_argument(
        "--strategy",
        default="auto",
        type=a.choice(names.STRATEGIES),
        help="how training spreads over devices, by Keras backend: "
        + "; ".join(
            f"{backend}: {', '.join(choices)}"
            for backend, choices in names.BACKEND_STRATEGIES.items()
        )
        + ". Defaults to auto",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        type=a.choice(names.PRECISIONS),
        help=one_of(names.PRECISIONS, "auto"),
    )
    add_steps(parser)
    add_data_dir(parser)
    parser.add_argument(
        "--manual-dir",
        type=a.existing_dir,
        help="folder with the ImageNet tar files",
    )
    add_process_arguments(parser)


def add_process_arguments(parser):
    """--coordinator-address, --num-processes and --process-id: several JAX
    processes training one model (Keras' KERAS_DISTRIBUTION_* variables)."""
    group = parser.add_argument_group(
        "several JAX processes (KERAS_BACKEND=jax)",
        "run the same command in every process, each with its --process-id; "
        "process 0 writes --out. The same as setting "
        "KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and "
        "KERAS_DISTRIBUTION_PROCESS_ID.",
    )
    group.add_argument(
        "--coordinator-address",
        metavar="HOST:PORT",
        type=a.host_port,
        help="where process 0 listens for the others, e.g. 10.0.0.1:1234",
    )
    group.add_argument(
        "--num-processes",
        type=POSITIVE,
        metavar="N",
        help="an int >= 1: processes training together. Defaults to 1",
    )
    group.add_argument(
        "--process-id",
        type=NON_NEGATIVE,
        metavar="I",
        help="this process, an int from 0 to N - 1 (0 is the chief)",
    )


def add_dataset(parser):
    parser.add_argument(
        "--dataset",
        default="cifar10",
        type=a.dataset_value,
        help=f"{one_of(names.DATASETS)}; or tfds:NAME (any tensorflow-datasets "
        "image classification set), a directory of class folders, a .npz file "
        "(x_train, y_train, x_test, y_test) or a name registered by "
        "--dataset-module. Defaults to cifar10",
    )
    parser.add_argument(
        "--dataset-module",
        metavar="MODULE",
        help="a Python module to import first, which calls "
        "keras_eraserelu.data.register_dataset (e.g. my_project.data)",
    )
    parser.add_argument(
        "--validation-split",
        type=a.number_in(0, 1, high_open=True),
        help="for a folder without train/ and test/ (or a registered (x, y)): the "
        "part held out for validation, in (0, 1). Defaults to 0.1",
    )
    parser.add_argument(
        "--image-size",
        type=a.image_size,
        help="resize the images: S or H,W (needed for folders or tfds sets of "
        "mixed sizes)",
    )


def add_keep_weights(parser):
    parser.add_argument(
        "--keep-weights",
        action="store_true",
        help="a .keras model starts from its own weights (fine-tuning); by "
        "default each seed re-initializes it",
    )


def add_recipe(parser, each):
    parser.add_argument(
        "--recipe",
        type=a.choice(names.RECIPES),
        help=f"{one_of(names.RECIPES)}; default: {each}",
    )


def add_steps(parser):
    parser.add_argument(
        "--steps-per-epoch",
        type=POSITIVE,
        help="an int >= 1 (shorter epochs); default: the whole training split",
    )


def add_data_dir(parser):
    parser.add_argument("--data-dir", help="TensorFlow Datasets' data folder")


def add_restart(parser, whose="this run's"):
    parser.add_argument(
        "--restart",
        action="store_true",
        help=f"start over: delete {whose} history, checkpoint and model first",
    )


def add_input_shape(parser):
    parser.add_argument(
        "--input-shape",
        type=a.shape,
        help="input shape for a keras.applications or registry model, e.g. 224,224,3",
    )


def add_kinds(parser):
    parser.add_argument(
        "--kinds",
        default="relu",
        type=a.kind_list,
        help="comma-separated activation kinds (relu,relu6,leaky,...) or any. "
        "Defaults to relu",
    )


def add_placement_arguments(parser):
    parser.add_argument(
        "--where",
        type=a.placement(names.POSITIONS),
        help=f"{one_of(names.POSITIONS)} or an int k (the k-th site of each "
        "module from 0; negative from the end). Defaults to last",
    )
    parser.add_argument(
        "--select",
        action="append",
        type=a.selector,
        help="only these sites: name, glob or re:regex (repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        type=a.selector,
        help="never these sites: name, glob or re:regex (repeatable)",
    )
    add_kinds(parser)
    parser.add_argument(
        "--modules",
        action="append",
        type=a.module_selector,
        help="only these modules: index, name, glob or re:regex (repeatable)",
    )
    parser.add_argument(
        "--ratio",
        type=a.number_in(0, 1),
        default=1.0,
        help="proportion of the modules, in (0, 1]. Defaults to 1.0",
    )
    parser.add_argument(
        "--ratio-from",
        default="start",
        type=a.choice(names.RATIO_FROM),
        help=f"which end the ratio counts from: {one_of(names.RATIO_FROM, 'start')}",
    )
