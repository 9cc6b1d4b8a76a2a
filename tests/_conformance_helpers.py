"""What the conformance tests share: loading their script, and running only when asked."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent

conformance_only = pytest.mark.skipif(
    os.environ.get("BRIDGES_CONFORMANCE") != "1",
    reason="minutes: tox -e conformance (CI runs it) sets BRIDGES_CONFORMANCE=1",
)
"""The suites take minutes: they run in tox's ``conformance`` env (CI), not in every run."""


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (scripts/ is not a package)."""
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
