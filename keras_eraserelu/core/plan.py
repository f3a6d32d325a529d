"""Erasure plans: which activations `erase_relu` turns linear, and why.

`plan_erasure` is the dry run of `erase_relu`: it finds the sites and modules,
applies the placement (`where`, `modules`, `ratio`) and the explicit choices
(`select`, `exclude`, exclusion winning), and returns an `ErasePlan` that
prints as a table, turns into a dict and draws a picture. Nothing is built.

Example:

```python
plan = plan_erasure(keras.applications.ResNet50(weights=None))
print(plan)                  # one row per ReLU: erased or kept, and why
len(plan.erased)             # 16: every conv{2..5}_block{k}_out
```
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from keras_eraserelu.core.checks import check_choice, check_model, check_number, is_int
from keras_eraserelu.core.diagnosis import hidden_words, plan_warnings
from keras_eraserelu.core.flatgraph import FlatGraph
from keras_eraserelu.core.modules import ModuleMap
from keras_eraserelu.core.nested import nested_changes
from keras_eraserelu.core.selectors import select_indices
from keras_eraserelu.core.sites import (
    ERASED_KIND,
    RELU_KINDS,
    check_kinds,
    site_key,
    sites_of_graph,
)

WHERE_CHOICES = ("last", "first", "all")
RATIO_FROM_CHOICES = ("start", "end")


@dataclass(frozen=True)
class ErasePlan:
    """The sites of a model and, for each, whether it is erased and why.

    Attributes:
        model_name: str.
        sites: tuple of ReluSite, in topological order, with `decision`
            (`"erase"`, `"keep"` or `"erased"`) and `reason`.
        modules: tuple of Module.
        boundary: str. What ends the modules: `"merge"`, `"pooling"`, or
            `"none"` when no module was detected.
        settings: dict. The arguments the plan was made with.
        warnings: tuple of str. What the user should know before erasing.
    """

    model_name: str
    sites: tuple
    modules: tuple
    boundary: str
    settings: dict
    warnings: tuple

    @property
    def erased(self):
        """The sites this plan turns linear."""
        return [site for site in self.sites if site.decision == "erase"]

    @property
    def kept(self):
        """The sites this plan leaves as they are (erased earlier excluded)."""
        return [site for site in self.sites if site.decision == "keep"]

    @property
    def erased_before(self):
        """The sites that were already linear in the model."""
        return [site for site in self.sites if site.decision == "erased"]

    def summary(self):
        """One line: how many sites, modules and erasures."""
        modules = (
            f"{len(self.modules)} modules (ended by {self.boundary}s)"
            if self.modules
            else "no modules detected"
        )
        text = (
            f"{self.model_name}: {len(self.sites)} sites, {modules}, "
            f"{len(self.erased)} to erase"
        )
        if self.erased_before:
            text += f", {len(self.erased_before)} erased before"
        return text

    def to_dict(self):
        """A JSON-ready dict of the whole plan."""
        return {
            "model_name": self.model_name,
            "boundary": self.boundary,
            "settings": dict(self.settings),
            "warnings": list(self.warnings),
            "modules": [module.to_dict() for module in self.modules],
            "sites": [site.to_dict() for site in self.sites],
            "erased": [site.path for site in self.erased],
        }

    def plot(self, path=None, **kwargs):
        """Draws the modules in order with their erased and kept sites.

        Args:
            path: str or None. Where to save the picture (PNG, SVG, PDF...).
            **kwargs: passed to `keras_eraserelu.core.plan_plot.plot_plan`.

        Returns:
            The matplotlib Figure.
        """
        from keras_eraserelu.core.plan_plot import plot_plan

        return plot_plan(self, path, **kwargs)

    def __str__(self):
        header = ("#", "site", "form", "kind", "module", "decision", "reason")
        rows = [
            (
                str(site.index),
                site.path,
                site.form,
                site.kind,
                site.module_name if site.module is None else str(site.module),
                site.decision,
                site.reason,
            )
            for site in self.sites
        ]
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(6)]

        def line(row):
            cells = [str(cell).ljust(width) for cell, width in zip(row, widths)]
            return "  ".join(cells + [row[6]]).rstrip()

        lines = [
            self.summary(),
            line(header),
            line(["-" * w for w in widths] + ["-" * 6]),
        ]
        lines += [line(row) for row in rows]
        lines += [f"warning: {text}" for text in self.warnings]
        return "\n".join(lines)


def plan_erasure(
    model,
    where=None,
    *,
    select=None,
    exclude=None,
    kinds=("relu",),
    modules=None,
    ratio=1.0,
    ratio_from="start",
):
    """Decides which activations of `model` to erase, without building anything.

    A module whose last activation may sit inside a layer the graph walker
    cannot see into (a `Lambda` or custom layer at its end, or between its
    last ReLU and its end) gets no position rule: its sites are kept, with
    the layer named in their reason and in a warning. Nested sites (the
    activation sub-layers of such a layer) are erased only when `select`
    chooses them and the layer's config can erase exactly them.

    Args:
        model: a built Functional or Sequential Keras model (nested models are
            searched at any depth).
        where: str, int or None. Position inside each module: `"last"` (the
            paper's choice), `"first"`, `"all"`, or an int k for the k-th site
            of each module in topological order (negative counts from the
            end). Defaults to `"last"`, or to no position rule when `select`
            is given.
        select: selector or None. Only these sites may be erased (names,
            globs, `"re:"` regexes, int indices, `fn(site) -> bool`).
        exclude: selector or None. These sites are never erased; exclusion
            wins over everything else.
        kinds: str or iterable of str. Activation kinds to erase: `"relu"`,
            `"relu6"`, `"leaky"`, `"thresholded"`, any Keras activation name
            (`"gelu"`, `"silu"`, ...) or `"any"`. Defaults to plain ReLU.
        modules: selector or None. Which modules take part (indices, module
            names or globs, predicates). Defaults to all.
        ratio: float in [0, 1]. Proportion of the modules that take part.
            Defaults to 1.0.
        ratio_from: str. `"start"` takes the modules nearest the input,
            `"end"` those nearest the output. Defaults to `"start"`.

    Returns:
        An `ErasePlan`.

    Raises:
        TypeError: for a non-Keras object, a subclassed model, or a `ratio`
            that is not a number.
        ValueError: for an unknown `where`, `kinds` or `ratio_from`, a ratio
            outside [0, 1], or a selector that matches nothing.
        IndexError: for an out-of-range index.

    Example:

    ```python
    plan = plan_erasure(model, where="last", exclude="conv5_*")
    print(plan)
    plan.plot("plan.png")
    ```
    """
    kinds = _check_arguments(model, kinds, where, ratio, ratio_from)
    graph = FlatGraph.from_model(model)
    sites_by_key, candidates, module_map = _find_sites(graph, kinds)
    module_list = module_map.modules

    chosen_modules = _choose_modules(module_list, modules, ratio, ratio_from)
    effective_where = (
        where if where is not None else ("last" if select is None else None)
    )
    restrict = effective_where is not None or modules is not None or ratio < 1.0
    positioned = _positioned_keys(
        module_map, chosen_modules - set(module_map.hidden), effective_where
    )

    located, gates, owners = _locate_sites(graph, sites_by_key, module_map)
    selected = select_indices("select", select, list(located.values()))
    excluded = select_indices("exclude", exclude, list(located.values()))

    decided = {}
    for key, site in located.items():
        decision, reason = _decide(
            site,
            targeted=key in candidates,
            excluded=site.index in excluded,
            selected=select is None or site.index in selected,
            positioned=(key in positioned) if restrict else True,
            gate=gates[key],
            owner=owners.get(key),
            where=effective_where,
            chosen_modules=chosen_modules,
            module_map=module_map,
        )
        decided[key] = replace(site, decision=decision, reason=reason)
    refused = _refuse_unsafe_nested(decided, owners)
    decided = list(decided.values())

    return ErasePlan(
        model_name=model.name,
        sites=tuple(decided),
        modules=tuple(module_list),
        boundary=module_map.boundary,
        settings=_settings(where, select, exclude, kinds, modules, ratio, ratio_from),
        warnings=tuple(
            plan_warnings(
                model.name, decided, module_map, graph, kinds, restrict, select, refused
            )
        ),
    )


def _check_arguments(model, kinds, where, ratio, ratio_from):
    """Checks every argument of `plan_erasure` before any graph is walked;
    returns the normalised `kinds`."""
    check_model(model)
    kinds = check_kinds(kinds)
    _check_where(where)
    check_choice("ratio_from", ratio_from, RATIO_FROM_CHOICES)
    check_number("ratio", ratio, 0, 1)
    return kinds


def _find_sites(graph, kinds):
    """The sites of `graph`, the keys of those `kinds` targets, and the module
    map cut on the targeted and already-erased sites."""
    wanted = set(RELU_KINDS) | set(kinds)
    sites_by_key = sites_of_graph(graph, wanted)

    def targeted(site):
        return site.kind != ERASED_KIND and ("any" in kinds or site.kind in kinds)

    candidates = {key for key, site in sites_by_key.items() if targeted(site)}
    counted = candidates | {
        key for key, site in sites_by_key.items() if site.kind == ERASED_KIND
    }
    module_map = ModuleMap(graph, lambda node: site_key(node) in counted)
    return sites_by_key, candidates, module_map


def _locate_sites(graph, sites_by_key, module_map):
    """Each site placed in its module (by its first call, a nested site by
    its layer's), the gate it feeds, if any, and for a nested site the node
    of its layer; all keyed like `sites_by_key`."""
    first_node = {}
    for node in graph.nodes:
        first_node.setdefault(site_key(node), node)
    nodes = {key: first_node[key[:2]] for key in sites_by_key}
    located = {
        key: _locate(site, nodes[key], module_map) for key, site in sites_by_key.items()
    }
    gates = {key: module_map.gate_of(node) for key, node in nodes.items()}
    owners = {key: nodes[key] for key, site in sites_by_key.items() if len(key) == 3}
    return located, gates, owners


def _refuse_unsafe_nested(decided, owners):
    """Keeps the nested sites chosen for erasure that their layer's config
    cannot erase as chosen; returns why, one sentence per layer."""
    chosen = {}
    for key, site in decided.items():
        if key in owners and site.decision == "erase":
            chosen.setdefault(key[:2], []).append(key)
    refused = []
    for keys in chosen.values():
        layer = owners[keys[0]].operation
        try:
            nested_changes(layer, [key[2] for key in keys])
        except ValueError as error:
            for key in keys:
                decided[key] = replace(decided[key], decision="keep", reason=str(error))
            refused.append(f"{error} Kept: {[decided[key].name for key in keys]}.")
    return refused


def _settings(where, select, exclude, kinds, modules, ratio, ratio_from):
    """The arguments of the plan, printable and JSON-ready."""
    return {
        "where": where,
        "select": _printable(select),
        "exclude": _printable(exclude),
        "kinds": list(kinds),
        "modules": _printable(modules),
        "ratio": ratio,
        "ratio_from": ratio_from,
    }


def _locate(site, node, module_map):
    """The site with its module, module name and position filled in."""
    module = module_map.module_of(node)
    if module is None:
        name = module_map.region_of(node) if module_map.modules else None
        return replace(site, module_name=name)
    sites = module_map.sites_in(module)
    return replace(
        site,
        module=module,
        module_name=module_map.modules[module].name,
        position=sites.index(node) if node in sites else None,
    )


def _check_where(where):
    """Raises unless `where` is None, a position word or an int k."""
    if where is None or is_int(where) or where in WHERE_CHOICES:
        return
    raise ValueError(
        f"Unknown where={where!r}. Expected one of {list(WHERE_CHOICES)}, an int "
        "k (the k-th ReLU of each module), or None."
    )


def _choose_modules(module_list, modules, ratio, ratio_from):
    chosen = set(range(len(module_list)))
    if modules is not None:
        chosen &= select_indices("modules", modules, module_list, what="module")
    count = round(ratio * len(module_list))
    order = list(range(len(module_list)))
    if ratio_from == "end":
        order.reverse()
    return chosen & set(order[:count])


def _positioned_keys(module_map, chosen_modules, where):
    keys = set()
    for index in sorted(chosen_modules):
        if where in (None, "all"):
            nodes = module_map.sites_in(index)
        elif where == "last":
            nodes = module_map.last_sites(index)
        elif where == "first":
            nodes = module_map.first_sites(index)
        else:
            nodes = module_map.sites_in(index)
            if not -len(nodes) <= where < len(nodes):
                module = module_map.modules[index]
                raise IndexError(
                    f"where={where} is out of range for module {index} "
                    f"('{module.name}'), which has {len(nodes)} ReLU sites (valid "
                    f"{-len(nodes)} to {len(nodes) - 1}). Use a smaller k, "
                    "restrict `modules=`, or choose sites with `select=`."
                )
            nodes = [nodes[where]]
        keys |= {site_key(node) for node in nodes}
    return keys


def _decide(
    site,
    targeted,
    excluded,
    selected,
    positioned,
    gate,
    owner,
    where,
    chosen_modules,
    module_map,
):
    if site.kind == ERASED_KIND:
        return "erased", "already linear (erased earlier)"
    if not targeted:
        return "keep", f"kind '{site.kind}' not in kinds"
    if excluded:
        return "keep", "excluded"
    if not selected:
        return "keep", "not selected"
    if not positioned:
        if owner is not None:
            return "keep", (
                f"inside '{owner.qualified_name}' "
                f"({type(owner.operation).__name__}), which the graph walker "
                "sees as one layer: choose it with select="
            )
        if gate is not None:
            return "keep", f"on the gating branch of '{gate.qualified_name}'"
        if not module_map.modules:
            return "keep", "no modules detected: choose sites with select="
        if site.module_name == "stem":
            return "keep", "stem (before the first module)"
        if site.module is None:
            return "keep", "head (after the last module)"
        if site.module not in chosen_modules:
            return "keep", f"module {site.module} not chosen (modules=/ratio=)"
        hidden = module_map.hidden.get(site.module)
        if hidden:
            words = hidden_words(site.module, hidden, module_map)
            return "keep", (
                f"module {site.module} {words}, which the graph walker cannot "
                "see into: its last ReLU cannot be told; choose with select="
            )
        return "keep", f"not the {_where_words(where)} of module {site.module}"
    reason = (
        f"{_where_words(where)} of module {site.module} ({site.module_name})"
        if where is not None
        else "selected"
    )
    if site.calls > 1:
        reason += f"; shared layer: erased at all {site.calls} calls"
    return "erase", reason


def _where_words(where):
    if is_int(where):
        return f"site {where}"
    return {"last": "last ReLU", "first": "first ReLU", "all": "a ReLU"}[where]


def _printable(selector):
    if selector is None or isinstance(selector, (str, int, float)):
        return selector
    if isinstance(selector, (list, tuple, set)):
        return [_printable(item) for item in selector]
    return getattr(selector, "pattern", None) or getattr(
        selector, "__name__", repr(selector)
    )


def erase_arguments(erase):
    """The `erase_relu` keyword arguments that one placement value means: the
    `erase=` of builders, `train`, `compare` and variants.

    Example:

    ```python
    erase_arguments("last")             # {'where': 'last'}
    erase_arguments(["stage1_block1_out"])   # {'select': [...]}
    ```
    """
    if isinstance(erase, str) and erase in WHERE_CHOICES:
        return {"where": erase}
    if is_int(erase):
        return {"where": int(erase)}
    if isinstance(erase, str) or (
        isinstance(erase, (list, tuple)) and all(isinstance(e, str) for e in erase)
    ):
        return {"select": erase}
    raise ValueError(
        f"Unknown erase={erase!r}. Expected None, one of {list(WHERE_CHOICES)}, an "
        "int k (the k-th ReLU of each module), or a list of site names."
    )
