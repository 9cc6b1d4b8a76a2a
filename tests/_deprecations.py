"""``BRIDGES_DEPRECATIONS=error`` (tox's ``warnings`` env): bridges' own deprecations fail tests.

A DeprecationWarning or PendingDeprecationWarning raised from any ``bridges``
module -- ``bridges``, ``bridges.tornado``, ``bridges.twisted._reactor`` --
fails the test.  The filter is a regex on the module name, added as an ini
``filterwarnings`` line: ``python -W`` and ``pytest -W`` match the module field
literally (escaped and anchored), so ``-W error::DeprecationWarning:bridges``
would catch the top-level package only.  ``test_deprecation_filter.py``
plants warnings to prove what the filter catches.
"""

from __future__ import annotations

import os

import pytest

DEPRECATIONS_AS_ERRORS = (
    r"error::DeprecationWarning:bridges(\..*)?\Z",
    r"error::PendingDeprecationWarning:bridges(\..*)?\Z",
)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("BRIDGES_DEPRECATIONS") == "error":
        for line in DEPRECATIONS_AS_ERRORS:
            config.addinivalue_line("filterwarnings", line)
