"""The ``warnings`` env's filter fails a deprecation raised from any bridges module, and only those.

Each test plants a warning attributed to a module name (code run with that
``__name__``, as the module's own code would be) in a test file, and runs
pytest on it in a new process with the project's configuration and the
filter from ``_deprecations``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

PLANTED = """
import warnings


def test_code_of_{slug}_warns():
    code = compile("import warnings\\nwarnings.warn('planted', {category})", "<planted>", "exec")
    exec(code, {{"__name__": {module!r}}})
"""


def _run_planted(tmp_path: Path, module: str, category: str, mode: str | None) -> str:
    (tmp_path / "conftest.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
        "from _deprecations import pytest_configure\n"
    )
    slug = module.replace(".", "_")
    (tmp_path / "test_planted.py").write_text(
        PLANTED.format(slug=slug, module=module, category=category)
    )
    env = dict(os.environ)
    env.pop("BRIDGES_DEPRECATIONS", None)
    if mode is not None:
        env["BRIDGES_DEPRECATIONS"] = mode
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            str(tmp_path / "test_planted.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    "module", ["bridges", "bridges.tornado", "bridges._hub", "bridges.twisted._reactor"]
)
@pytest.mark.parametrize("category", ["DeprecationWarning", "PendingDeprecationWarning"])
def test_a_deprecation_from_a_bridges_module_fails_the_warnings_env(
    tmp_path: Path, module: str, category: str
) -> None:
    output = _run_planted(tmp_path, module, category, "error")
    assert "1 failed" in output, output
    assert f"{category}: planted" in output, output


def test_the_same_warning_passes_without_the_warnings_env(tmp_path: Path) -> None:
    output = _run_planted(tmp_path, "bridges.tornado", "DeprecationWarning", None)
    assert "1 passed" in output, output


@pytest.mark.parametrize("module", ["bridgesfoo", "tests.bridges", "tornado.gen"])
def test_a_deprecation_from_a_module_that_is_not_ours_passes(tmp_path: Path, module: str) -> None:
    output = _run_planted(tmp_path, module, "DeprecationWarning", "error")
    assert "1 passed" in output, output
