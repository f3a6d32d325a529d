"""Plain-Python selectors for sites and modules: names, globs, regexes, indices,
predicates.

A selector is one item or a list of items:

- a str: the exact name or path (`"backbone/conv1_relu"`); a glob if it holds
  `*`, `?` or `[` (`"conv4_*_out"`); a regular expression after a `"re:"`
  prefix (`"re:conv[23]_block1_.*"`);
- a compiled `re.Pattern`, searched in the name and the path;
- an int: the position in the list (negative counts from the end);
- a callable `fn(item) -> bool`;
- for sites, a `ReluSite` itself.

Every item must match something: a typo is an error with close names, not a
silent no-op.

Example:

```python
select_indices("select", ["conv2_*_out", 0], sites)   # {0, 4, 7, ...}
```
"""

from __future__ import annotations

import fnmatch
import re

from keras_eraserelu.core.checks import did_you_mean, is_int
from keras_eraserelu.core.sites import ReluSite

_GLOB_CHARS = set("*?[")


def select_indices(argument, selector, items, what="site"):
    """Positions in `items` matched by `selector` (None matches nothing).

    Args:
        argument: str. Name of the argument, for error messages.
        selector: the selector (see the module docstring).
        items: list of objects with `name` and, for sites, `path`.
        what: str. What the items are, for error messages.

    Returns:
        A set of int positions into `items`.
    """
    if selector is None:
        return set()
    entries = selector if isinstance(selector, (list, tuple, set)) else [selector]
    chosen = set()
    for entry in entries:
        matched = _match(argument, entry, items, what)
        if not matched:
            names = [item.name for item in items]
            hint = did_you_mean(entry, names) if isinstance(entry, str) else ""
            raise ValueError(
                f"`{argument}` entry {_describe(entry)} matched no {what} among the "
                f"{len(items)} of this model.{hint} Valid {what} names include "
                f"{_preview(names)}."
            )
        chosen |= matched
    return chosen


def _match(argument, entry, items, what):
    if is_int(entry):  # a bool is no index: it falls through to the TypeError
        if not -len(items) <= entry < len(items):
            raise IndexError(
                f"`{argument}` index {entry} is out of range: this model has "
                f"{len(items)} {what}s (valid indices {-len(items)} to "
                f"{len(items) - 1})."
            )
        return {int(entry) % len(items)}
    if isinstance(entry, ReluSite):
        return {i for i, item in enumerate(items) if item.path == entry.path}
    if isinstance(entry, re.Pattern):
        return _match_text(items, entry.search)
    if isinstance(entry, str):
        if entry.startswith("re:"):
            try:
                pattern = re.compile(entry[3:])
            except re.error as error:
                raise ValueError(
                    f"`{argument}` entry {entry!r} is not a valid regular "
                    f"expression: {error}."
                ) from None
            return _match_text(items, pattern.search)
        if _GLOB_CHARS & set(entry):
            return _match_text(items, lambda text: fnmatch.fnmatchcase(text, entry))
        return _match_text(items, lambda text: text == entry)
    if callable(entry):
        return {i for i, item in enumerate(items) if entry(item)}
    raise TypeError(_type_message(argument, entry))


def _match_text(items, predicate):
    return {
        i
        for i, item in enumerate(items)
        if predicate(item.name) or predicate(getattr(item, "path", item.name))
    }


def _type_message(argument, entry):
    return (
        f"`{argument}` entries must be names, globs, 're:' regexes, compiled "
        "patterns, int indices or callables. Received: "
        f"{entry!r} of type {type(entry).__name__}."
    )


def _describe(entry):
    if callable(entry) and not isinstance(entry, (str, re.Pattern)):
        return f"function {getattr(entry, '__name__', repr(entry))}"
    return repr(entry)


def _preview(names, count=6):
    shown = ", ".join(repr(n) for n in names[:count])
    return shown + (", ..." if len(names) > count else "")
