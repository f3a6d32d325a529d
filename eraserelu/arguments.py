"""The `type=` functions that check each command-line value as it is parsed.

Each returns an argparse `type=` callable. A bad value raises
`argparse.ArgumentTypeError`, which argparse prints as
`eraserelu CMD: error: argument --FLAG: MESSAGE` and exits with status 2; the
message says what was expected, what was received and the valid choices.
Nothing here imports TensorFlow or Keras.

Example:

```python
parser.add_argument("--batch-size", type=int_at_least(1))
parser.add_argument("--dataset", type=dataset_value, default="cifar10")
# eraserelu train: error: argument --batch-size: expected an int >= 1.
# Received: '0'.
```
"""

from __future__ import annotations

import argparse
import difflib
import os
import re

from eraserelu import names

_CHOOSER_SPACES = ("per_module", "ratio", "stage")


def _fail(expected, text, hint=""):
    raise argparse.ArgumentTypeError(f"expected {expected}. Received: {text!r}.{hint}")


def _hint(text, choices):
    close = difflib.get_close_matches(str(text), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _parse_int(text, expected, whole=None):
    try:
        return int(text.strip())
    except ValueError:
        _fail(expected, text if whole is None else whole)


def int_at_least(minimum):
    """An int >= `minimum` (1 for counts, 0 for "0: off", 2 for a factor)."""

    def check(text):
        expected = f"an int >= {minimum}"
        value = _parse_int(text, expected)
        if value < minimum:
            _fail(expected, text)
        return value

    check.__name__ = f"int_at_least_{minimum}"
    return check


def int_or_list(minimum=1):
    """One int >= `minimum`, or several comma-separated (`1,2,4`): a list."""

    def check(text):
        expected = f"an int >= {minimum} or comma-separated ints like 1,2,4"
        parts = text.split(",")
        values = [_parse_int(part, expected, text) for part in parts]
        if any(value < minimum for value in values):
            _fail(expected, text)
        return values[0] if len(values) == 1 else values

    return check


def number_in(low, high, *, low_open=True, high_open=False):
    """A float in the interval from `low` to `high` (open or closed ends)."""
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"

    def check(text):
        expected = f"a number in {interval}"
        try:
            value = float(text)
        except ValueError:
            _fail(expected, text)
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):
            _fail(expected, text)
        return value

    return check


def choice(choices):
    """One of `choices` (case-sensitive), with a close-match hint."""

    def check(text):
        if text not in choices:
            _fail(f"one of {list(choices)}", text, _hint(text, choices))
        return text

    return check


def dataset_value(text):
    """A `--dataset`: a catalogue name (`names.DATASETS`), "tfds:NAME", an
    existing directory of class folders or `.npz` file, or a name that a
    `--dataset-module` or an installed entry point registers (checked once
    all arguments are parsed: `registered_dataset_names`, `check_dataset`).

    The one place that says which `--dataset` values are valid.
    """
    if text.startswith("tfds:"):
        if not re.fullmatch(r"tfds:[a-z0-9_]+(/[\w.-]+)?(:[\d.*]+)?", text):
            _fail("tfds:NAME with a tensorflow-datasets name, e.g. tfds:cmaterdb", text)
        return text
    if text.endswith(".npz") and not os.path.isfile(text):
        _fail("an existing .npz file holding x_train, y_train, x_test, y_test", text)
    return text


def check_dataset(text, registered):
    """Raises `argparse.ArgumentTypeError` unless `text` is a valid
    `--dataset` once the `registered` names are known."""
    if (
        text in names.DATASETS
        or text in registered
        or text.startswith("tfds:")
        or os.path.isdir(text)
        or (text.endswith(".npz") and os.path.isfile(text))
    ):
        return text
    choices = sorted(set(names.DATASETS) | set(registered))
    _fail(
        f"a catalogue name ({', '.join(names.DATASETS)}), a registered name "
        f"({', '.join(registered) or 'none: see --dataset-module'}), tfds:NAME, "
        "a directory of class folders or a .npz file",
        text,
        _hint(text, choices),
    )


def registered_dataset_names():
    """The names of installed `keras_eraserelu.datasets` entry points
    (read from package metadata: nothing is imported)."""
    import importlib.metadata

    group = importlib.metadata.entry_points(group="keras_eraserelu.datasets")
    return sorted(entry.name for entry in group)


def image_size(text):
    """`--image-size`: `S` (square) or `H,W`, positive ints: a tuple."""
    values = shape(text)
    if len(values) not in (1, 2):
        _fail("an int S or H,W, e.g. 64 or 64,48", text)
    return values * 2 if len(values) == 1 else values


def model_value(text):
    """A `--model`: a registry or keras.applications name (checked when the
    library loads, with close matches), or an existing `.keras` file."""
    if text.endswith(".keras") and not os.path.isfile(text):
        _fail("an existing .keras file, a registry or a keras.applications name", text)
    return text


def placement(words):
    """A position word of `words` or an int k: the k-th site of each module
    (from 0; negative counts from the end). Returns the word or the int."""
    expected = f"one of {list(words)} or an int k (the k-th site of each module)"

    def check(text):
        text = text.strip()
        if text in words:
            return text
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        _fail(expected, text, _hint(text, words))

    return check


