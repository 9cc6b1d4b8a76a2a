"""Copy the checkout, without its ``bridges`` package, to where tox runs the tests.

tox installs the wheel it built; running the tests from the checkout would
still import the source tree first (``python -m pytest`` puts the current
directory on ``sys.path``, and the tests start interpreters with the checkout
as their directory or on ``PYTHONPATH``).  In a copy with no ``bridges/``
directory, the only ``bridges`` any of them can import is the installed one.
``tests/test_installed_wheel.py`` checks that this holds.

Usage: ``python scripts/stage_checkout.py CHECKOUT DESTINATION``
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

NOT_SOURCE = (
    ".git",
    ".tox",
    ".venv",
    "venv",
    ".ci-venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "bench-results",
)
"""What a checkout holds besides its files: version control, virtualenvs, caches, build output."""
SKIPPED = shutil.ignore_patterns(*NOT_SOURCE)


def stage(checkout: Path, destination: Path) -> None:
    """Fill ``destination`` with ``checkout`` minus its package and its build litter."""
    destination.mkdir(parents=True, exist_ok=True)
    for stale in destination.iterdir():  # tox runs the tests in it: empty it, keep it
        shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
    for entry in sorted(checkout.iterdir()):
        if entry.name == "bridges" or SKIPPED(str(checkout), [entry.name]):
            continue
        target = destination / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, ignore=SKIPPED, symlinks=True)
        else:
            shutil.copy2(entry, target)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    stage(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
