"""``python -m bridges bench``: run the benchmarks and write one report.

Each ``benchmarks/bench_*.py`` runs in its own process (the frameworks keep
process-global state) with ``--report FILE`` and writes its rows as JSON (see
``benchmarks/_harness.py``).  The rows become one Markdown table, each figure
beside its native baseline measured in the same run, and a PNG chart of the
ratios against their targets.  Runs from a source checkout: the benchmarks
are not installed.

By default the report goes to ``bench-results/`` (untracked), so measuring
never dirties the checkout.  ``--readme`` publishes one full run: the table
into ``docs/benchmarks.md`` and ``README.md`` (between their markers), the
chart to ``docs/benchmarks.png`` and the rows to ``docs/benchmarks.json``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

__all__ = ["bench"]

_TIMEOUT = 600.0

README_START = "<!-- benchmarks:start -->"
README_END = "<!-- benchmarks:end -->"
DEFAULT_OUT = "bench-results"

_Results = dict[str, dict[str, Any]]
"""Benchmark name -> {"measured_on": str, "rows": [row, ...]}."""


def bench(
    root: Path,
    out_dir: Path | None = None,
    *,
    quick: bool = False,
    only: Sequence[str] = (),
    readme: bool = False,
    chart: bool = True,
) -> int:
    """Run the benchmarks under ``root / "benchmarks"``; 0: all ran, 1: one failed, 2: misuse.

    ``only`` names benchmarks exactly (``core`` is ``bench_core.py``); the
    other benchmarks' rows are kept from the last run in ``out_dir``, each
    under the machine and date it was measured on.
    """
    available = {path.stem[len("bench_") :]: path for path in _scripts(root)}
    if not available:
        return _misuse(
            f"no benchmarks found under {root / 'benchmarks'}: run this from a source "
            "checkout of tulip-bridges (the benchmarks are not part of the installed package)."
        )
    unknown = sorted(set(only) - set(available))
    if unknown:
        return _misuse(
            f"no benchmark named {', '.join(unknown)}; the benchmarks are: "
            f"{', '.join(sorted(available))}"
        )
    if readme and (only or quick or not chart):
        return _misuse(
            "--readme publishes one full run (README table, docs/benchmarks.md and the chart "
            "from the same measurements): drop --only, --quick and --no-chart."
        )
    if chart and not _have_matplotlib():
        return _misuse(
            "the chart needs matplotlib: pip install 'tulip-bridges[bench]' "
            "(or pass --no-chart to write the table only)."
        )
    out = out_dir if out_dir is not None else root / DEFAULT_OUT
    results: _Results = _previous(out) if only else {}
    failed: list[str] = []
    measured_on = _machine()
    for name in sorted(only or available):
        script = available[name]
        print(f"== {script.name}", flush=True)
        rows = _run_one(script, quick)
        if rows is None:
            failed.append(script.name)
            results.pop(name, None)
        else:
            results[name] = {"measured_on": measured_on, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    table = _markdown(results, failed)
    (out / "benchmarks.md").write_text(table, encoding="utf-8")
    written = [out / "benchmarks.md"]
    if chart:
        written.append(_chart(results, out / "benchmarks.png"))
    if readme and not failed:
        written += _publish(root, out, table)
    print("wrote " + ", ".join(str(path) for path in written))
    if readme and failed:
        print("not published: a benchmark failed (see above)", file=sys.stderr)
    return 1 if failed else 0


def update_readme(path: Path, report: str) -> None:
    """Put ``report`` (without its title) between the file's benchmark markers."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{path} has no {README_START} ... {README_END} section to fill")
    body = report.split("\n", 1)[1].strip()  # drop the "# Benchmark report" title
    text = text[: start + len(README_START)] + "\n" + body + "\n" + text[end:]
    path.write_text(text, encoding="utf-8")


def _publish(root: Path, out: Path, table: str) -> list[Path]:
    docs = root / "docs"
    for name in ("benchmarks.json", "benchmarks.png"):
        (docs / name).write_bytes((out / name).read_bytes())
    update_readme(docs / "benchmarks.md", table)
    update_readme(root / "README.md", table)
    return [
        docs / "benchmarks.md",
        docs / "benchmarks.png",
        docs / "benchmarks.json",
        root / "README.md",
    ]


def _misuse(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _scripts(root: Path) -> list[Path]:
    return sorted((root / "benchmarks").glob("bench_*.py"))


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _previous(out: Path) -> _Results:
    """The last run's rows: ``--only`` re-measures some benchmarks and keeps the others."""
    stored = out / "benchmarks.json"
    if not stored.exists():
        return {}
    loaded = json.loads(stored.read_text(encoding="utf-8"))
    return {
        name: entry if isinstance(entry, dict) else {"measured_on": "an earlier run", "rows": entry}
        for name, entry in loaded.items()
    }


def _run_one(script: Path, quick: bool) -> list[dict[str, Any]] | None:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rows.json"
        command = [sys.executable, str(script), "--report", str(report)]
        if quick:
            command.append("--quick")
        try:
            subprocess.run(command, check=True, timeout=_TIMEOUT, cwd=script.parent)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            print(f"   {script.name} failed: {exc}", file=sys.stderr)
            return None
        if not report.exists():
            print(f"   {script.name} wrote no --report rows", file=sys.stderr)
            return None
        return json.loads(report.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; "
        f"{datetime.date.today().isoformat()}"
    )


def _measured_on(results: _Results) -> list[str]:
    """One line per distinct machine and date, naming the benchmarks measured there."""
    by_run: dict[str, list[str]] = {}
    for name in sorted(results):
        by_run.setdefault(results[name]["measured_on"], []).append(name)
    if len(by_run) == 1:
        return [f"Measured on: {next(iter(by_run))}. Generated by `python -m bridges bench`."]
    lines = ["Generated by `python -m bridges bench` from more than one run:", ""]
    lines += [f"- {', '.join(names)}: measured on {run}" for run, names in by_run.items()]
    return lines


def _markdown(results: _Results, failed: list[str]) -> str:
    lines = [
        "# Benchmark report",
        "",
        *_measured_on(results),
        "",
        "Each figure is the median of interleaved repetitions (ours and the native baseline "
        "alternating in one run). *Ratio* is ours relative to the baseline with higher "
        "meaning faster, shown as median (min–max).",
        "",
        "| benchmark | case | ours | native baseline | ratio | target | meets |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in _rows(results):
        meets = {True: "yes", False: "**no**", None: "–"}[row.get("meets_target")]
        lines.append(
            f"| {row['benchmark']} | {row['case']} | {row['ours']:.1f} {row['unit']} | "
            f"{row['baseline']:.1f} ({row['baseline_name']}) | "
            f"{row['ratio']:.2f} ({row['ratio_min']:.2f}–{row['ratio_max']:.2f}) | "
            f"{row['target'] or '–'} | {meets} |"
        )
    if failed:
        lines += ["", "Did not run to completion: " + ", ".join(failed)]
    return "\n".join(lines) + "\n"


def _rows(results: _Results) -> list[dict[str, Any]]:
    return [row for name in sorted(results) for row in results[name]["rows"]]


def _chart(results: _Results, path: Path) -> Path:
    from ._bench_chart import draw

    draw(_rows(results), _measured_on(results), path)
    return path
