"""A newcomer's first hour: the README's commands, the CLI's help, the demo on a partial install."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest
from _entry_helpers import ROOT, WAIT

import bridges

README = (ROOT / "README.md").read_text()


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=WAIT, cwd=ROOT
    )


@pytest.mark.parametrize("command", [[], ["demo"], ["doctor"], ["bench"]])
def test_the_cli_help_is_plain_text(command: list[str]) -> None:
    shown = _python("-m", "bridges", *command, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "``" not in shown.stdout  # reStructuredText markup, unreadable in a terminal
    assert "usage: python -m bridges" in shown.stdout


# Run as `python -m bridges demo` is, with these modules' imports blocked as if their
# packages were not installed (sys.modules[name] = None makes `import name` fail).
_BLOCKED_DEMO = (
    "import runpy, sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['python -m bridges', 'demo']\n"
    "runpy.run_module('bridges', run_name='__main__')\n"
)


@pytest.mark.parametrize(
    ("blocked", "extras"),
    [
        pytest.param(
            "tornado,gevent,asyncore,asynchat",
            ["asyncore", "gevent", "tornado"],
            id="only .[twisted] installed",
        ),
        pytest.param("asynchat", ["asyncore"], id="asynchat missing"),
    ],
)
def test_the_demo_after_a_partial_install_prints_one_line_naming_the_extras(
    blocked: str, extras: list[str]
) -> None:
    ran = _python("-c", _BLOCKED_DEMO, blocked)
    assert ran.returncode == 2
    assert ran.stdout == ""
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr  # no traceback
    for name in extras:
        assert f"tulip-bridges[{name}]" in lines[0]
    assert "tulip-bridges[twisted]" not in lines[0]
    assert "python -m pip install 'tulip-bridges[all]'" in lines[0]


def _quick_start() -> str:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert found is not None
    return found.group(1)


def test_the_quick_start_creates_and_activates_a_venv_before_installing() -> None:
    commands = _quick_start()
    venv = commands.index("python3 -m venv .venv")
    activate = commands.index(". .venv/bin/activate")
    install = commands.index("python -m pip install")
    assert venv < activate < install


def test_the_quick_start_runs_the_demo_and_the_tests() -> None:
    commands = _quick_start()
    assert "python -m pip install '.[all]' && python -m bridges demo" in commands
    assert "python -m pip install '.[test]' && python -m pytest -n auto" in commands


def test_the_readme_shows_bridges_run_with_every_parameter() -> None:
    shown = re.search(r"^\| `bridges\.run\((main[^`]*)\)`", README, flags=re.MULTILINE)  # API table
    assert shown is not None
    names = [part.split("=")[0].strip().lstrip("*") for part in shown.group(1).split(",")]
    assert names == list(inspect.signature(bridges.run).parameters)
