"""Twisted's own reactor test suites (ReactorBuilder), run against the hub's reactor.

They take minutes, so the test here runs only with BRIDGES_TWISTED_CONFORMANCE=1;
run them directly with::

    /work/venv/bin/python tests/test_twisted_conformance.py [module ...] [--uvloop]

The reactor under test is ``_twisted_helpers.StandaloneHubReactor``: the hub's
reactor (timers, fds through the hub, soon-write, cached log context, thread
pool) driving its own loop, as the suites expect of a reactor.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile

import pytest

MODULES = [
    "twisted.internet.test.test_core",
    "twisted.internet.test.test_time",
    "twisted.internet.test.test_threads",
    "twisted.internet.test.test_tcp",
    "twisted.internet.test.test_unix",
    "twisted.internet.test.test_fdset",
    "twisted.internet.test.test_udp",
    "twisted.internet.test.test_process",
]
HERE = os.path.dirname(os.path.abspath(__file__))


def suite_names(modules: list[str], reactor: str) -> list[str]:
    from twisted.internet.test.reactormixins import ReactorBuilder

    ReactorBuilder._reactors.append(f"_twisted_helpers.{reactor}")
    names = []
    for name in modules:
        module = importlib.import_module(name)
        suffix = f"_{reactor}Tests"
        names += [f"{name}.{attr}" for attr in vars(module) if attr.endswith(suffix)]
    return names


def main(argv: list[str]) -> None:
    sys.path.insert(0, HERE)
    reactor = "StandaloneHubReactorOnUvloop" if "--uvloop" in argv else "StandaloneHubReactor"
    modules = [arg for arg in argv if not arg.startswith("--")] or MODULES
    from twisted.scripts import trial

    temp = os.path.join(tempfile.mkdtemp(prefix="bridges-trial-"), "_trial_temp")
    sys.argv = ["trial", "--temp-directory", temp, *suite_names(modules, reactor)]
    trial.run()


@pytest.mark.skipif(
    os.environ.get("BRIDGES_TWISTED_CONFORMANCE") != "1",
    reason="takes minutes; set BRIDGES_TWISTED_CONFORMANCE=1",
)
@pytest.mark.timeout(900)
def test_twisteds_reactor_suites_pass_against_the_hubs_reactor() -> None:
    result = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, timeout=880, check=False
    )
    assert result.returncode == 0, result.stdout[-5000:]


if __name__ == "__main__":
    main(sys.argv[1:])
