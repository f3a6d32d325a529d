"""The picture of an erasure plan: one row per module, one cell per site.

Rows run from the stem (top) through every module to the head (bottom); the
cells of a row are the module's sites in topological order, coloured by what
the plan does with them. A 150-layer network stays readable: ResNet-101 is 35
short rows, DenseNet-121 is 60 rows of two cells.

Example:

```python
fig = plot_plan(plan_erasure(model), "plan.png")
```
"""

from __future__ import annotations

# The palette of every picture of placements (the tuner's heat map too).
COLORS = {
    "erase": "#d62728",
    "keep": "#1f77b4",
    "erased": "#ff9896",
    "not targeted": "#c7c7c7",
}
LABELS = {
    "erase": "erased by this plan",
    "keep": "kept",
    "erased": "erased earlier (linear)",
    "not targeted": "kind not targeted",
}


def plot_plan(plan, path=None, max_label=28, dpi=120):
    """Draws `plan` and saves it to `path` when given.

    Args:
        plan: ErasePlan.
        path: str or None. File to save (format from the extension).
        max_label: int. Longest site label printed in a cell.
        dpi: int. Resolution of the saved file.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = _rows(plan)
    width = max([len(sites) for _, sites in rows] + [1])
    cell_w = 1.9 if width <= 8 else 1.3
    fig_w = min(4.0 + cell_w * width, 40.0)
    fig_h = max(2.5, 0.32 * len(rows) + 1.6)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    for y, (_, sites) in enumerate(rows):
        for x, site in enumerate(sites):
            state = _state(site)
            ax.add_patch(
                plt.Rectangle((x, -y - 0.42), 0.94, 0.84, color=COLORS[state], lw=0)
            )
            if width <= 12:
                text = (
                    site.name
                    if len(site.name) <= max_label
                    else "…" + site.name[-max_label:]
                )
                ax.text(
                    x + 0.47,
                    -y,
                    text,
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if state in ("erase", "keep") else "black",
                )
    ax.set_yticks([-y for y in range(len(rows))])
    ax.set_yticklabels([label for label, _ in rows], fontsize=7)
    ax.set_xticks(range(width))
    ax.set_xticklabels([str(i) for i in range(width)], fontsize=7)
    ax.set_xlabel("site position inside the module (topological order)")
    ax.set_xlim(-0.1, width)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    present = {_state(site) for site in plan.sites}
    ax.legend(
        handles=[
            Patch(color=COLORS[s], label=LABELS[s]) for s in COLORS if s in present
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.06 if len(rows) > 20 else -0.18),
        ncol=4,
        fontsize=7,
        frameon=False,
    )
    ax.set_title(plan.summary(), fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return fig


def _rows(plan):
    """`(label, sites)` per row: stem, each module, head (empty rows skipped)."""
    stem = [s for s in plan.sites if s.module is None and s.module_name != "head"]
    head = [s for s in plan.sites if s.module_name == "head"]
    rows = [("stem" if plan.modules else "(no modules detected)", stem)]
    for module in plan.modules:
        sites = sorted(
            (s for s in plan.sites if s.module == module.index),
            key=lambda s: s.position,
        )
        rows.append((f"{module.index}: {module.name}", sites))
    rows.append(("head", head))
    return [(label, sites) for label, sites in rows if sites]


def _state(site):
    if site.decision == "keep" and site.reason.startswith("kind "):
        return "not targeted"
    return site.decision
