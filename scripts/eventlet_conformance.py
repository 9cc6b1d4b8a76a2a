"""Run eventlet's own test suite on its native hub, its asyncio hub and the bridges hub.

Usage::

    python scripts/eventlet_conformance.py              # the curated modules
    python scripts/eventlet_conformance.py --all        # every tests/*_test.py module
    python scripts/eventlet_conformance.py event_test queue_test --timeout 90

The pass counts are printed side by side.  The tests come from eventlet's
sdist for the installed version (downloaded once with ``pip download
--no-binary :all: --no-deps eventlet==V`` into a cache directory, or given
with ``--sdist DIR``).  Each module runs under pytest in its own process,
three times:

* ``native``: eventlet's default hub (epolls on Linux);
* ``asyncio``: eventlet's own asyncio hub (``EVENTLET_HUB=asyncio``);
* ``bridges``: the bridges hub.  ``bridges.run(frameworks=["eventlet"])``
  runs the loop and the whole pytest session runs in one greenthread on it,
  so the tests block on eventlet as they do natively (in the main greenlet),
  while the loop is asyncio's.

A module passes when pytest exits 0 (or collects nothing) within the
timeout; the counts pytest reports are printed beside each other.
``tests/test_eventlet_conformance.py`` runs the curated modules in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, NamedTuple

MODES = ("native", "asyncio", "bridges")
CURATED = [
    "api_test",
    "convenience_test",
    "dagpool_test",
    "event_test",
    "greenio_test",
    "greenpool_test",
    "greenthread_test",
    "pools_test",
    "queue_test",
    "semaphore_test",
    "socket_test",
    "subprocess_test",
    "test__event",
    "test__socket_errors",
    "timeout_test",
    "timeout_with_statement_test",
    "tpool_test",
    "wsgi_test",
]
_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


class Outcome(NamedTuple):
    passed: bool
    summary: str
    seconds: float


def eventlet_version() -> str:
    from importlib.metadata import version

    return version("eventlet")


def suite_dir(sdist: str | None = None) -> Path:
    """A directory holding only eventlet's ``tests`` package (the installed eventlet is tested).

    Running from the unpacked sdist itself would import the sdist's
    ``eventlet`` source instead of the installed one.
    """
    version = eventlet_version()
    cache = Path(tempfile.gettempdir()) / f"bridges-eventlet-suite-{version}"
    suite = cache / "suite"
    if (suite / "tests").exists():
        return suite
    if sdist is None:
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:"]
        subprocess.run(
            [*pip, "--no-deps", f"eventlet=={version}", "-d", str(cache)], check=True, timeout=300
        )
        archive = next(cache.glob(f"eventlet-{version}.tar.gz"))
        # eventlet's own sdist from the package index; "data" refuses links out of it.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        with tarfile.open(archive) as tar:
            tar.extractall(cache, **safe)
        root = cache / f"eventlet-{version}"
    else:
        root = Path(sdist)
    suite.mkdir(parents=True, exist_ok=True)
    (suite / "tests").symlink_to((root / "tests").resolve(), target_is_directory=True)
    return suite


def all_modules(suite: Path) -> list[str]:
    folder = suite / "tests"
    return sorted(p.stem for p in folder.glob("*_test.py")) + sorted(
        p.stem for p in folder.glob("test__*.py")
    )


def run_module(module: str, mode: str, suite: Path, timeout: float) -> Outcome:
    env = dict(os.environ)
    env.pop("EVENTLET_HUB", None)
    if mode == "asyncio":
        env["EVENTLET_HUB"] = "asyncio"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(suite), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--inner", mode, module],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=str(suite),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(False, f"timeout after {timeout:g}s", time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    counts = _COUNTS.findall(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    summary = ", ".join(f"{n} {what}" for n, what in counts) or f"exit {done.returncode}"
    return Outcome(done.returncode in (0, 5), summary, elapsed)


def iter_all(
    modules: list[str], suite: Path, timeout: float, jobs: int
) -> Iterator[tuple[str, dict[str, Outcome]]]:
    """Each module on each hub in turn; ``jobs`` modules at once, yielded in order as they end."""

    def each(module: str) -> tuple[str, dict[str, Outcome]]:
        return module, {mode: run_module(module, mode, suite, timeout) for mode in MODES}

    with ThreadPoolExecutor(jobs) as pool:
        yield from pool.map(each, modules)


def run_all(
    modules: list[str], suite: Path, timeout: float, jobs: int
) -> list[tuple[str, dict[str, Outcome]]]:
    """:func:`iter_all`, collected."""
    return list(iter_all(modules, suite, timeout, jobs))


def _inner(mode: str, module: str) -> int:
    """In the subprocess (cwd: the suite directory): one module under pytest on one hub."""
    import pytest

    args = ["-q", "-p", "no:bridges", "-p", "no:cacheprovider", f"tests/{module}.py"]
    if mode != "bridges":
        return int(pytest.main(args))
    import eventlet

    import bridges

    async def main() -> int:
        return int(await bridges.awaitable(eventlet.spawn(pytest.main, args)))

    return bridges.run(main, frameworks=["eventlet"])  # type: ignore[no-any-return]


def main() -> int:
    if sys.argv[1:2] == ["--inner"]:
        return _inner(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="eventlet tests modules (default: curated)")
    parser.add_argument("--all", action="store_true", help="every module of eventlet's tests")
    parser.add_argument("--sdist", help="an unpacked eventlet sdist (default: download it)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per module run")
    parser.add_argument("--jobs", type=int, default=2, help="modules run at once")
    args = parser.parse_args()
    suite = suite_dir(args.sdist)
    modules = all_modules(suite) if args.all else (args.modules or CURATED)
    ok = dict.fromkeys(MODES, 0)
    print(f"eventlet {eventlet_version()}")
    print(f"{'module':<28} " + " ".join(f"{mode:<34}" for mode in MODES))
    for module, outcomes in iter_all(modules, suite, args.timeout, args.jobs):
        for mode in MODES:
            ok[mode] += outcomes[mode].passed
        mark = "" if outcomes["bridges"].passed >= outcomes["native"].passed else "  <-- differs"
        cells = " ".join(f"{cell(outcomes[mode]):<34}" for mode in MODES)
        print(f"{module:<28} {cells}{mark}", flush=True)
    total = len(modules)
    print("\nmodules passing: " + ", ".join(f"{mode} {ok[mode]}/{total}" for mode in MODES))
    return 0 if ok["bridges"] >= ok["native"] else 1


def cell(outcome: Outcome) -> str:
    status = "pass" if outcome.passed else "FAIL"
    return f"{status} ({outcome.summary}, {outcome.seconds:.0f}s)"[:33]


if __name__ == "__main__":
    sys.exit(main())
