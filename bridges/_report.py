"""``python -m bridges report DUMP -o chart.png``: the share of loop time by framework, over time.

The dump is what :func:`bridges.metrics.dump_every` writes: one ``hub.stats()``
per line, cumulative.  Each pair of consecutive lines gives one interval's
share of the loop's busy time per framework; the chart stacks them, so a
migration shows as one framework's band shrinking while asyncio's grows.
matplotlib is needed (``pip install 'tulip-bridges[bench]'``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .metrics import shares

__all__ = ["load", "report", "series"]

COLORS = {
    "asyncio": "#4C72B0",
    "twisted": "#DD8452",
    "gevent": "#55A868",
    "tornado": "#C44E52",
    "asyncore": "#8172B3",
    "eventlet": "#937860",
}


def load(path: Path) -> list[dict[str, Any]]:
    """The samples of a dump, in order (a line cut short by a crash is skipped)."""
    samples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            sample = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(sample, dict) and "frameworks" in sample:
            samples.append(sample)
    return samples


def series(
    samples: list[dict[str, Any]], window: int = 1
) -> tuple[list[float], dict[str, list[float]]]:
    """Seconds since the first sample, and each framework's share of busy time per point.

    Each point covers the last ``window`` intervals (the samples are
    cumulative, so a wider window is simply an earlier "before" sample): a
    moving average that keeps the time each interval's work took as its weight.
    """
    names = sorted({name for sample in samples for name in sample["frameworks"]})
    times: list[float] = []
    shares_by_name: dict[str, list[float]] = {name: [] for name in names}
    for index in range(1, len(samples)):
        before, after = samples[max(0, index - window)], samples[index]
        share = shares(before, after)
        times.append(after["time"] - samples[0]["time"])
        for name in names:
            shares_by_name[name].append(100 * share.get(name, 0.0))
    return times, shares_by_name


def report(dump: Path, output: Path, *, title: str | None = None, window: int = 1) -> int:
    """Draw ``dump`` into ``output`` (PNG); 0 on success, 1 if the dump has too few samples."""
    samples = load(dump)
    if len(samples) < 2:
        print(f"bridges report: {dump} has {len(samples)} sample(s); two or more are needed.")
        return 1
    try:
        import matplotlib
    except ImportError:
        print("bridges report needs matplotlib: pip install 'tulip-bridges[bench]'")
        return 1
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times, by_name = series(samples, max(1, window))
    order = sorted(by_name, key=lambda name: (name != "asyncio", name))
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    ax.stackplot(
        times,
        [by_name[name] for name in order],
        labels=order,
        colors=[COLORS.get(name) for name in order],
        alpha=0.9,
    )
    ax.set_xlim(times[0], times[-1])
    ax.set_ylim(0, 100)
    ax.set_xlabel("seconds")
    ax.set_ylabel("share of busy loop time (%)")
    ax.set_title(title or "Share of loop time by framework")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    print(f"bridges report: wrote {output} ({len(samples)} samples from {dump})")
    return 0
