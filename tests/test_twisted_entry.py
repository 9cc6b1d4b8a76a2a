"""Twisted's own entry points start the hub: twistd, twist, and an unchanged reactor.run().

Each test runs a real service in a subprocess (the process-global reactor of
this test process is already the hub's), serves a real request on 127.0.0.1
and stops it the way its users do: SIGTERM, Ctrl-C or ``reactor.stop()``.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from _entry_helpers import (
    ROOT,
    TWIST,
    TWISTD,
    WAIT,
    get,
    logged_port,
    pid_alive,
    read,
    run_script,
    script,
    start,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)

TAC = ROOT / "examples" / "twistd_service" / "service.tac"
REACTORS = ["bridges", "bridges-uvloop"]


def _check_inventory(port: int) -> None:
    """The example's old Twisted handler and its new asyncio code both answer."""
    assert get(f"http://127.0.0.1:{port}/stock?item=apples") == "apples=3\n"
    # The restocker is an asyncio coroutine started by startService: pears get restocked.
    wait_for(
        "the asyncio restocker to run",
        lambda: "restocks=0" not in get(f"http://127.0.0.1:{port}/forecast"),
    )
    assert get(f"http://127.0.0.1:{port}/stock?item=pears") == "pears=5\n"


@pytest.mark.parametrize("reactor", REACTORS)
def test_twistd_in_the_foreground_runs_the_example_tac_and_exits_0_on_sigterm(
    reactor: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    log, pidfile = tmp_path / "twistd.log", tmp_path / "twistd.pid"
    argv = [*TWISTD, "-n", f"--reactor={reactor}", f"--logfile={log}", f"--pidfile={pidfile}"]
    service = start(request, [*argv, "-y", str(TAC)], tmp_path, {"INVENTORY_PORT": "0"})

    _check_inventory(logged_port(log))
    assert pidfile.read_text().strip() == str(service.proc.pid)

    assert service.stop(signal.SIGTERM) == 0, read(log) + service.output()
    text = read(log)
    assert "reactor class: bridges.twisted" in text
    assert "restocker stopped after" in text  # stopService ran in the hub's stop sequence
    assert "Server Shut Down." in text
    assert not pidfile.exists()  # twistd removes it after reactor.run() returned
    assert "Traceback" not in text


def test_twistd_daemonized_writes_its_pidfile_serves_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    log, pidfile = tmp_path / "twistd.log", tmp_path / "twistd.pid"
    argv = [*TWISTD, "--reactor=bridges", f"--logfile={log}", f"--pidfile={pidfile}"]
    # twistd forks the daemon and returns once the application started.
    started = subprocess.run(
        [*argv, "-y", str(TAC)],
        cwd=tmp_path,
        env={**os.environ, "INVENTORY_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert started.returncode == 0, started.stdout + started.stderr + read(log)
    pid = int(str(wait_for("the pidfile", lambda: read(pidfile).strip())))
    try:
        _check_inventory(logged_port(log))
        os.kill(pid, signal.SIGTERM)
        wait_for("the daemon to exit", lambda: not pid_alive(pid))
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    text = read(log)
    assert "restocker stopped after" in text
    assert "Server Shut Down." in text
    assert not pidfile.exists()
    assert "Traceback" not in text


def test_twist_runs_the_example_plugin_service_on_the_hub_and_exits_0_on_sigterm(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    example = tmp_path / "twistd_service"
    shutil.copytree(TAC.parent, example, ignore=shutil.ignore_patterns("dropin.cache"))
    log = tmp_path / "twist.log"
    argv = [*TWIST, "--reactor=bridges", f"--log-file={log}", "--log-format=text"]
    service = start(
        request, [*argv, "inventory", "--port=0"], example, {"PYTHONPATH": str(example)}
    )

    _check_inventory(logged_port(log))

    assert service.stop(signal.SIGTERM) == 0, read(log) + service.output()
    assert "restocker stopped after" in read(log)


def test_twist_runs_a_stock_plugin_on_the_hub(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("hello from twist\n")
    log = tmp_path / "twist.log"
    argv = [*TWIST, "--reactor=bridges", f"--log-file={log}", "--log-format=text", "web"]
    listen = ["--listen", "tcp:0:interface=127.0.0.1", "--path", str(tmp_path / "www")]
    service = start(request, [*argv, *listen], tmp_path)

    assert get(f"http://127.0.0.1:{logged_port(log)}/hello.txt") == "hello from twist\n"
    assert service.stop(signal.SIGTERM) == 0, read(log) + service.output()


def test_twistd_lists_the_bridges_reactors(tmp_path: Path) -> None:
    listed = subprocess.run(
        [*TWISTD, "--help-reactors"], cwd=tmp_path, capture_output=True, text=True, timeout=WAIT
    )
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert "bridges" in names
    assert "bridges-uvloop" in names


def test_the_wheel_ships_the_reactor_plugin_where_twisted_finds_it(tmp_path: Path) -> None:
    """A non-editable install: the built wheel, installed into a directory of its own,
    with this environment's Twisted and nothing of the source tree on the path."""
    if os.environ.get("BRIDGES_TEST_INSTALLED"):
        # The suite runs against the installed wheel (tox): there is no source
        # tree to build; check the files the installed wheel brought instead.
        shipped = [str(name) for name in importlib.metadata.files("tulip-bridges") or ()]
        assert "twisted/plugins/bridges_reactor.py" in shipped
        assert not [name for name in shipped if name.startswith("twisted/") and "__init__" in name]
        return
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("tulip_bridges-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/bridges_reactor.py" in names
    # An __init__.py there would shadow Twisted's own twisted.plugins package.
    assert not [name for name in names if name.startswith("twisted/") and "__init__" in name]

    target = tmp_path / "installed"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "-t", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    import twisted

    site = str(Path(twisted.__file__).parent.parent)
    code = (
        "import sys; sys.path[:0] = [sys.argv.pop(1), sys.argv.pop(1)]; "
        "from twisted.scripts.twistd import run; run()"
    )
    # -S: no .pth file of this environment (the editable install) is read.
    listed = subprocess.run(
        [sys.executable, "-S", "-c", code, str(target), site, "--help-reactors"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert listed.returncode == 0, listed.stderr
    assert "\n    bridges\t" in listed.stdout


# -- bridges.twisted.install() and an unchanged reactor.run() ------------------------

ECHO_SERVICE = """
    from bridges import twisted as bt
    bt.install()

    import asyncio
    import bridges
    from twisted.internet import protocol, reactor, task

    class Echo(protocol.Protocol):
        def dataReceived(self, data):
            self.transport.write(data)

    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Echo), interface="127.0.0.1")

    async def warm_up():
        await asyncio.sleep(0.01)  # real asyncio, on the reactor's loop
        return await bridges.awaitable(task.deferLater(reactor, 0.01, lambda: "deferred"))

    def started():
        bt.deferred(warm_up()).addCallback(lambda r: print("ready", port.getHost().port, r,
                                                           flush=True))

    reactor.callWhenRunning(started)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: print("shutdown", flush=True))
    reactor.run()
    print("reactor.run() returned", type(reactor).__name__, flush=True)
"""


def _echo(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"ping")
        return conn.recv(4)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_install_then_an_unchanged_reactor_run_serves_until_a_signal_and_returns(
    signum: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    service = start(request, [sys.executable, str(script(tmp_path, ECHO_SERVICE))], tmp_path)
    ready = service.line(r"ready (\d+) deferred")
    assert _echo(int(ready.group(1))) == b"ping"

    assert service.stop(signum) == 0, service.output()
    out = service.output()
    assert "shutdown\n" in out  # the shutdown triggers ran before run() returned
    assert "reactor.run() returned" in out
    assert "Traceback" not in out


def test_reactor_stop_ends_an_installed_reactor_run(tmp_path: Path) -> None:
    code = """
        from bridges import twisted as bt
        bt.install()
        from twisted.internet import reactor
        reactor.callLater(0.05, reactor.stop)
        reactor.run()
        print("stopped", reactor.running)
    """
    done = run_script(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "stopped False\n"


def test_a_coroutine_handed_to_twisted_before_run_starts_when_the_reactor_runs(
    tmp_path: Path,
) -> None:
    # twistd calls startService before reactor.run(): no loop runs yet.
    code = """
        import asyncio, warnings
        warnings.simplefilter("error")
        from bridges import twisted as bt
        bt.install()
        from twisted.internet import reactor, defer

        async def job():
            await asyncio.sleep(0.01)
            return asyncio.current_task() is not None

        async def never_started():
            raise AssertionError("a cancelled coroutine ran")

        early = bt.deferred(job())
        cancelled = bt.deferred(never_started())
        cancelled.cancel()
        cancelled.addErrback(lambda f: print("cancelled", f.check(defer.CancelledError).__name__))
        early.addCallback(lambda in_task: print("ran in a task:", in_task))
        early.addBoth(lambda _: reactor.stop())
        reactor.run()
    """
    done = run_script(tmp_path, code, "-W", "error")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "cancelled CancelledError\nran in a task: True\n"
    assert "never awaited" not in done.stderr


def test_install_after_another_reactor_says_to_call_it_first_or_use_twistd(
    tmp_path: Path,
) -> None:
    code = """
        from twisted.internet import reactor
        from bridges import twisted as bt
        try:
            bt.install()
        except bt.ForeignReactorError as exc:
            print(exc)
    """
    done = run_script(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert "when bridges.twisted.install() was called" in done.stdout
    assert "call bridges.twisted.install() first thing" in done.stdout
    assert "twistd --reactor=bridges" in done.stdout


def test_install_after_bridges_run_installed_the_reactor_is_refused(tmp_path: Path) -> None:
    code = """
        import bridges
        from bridges import twisted as bt
        async def main():
            pass
        bridges.run(main, frameworks=["twisted"])
        try:
            bt.install()
        except bridges.HubStateError as exc:
            print(exc)
    """
    done = run_script(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert "Keep one way" in done.stdout


def test_reactor_run_inside_a_hub_started_by_reactor_run_is_refused(tmp_path: Path) -> None:
    code = """
        from bridges import twisted as bt
        bt.install()
        from twisted.internet import reactor
        def nested():
            try:
                reactor.run()
            except bt.HubOwnsLoopError:
                print("refused")
            reactor.stop()
        reactor.callWhenRunning(nested)
        reactor.run()
    """
    done = run_script(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "refused\n"
