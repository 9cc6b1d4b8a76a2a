"""The accounting through prometheus_client, logging, a dump over time, and the report's chart."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from _demo_helpers import EXAMPLES, run_command
from prometheus_client import CollectorRegistry, generate_latest

import bridges
from bridges.__main__ import main as cli
from bridges.metrics import HubCollector, dump_every, log_every


def legacy_call() -> str:
    time.sleep(0.01)
    return "done"


def legacy_step(done: asyncio.Future[str]) -> None:
    done.set_result(legacy_call())


async def _twisted_work(times: int) -> None:
    from twisted.internet import reactor

    for _ in range(times):
        done = asyncio.get_running_loop().create_future()
        reactor.callLater(0, legacy_step, done)
        await done


def test_the_collector_exposes_each_framework_as_a_label() -> None:
    async def main() -> bytes:
        registry = CollectorRegistry()
        registry.register(HubCollector(bridges.current_hub()))
        await _twisted_work(3)
        return generate_latest(registry)

    text = bridges.run(main, frameworks=["twisted"]).decode()
    seconds = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("bridges_loop_seconds_total{")
    }
    assert seconds["twisted"] >= 3 * 0.01
    assert "asyncio" in seconds
    assert 'bridges_dispatches_total{framework="twisted"}' in text
    assert "bridges_loop_busy_seconds_total " in text
    assert "bridges_slow_callbacks_total 0.0" in text
    assert (
        f'bridges_slowest_dispatch_seconds{{framework="twisted",function="{__name__}.legacy_step"}}'
        in text
    )


def test_log_every_logs_each_frameworks_share_at_the_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        log_every(0.05)
        await _twisted_work(10)
        await asyncio.sleep(0.06)

    with caplog.at_level(logging.INFO, logger="bridges.metrics"):
        bridges.run(main, frameworks=["twisted"])
    lines = [r for r in caplog.records if r.name == "bridges.metrics"]
    assert len(lines) >= 2
    assert any("twisted" in r.getMessage() and "%" in r.getMessage() for r in lines)
    assert all("frameworks" in r.bridges_stats for r in lines)  # type: ignore[attr-defined]


def test_dump_every_writes_cumulative_samples_until_the_hub_stops(tmp_path: Path) -> None:
    dump = tmp_path / "stats.jsonl"

    async def main() -> None:
        dump_every(0.05, str(dump))
        await _twisted_work(10)
        await asyncio.sleep(0.12)

    bridges.run(main, frameworks=["twisted"])
    samples = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(samples) >= 3
    twisted = [sample["frameworks"].get("twisted", {}).get("seconds", 0.0) for sample in samples]
    assert twisted == sorted(twisted)
    assert twisted[-1] >= 10 * 0.01
    assert [s["time"] for s in samples] == sorted(s["time"] for s in samples)


def test_the_report_draws_a_dump_as_a_png(tmp_path: Path, capsys: Any) -> None:
    pytest.importorskip("matplotlib", reason="the report's chart needs the bench extra")
    dump = tmp_path / "stats.jsonl"

    async def main() -> None:
        dump_every(0.03, str(dump))
        for _ in range(4):
            await _twisted_work(3)
            await asyncio.sleep(0.03)

    bridges.run(main, frameworks=["twisted"])
    chart = tmp_path / "chart.png"
    assert cli(["report", str(dump), "-o", str(chart)]) == 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_refuses_a_dump_with_fewer_than_two_samples(tmp_path: Path) -> None:
    dump = tmp_path / "empty.jsonl"
    dump.write_text("")
    assert cli(["report", str(dump), "-o", str(tmp_path / "chart.png")]) == 1
    assert not (tmp_path / "chart.png").exists()


def test_the_intervals_need_accounting_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGES_ACCOUNTING", "0")
    monkeypatch.delenv("BRIDGES_SLOW_CALLBACK", raising=False)

    async def main() -> None:
        log_every(1.0)

    with pytest.raises(bridges.UsageError, match="accounting is off"):
        bridges.run(main, frameworks=None)


@pytest.mark.timeout(120)
def test_the_migration_example_shows_asyncios_share_growing() -> None:
    code, output = run_command(
        ["load.py", "--self-test"], cwd=EXAMPLES / "observe_migration", timeout=100
    )
    assert code == 0, output
    assert "self-test passed" in output
