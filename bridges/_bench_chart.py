"""The benchmark chart: every row with a target, its ratio to the native baseline, the target drawn.

A reader should be able to answer from the picture alone: how much faster or
slower than native is each operation, does it meet its target, what does it
cost in absolute terms, and on what machine was that measured.  So: bars
grow from 1× (right is faster, left slower) on a log axis labelled 0.25× ...
10×; the target is a black tick on each bar; a bar beyond the axis (the
asyncore rows reach 30×) stops at its edge with its value written, so it
cannot squash the others; each row ends with its absolute figures (ours vs
native, in the row's unit); the title carries machine, Python and date.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

__all__ = ["draw"]

X_MIN, X_MAX = 0.2, 12.0
TICKS = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0]
COLORS = {True: "tab:green", False: "tab:red", None: "tab:gray"}


def draw(rows: Sequence[dict[str, Any]], measured_on: Sequence[str], path: Path) -> None:
    """Write the chart of ``rows`` that have a target to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    rows = [row for row in rows if row.get("target")]
    figure, axes = plt.subplots(figsize=(14, 0.42 * len(rows) + 2.6))
    positions = list(range(len(rows)))
    for y, row in zip(positions, rows):
        ratio = _clip(row["ratio"])
        axes.barh(y, ratio - 1.0, left=1.0, height=0.6, color=COLORS[row.get("meets_target")])
        low, high = _clip(row["ratio_min"]), _clip(row["ratio_max"])
        axes.plot([low, high], [y, y], color="black", linewidth=0.8)
        if row["ratio"] > X_MAX:
            axes.text(
                X_MAX / 1.05,
                y,
                f"{row['ratio']:.0f}×",
                ha="right",
                va="center",
                color="white",
                fontsize=8,
                fontweight="bold",
            )
        if row.get("target_ratio"):
            axes.plot([row["target_ratio"]] * 2, [y - 0.4, y + 0.4], color="black", linewidth=2.5)
    axes.set_yticks(positions)
    axes.set_yticklabels([f"{row['benchmark']}: {row['case']}" for row in rows], fontsize=8)
    axes.set_xscale("log")
    axes.set_xlim(X_MIN, X_MAX)
    axes.set_xticks(TICKS)
    axes.set_xticklabels([f"{tick:g}×" for tick in TICKS])
    axes.minorticks_off()
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.grid(axis="x", color="0.85", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.invert_yaxis()
    right = blended_transform_factory(axes.transAxes, axes.transData)
    axes.text(1.01, -1, "ours vs native", transform=right, fontsize=8, fontweight="bold")
    for y, row in zip(positions, rows):
        axes.text(
            1.01,
            y,
            f"{row['ours']:.1f} vs {row['baseline']:.1f} {row['unit']}",
            transform=right,
            va="center",
            fontsize=8,
        )
    axes.set_xlabel(
        "ratio to the native baseline, log scale: right of 1× is faster than native. "
        "Black tick: the target; green meets it, red misses it; whiskers: min–max"
    )
    axes.set_title(
        "tulip-bridges against each framework's native baseline, same run\n"
        + "\n".join(line for line in measured_on if line),
        fontsize=10,
        loc="left",
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _clip(value: float) -> float:
    return min(max(value, X_MIN), X_MAX)
