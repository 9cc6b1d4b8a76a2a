"""tox's suite envs test the installed wheel, never the source tree they were started from.

tox.ini sets ``BRIDGES_TEST_INSTALLED=1`` and runs the tests from a copy of the
checkout without its ``bridges/`` package (``scripts/stage_checkout.py``).
These tests fail if ``bridges`` still resolves inside the checkout, in the
test process or in an interpreter started the way the tests start them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import bridges

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.environ.get("BRIDGES_TEST_INSTALLED") != "1",
    reason="checked in tox's suite envs, which set BRIDGES_TEST_INSTALLED=1",
)


def _inside_checkout(path: str) -> bool:
    return ROOT in Path(path).resolve().parents


def test_the_tests_import_the_installed_package() -> None:
    assert not _inside_checkout(bridges.__file__), (
        f"the tests imported bridges from the checkout ({bridges.__file__}), "
        "not the wheel tox installed"
    )
    assert "site-packages" in Path(bridges.__file__).parts


def test_a_child_started_in_the_checkout_with_it_on_pythonpath_imports_the_installed_package() -> (
    None
):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", "import bridges; print(bridges.__file__)"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=True,
    )
    located = done.stdout.strip()
    assert not _inside_checkout(located), f"a child process imported the checkout: {located}"
    assert Path(located).resolve() == Path(bridges.__file__).resolve()