def placement_list(words):
    """Comma-separated placements (`none,last,2`): a list of words and ints."""
    one = placement(words)
    expected = f"comma-separated entries of {list(words)} or ints k, like none,last"

    def check(text):
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            _fail(expected, text)
        values = []
        for part in parts:
            try:
                values.append(one(part))
            except argparse.ArgumentTypeError:
                _fail(expected, text, _hint(part, words))
        if len(set(values)) != len(values):
            _fail(f"{expected}, each once", text)
        return values

    return check


def window(text):
    """`START:END` epochs with 0 <= START < END: a (start, end) tuple."""
    expected = "START:END epochs with 0 <= START < END, like 2:8"
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text)
    if not match:
        _fail(expected, text)
    start, end = int(match[1]), int(match[2])
    if start >= end:
        _fail(expected, text)
    return start, end


def shape(text):
    """Comma-separated positive ints (`224,224,3`): a tuple."""
    expected = "comma-separated positive ints like 224,224,3"
    parts = text.split(",")
    if not all(re.fullmatch(r"\s*\d+\s*", part) for part in parts):
        _fail(expected, text)
    values = tuple(int(part) for part in parts)
    if min(values) < 1:
        _fail(expected, text)
    return values


def name_list(text):
    """Comma-separated names (`a,b`): a list of non-empty names."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values:
        _fail("comma-separated names like cifar_resnet20,cifar_resnet56", text)
    return values


def depth_list(text):
    """Comma-separated CIFAR ResNet depths, each 6n + 2 (8, 14, 20, ...)."""
    expected = "comma-separated depths, each 6n + 2 (8, 14, 20, 56, 110, ...)"
    values = []
    for part in text.split(","):
        value = _parse_int(part, expected, text)
        if value < 8 or (value - 2) % 6:
            _fail(expected, text)
        values.append(value)
    return values


def kind_list(text):
    """Comma-separated activation kinds (`relu,relu6`) or `any`: a tuple."""
    valid = ("any", *names.KINDS, *names.KIND_ALIASES)
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    if not values:
        _fail(f"comma-separated kinds of {list(valid)}", text)
    for value in values:
        if value not in valid:
            _fail(f"comma-separated kinds of {list(valid)}", text, _hint(value, valid))
    return values


def space_list(text):
    """A tuning space, or 'position' with one other (`position,ratio`)."""
    expected = (
        f"one of {list(names.SPACES)}, or 'position' with one of the others "
        "like position,ratio"
    )
    values = tuple(part.strip() for part in text.split(","))
    for value in values:
        if value not in names.SPACES:
            _fail(expected, text, _hint(value, names.SPACES))
    choosers = [value for value in values if value in _CHOOSER_SPACES]
    if len(set(values)) != len(values) or len(choosers) > 1:
        _fail(expected, text)
    return values


def selector(text):
    """A site or module selector: a name, a glob, or `re:REGEX`."""
    if text.startswith("re:"):
        try:
            re.compile(text[3:])
        except re.error as error:
            _fail(f"a valid regular expression after 're:' ({error})", text)
    elif not text.strip():
        _fail("a name, a glob or re:REGEX", text)
    return text


def module_selector(text):
    """A module index (an int) or a module name, glob or `re:REGEX`."""
    text = selector(text)
    return int(text) if re.fullmatch(r"-?\d+", text.strip()) else text


def train_verbose(text):
    """Keras' `verbose` of `fit`: "auto", 0, 1 or 2."""
    value = choice(names.TRAIN_VERBOSE)(text)
    return value if value == "auto" else int(value)


def verbose(text):
    """A verbosity 0, 1 or 2: an int."""
    return int(choice(("0", "1", "2"))(text))


def writable_file(suffix=None):
    """A file path that can be written: its folder exists and is writable,
    and the path is not a folder. With `suffix`, the name must end with it."""

    def check(text):
        if suffix and not text.endswith(suffix):
            _fail(f"a path ending in {suffix!r}", text)
        if os.path.isdir(text):
            _fail("a file path, not a folder", text)
        folder = os.path.dirname(os.path.abspath(text))
        if not os.path.isdir(folder):
            _fail(f"a path in an existing folder ({folder!r} does not exist)", text)
        if not os.access(folder, os.W_OK | os.X_OK) or (
            os.path.exists(text) and not os.access(text, os.W_OK)
        ):
            _fail(f"a path this user may write ({folder!r} is not writable)", text)
        return text

    return check


def host_port(text):
    """`HOST:PORT` (a name or address, then a port from 1 to 65535): as given."""
    match = re.fullmatch(r"\s*([^\s,]+):(\d+)\s*", text)
    if not match or not 1 <= int(match[2]) <= 65535:
        _fail("HOST:PORT with a port from 1 to 65535, e.g. 10.0.0.1:1234", text)
    return text.strip()


def existing_dir(text):
    """An existing folder."""
    if not os.path.isdir(text):
        _fail("an existing folder", text)
    return text
