"""``python -m bridges doctor``: what this environment can run, and what will fight the hub.

It checks in the order problems bite: conflicts that already exist in the
process (a reactor imported, gevent monkey-patching) are read before the hub
tries anything, because attaching a framework would change them.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import platform
import sys
from typing import Iterable, TextIO

from . import __version__, _adapter
from ._pytest.competitors import advice
from ._run import run

__all__ = ["doctor", "framework_version"]


def framework_version(name: str) -> str | None:
    """The installed version of a framework, or None when it is not installed."""
    if name == "asyncore" and sys.version_info < (3, 12):
        return f"stdlib (Python {platform.python_version()})"
    return _dist_version("pyasyncore" if name == "asyncore" else name)


def doctor(out: TextIO = sys.stdout) -> int:
    """Print the report; return 0 when every installed framework attaches, else 1."""

    def say(line: str) -> None:
        print(line, file=out)

    say(f"tulip-bridges {__version__}")
    say(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on {sys.platform}"
    )
    say("")
    say("Conflicts:")
    conflicts = list(_conflicts())
    for line in conflicts or ["none found"]:
        say(f"  - {line}")
    say("")
    say("Event loops:")
    say(f"  asyncio  stdlib, default policy {type(asyncio.get_event_loop_policy()).__name__}")
    uvloop_version = _dist_version("uvloop")
    say(
        f"  uvloop   {uvloop_version}, use loop_factory='uvloop'"
        if uvloop_version
        else "  uvloop   not installed (pip install 'tulip-bridges[uvloop]')"
    )
    say("")
    say("Frameworks:")
    failures = 0
    attaching: list[str] = []
    for entry in _adapter.entries():
        version = framework_version(entry.name) if entry.available() else None
        if version is None:
            say(f"  {entry.name:<9} not installed ({entry.install_hint or 'not available'})")
            continue
        verdict = _try_attach(entry.name)
        failures += verdict != "attaches"
        if verdict == "attaches":
            attaching.append(entry.name)
        say(f"  {entry.name:<9} {version:<28} {verdict}")
    say("")
    say("gunicorn workers:")
    for line in _gunicorn_report(attaching):
        say(f"  {line}")
    say("")
    say("pytest plugins:")
    for line in _pytest_plugins() or ["none besides bridges' own"]:
        say(f"  - {line}")
    return 1 if failures else 0


def _gunicorn_report(attaching: list[str]) -> list[str]:
    # Imported here: bridges.gunicorn imports gunicorn, which the doctor must not need.
    if _dist_version("gunicorn") is None:
        return ["gunicorn not installed (pip install 'tulip-bridges[gunicorn]')"]
    from .gunicorn._doctor import report

    return report(attaching)


def _conflicts() -> Iterable[str]:
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None:
        kind = type(reactor)
        yield (
            f"a Twisted reactor ({kind.__module__}.{kind.__qualname__}) is already installed in "
            "this process, so the hub cannot attach Twisted: the hub installs its own reactor "
            "when it starts, and Twisted allows one per process (importing bridges.twisted "
            "installs nothing). Do not import twisted.internet.reactor before bridges.run() or "
            "bridges.Hub() starts: import it inside the code that runs on the hub, and install "
            "no other reactor (asyncioreactor.install(), pytest-twisted)."
        )
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_anything_patched():
        patched = ", ".join(sorted(monkey.saved))
        yield (
            f"gevent monkey-patching is active ({patched}); "
            "docs/gevent.md says what is supported under it"
        )
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None:
        patched = [name for name in _EVENTLET_PATCHABLE if patcher.is_monkey_patched(name)]
        if patched:
            yield (
                f"eventlet monkey-patching is active ({', '.join(patched)}); eventlet attaches "
                "(docs/eventlet.md), gevent cannot share its hub in this process"
            )


_EVENTLET_PATCHABLE = ("os", "select", "socket", "thread", "time")


def _try_attach(name: str) -> str:
    try:
        run(asyncio.sleep, 0, frameworks=[name])
    except Exception as exc:  # noqa: BLE001 - the doctor reports every failure instead of dying on it
        return f"does not attach: {type(exc).__name__}: {exc}"
    return "attaches"


def _pytest_plugins() -> list[str]:
    found = []
    for plugin in _adapter.competing_plugins():
        version = _dist_version(plugin.project)
        if version is not None:
            found.append(f"{plugin.project} {version}: {advice(plugin)}")
    return found


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
