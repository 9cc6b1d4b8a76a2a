"""SIGINT and SIGTERM stop a real ``bridges.run`` process in order, without hanging."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

SERVICE = textwrap.dedent(
    """
    import asyncio, logging, sys
    import bridges

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("bridges").addHandler(handler)
    logging.getLogger("bridges").setLevel(logging.DEBUG)

    def say(line):
        print(line, flush=True)

    async def legacy_work():
        try:
            await asyncio.sleep(3600)
        finally:
            say("legacy task cancelled")

    async def main():
        bridges.current_hub().spawn(legacy_work())
        say("ready")
        try:
            await asyncio.sleep(3600)
        finally:
            say("main cancelled")

    try:
        result = bridges.run(main, frameworks=None)
    except KeyboardInterrupt:
        say("run raised KeyboardInterrupt")
        raise
    say(f"run returned {result!r}")
    """
)


def run_and_signal(signum: int) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVICE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, "ready\n" + stdout, stderr)


def stop_order(output: str) -> list[str]:
    return [line for line in output.splitlines() if not line.startswith("bridges: attached")]


@pytest.mark.timeout(60)
def test_sigterm_runs_the_stop_sequence_then_run_returns_none_and_exits_zero() -> None:
    done = run_and_signal(signal.SIGTERM)
    assert done.returncode == 0, done.stderr
    assert stop_order(done.stdout) == [
        "ready",
        "bridges: stop requested by SIGTERM",
        "main cancelled",
        "bridges: stop stage legacy tasks",
        "legacy task cancelled",
        "bridges: stopped",
        "run returned None",
    ]
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(60)
def test_sigint_runs_the_stop_sequence_then_raises_keyboard_interrupt() -> None:
    done = run_and_signal(signal.SIGINT)
    assert done.returncode == -signal.SIGINT  # how Python exits on an uncaught KeyboardInterrupt
    assert stop_order(done.stdout) == [
        "ready",
        "bridges: stop requested by SIGINT",
        "main cancelled",
        "bridges: stop stage legacy tasks",
        "legacy task cancelled",
        "bridges: stopped",
        "run raised KeyboardInterrupt",
    ]
    assert done.stderr.rstrip().endswith("KeyboardInterrupt")


@pytest.mark.timeout(60)
def test_run_works_and_says_so_when_the_loop_refuses_signal_handlers() -> None:
    pytest.importorskip("gevent")
    pytest.importorskip("uvloop")
    # After gevent.monkey.patch_all(), uvloop no longer recognises the main
    # thread and refuses add_signal_handler; run() must go on without them.
    script = textwrap.dedent(
        """
        import gevent.monkey
        gevent.monkey.patch_all()
        import asyncio, bridges

        async def main():
            await asyncio.sleep(0.01)
            return "ran"

        print(bridges.run(main, frameworks=["gevent"], loop_factory="uvloop"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran"
    assert "SIGINT and SIGTERM will not stop the hub" in done.stderr
