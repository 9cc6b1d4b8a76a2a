"""Settings every test module shares: see ``_deprecations`` for BRIDGES_DEPRECATIONS=error."""

from __future__ import annotations

from _deprecations import pytest_configure

__all__ = ["pytest_configure"]
