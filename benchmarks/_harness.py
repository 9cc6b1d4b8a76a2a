"""Shared measuring rules for the benchmarks (docs/benchmarks.md says how to read them).

* Interleave: baseline and candidate alternate (A B A B ...), and the figure is
  the median of the per-repetition ratios, shown with its min and max.
* Every benchmark script takes ``--report PATH`` and writes its rows there as
  JSON, so ``python -m bridges bench`` can put every figure into one table.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import select
import socket
import statistics
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

__all__ = [
    "Row",
    "add_report_options",
    "compare",
    "emit",
    "keep_in_flight",
    "parse_args",
    "process_cpu_ns",
    "summarise",
]


@dataclass
class Row:
    benchmark: str
    """Which benchmark file (e.g. "twisted")."""
    case: str
    """What was measured, e.g. "ping-pong, 1 connection, stdlib loop"."""
    unit: str
    """Unit of ``ours`` and ``baseline``, e.g. "round trips/s" or "µs per await"."""
    higher_is_better: bool
    ours: float
    baseline: float
    baseline_name: str
    ratio: float
    """Median over repetitions of ours/baseline when higher is better, else baseline/ours:
    above 1 always means we are faster."""
    ratio_min: float
    ratio_max: float
    target: str
    """The target (docs/benchmarks.md) in words, e.g. ">= 0.8x epoll"; empty when none."""
    meets_target: bool | None = None
    target_ratio: float | None = None
    """The lowest ``ratio`` that meets a ratio target (the chart draws it); None otherwise."""


def compare(
    *,
    benchmark: str,
    case: str,
    unit: str,
    higher_is_better: bool,
    baseline_name: str,
    baseline: Callable[[], float],
    ours: Callable[[], float],
    repetitions: int = 5,
    target: str = "",
    target_ratio: float | None = None,
) -> Row:
    """Measure ``baseline`` and ``ours`` alternately and summarise the ratios.

    Each callable runs one measurement and returns its figure in ``unit``.
    ``target_ratio`` (when given) decides ``meets_target`` from the median ratio.
    """
    baselines: list[float] = []
    mine: list[float] = []
    for _ in range(repetitions):
        baselines.append(baseline())
        mine.append(ours())
    return summarise(
        benchmark=benchmark,
        case=case,
        unit=unit,
        higher_is_better=higher_is_better,
        baseline_name=baseline_name,
        baselines=baselines,
        ours=mine,
        target=target,
        target_ratio=target_ratio,
    )


def summarise(
    *,
    benchmark: str,
    case: str,
    unit: str,
    higher_is_better: bool,
    baseline_name: str,
    baselines: Sequence[float],
    ours: Sequence[float],
    target: str = "",
    target_ratio: float | None = None,
) -> Row:
    """One row from figures measured in turn: ``baselines[i]`` beside ``ours[i]``."""
    ratios = [_speedup(base, mine, higher_is_better) for base, mine in zip(baselines, ours)]
    ratio = statistics.median(ratios)
    return Row(
        benchmark=benchmark,
        case=case,
        unit=unit,
        higher_is_better=higher_is_better,
        ours=statistics.median(ours),
        baseline=statistics.median(baselines),
        baseline_name=baseline_name,
        ratio=ratio,
        ratio_min=min(ratios),
        ratio_max=max(ratios),
        target=target,
        meets_target=None if target_ratio is None else ratio >= target_ratio,
        target_ratio=target_ratio,
    )


def _speedup(base: float, mine: float, higher_is_better: bool) -> float:
    if higher_is_better:
        return mine / base if base else float("inf")
    return base / mine if mine else float("inf")


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """The options ``python -m bridges bench`` passes to every benchmark."""
    parser.add_argument("--report", help="write the result rows to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    add_report_options(parser)
    return parser.parse_args(argv)


def emit(rows: Sequence[Row], report: str | None) -> None:
    """Print the rows as a table and, with ``--report``, write them as JSON."""
    for row in rows:
        verdict = "" if row.meets_target is None else ("  ok" if row.meets_target else "  MISSED")
        print(
            f"{row.case:<48} ours {row.ours:>10.1f} {row.unit:<14} "
            f"{row.baseline_name} {row.baseline:>10.1f}  "
            f"ratio {row.ratio:.2f} ({row.ratio_min:.2f}-{row.ratio_max:.2f})"
            f"  target {row.target or '-'}{verdict}"
        )
    if report:
        with open(report, "w", encoding="utf-8") as out:
            json.dump([asdict(row) for row in rows], out, indent=1)


def process_cpu_ns(pid: int) -> int:
    """CPU time used so far by every thread of process ``pid`` (``/proc/PID/task/*/schedstat``)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        with contextlib.suppress(OSError), open(path) as stat:
            total += int(stat.read().split()[0])
    return total


def keep_in_flight(
    socks: Sequence[socket.socket],
    rounds: int,
    request: Callable[[int, int], bytes],
    reply_size: int,
    check: Callable[[int, int, bytes], None],
    server: str,
) -> None:
    """Every socket keeps one request in flight until it made ``rounds`` of them.

    Each sends ``request(fd, left)`` (``left``: the rounds still to make,
    this one included), reads exactly ``reply_size`` bytes back and hands
    them to ``check(fd, left, reply)``; then sends the next at once.  A reply
    longer than ``reply_size``, a closed connection or 10 s of silence from
    ``server`` fail the run.
    """
    poller = select.epoll()
    by_fd = {sock.fileno(): sock for sock in socks}
    left = dict.fromkeys(by_fd, rounds)
    got = dict.fromkeys(by_fd, b"")
    try:
        for fd, sock in by_fd.items():
            sock.setblocking(False)
            sock.send(request(fd, rounds))
            poller.register(fd, select.EPOLLIN)
        while left:
            events = poller.poll(10)
            if not events:
                raise AssertionError(f"{server} answered nothing for 10 s")
            for fd, _ in events:
                chunk = by_fd[fd].recv(65536)
                if not chunk:
                    raise AssertionError(f"{server} closed a connection")
                got[fd] += chunk
                if len(got[fd]) < reply_size:
                    continue
                if len(got[fd]) > reply_size:
                    raise AssertionError(f"{server} sent more than one reply")
                check(fd, left[fd], got[fd])
                got[fd] = b""
                left[fd] -= 1
                if left[fd]:
                    by_fd[fd].send(request(fd, left[fd]))
                else:
                    del left[fd]
                    poller.unregister(fd)
    finally:
        poller.close()
        for sock in socks:
            sock.setblocking(True)
