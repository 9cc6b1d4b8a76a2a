"""``scripts/check_references.py`` (CI runs it) fails on a path or reference users cannot follow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_references.py"
PRIVATE_NOTE = "DESIGN" + ".md"  # spelled apart so this file passes its own check


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("docs/howto.md", "Run `" + "/work" + "/venv/bin/python bench.py`."),
        ("scripts/tool.py", "# see " + "/home" + "/alice/notes"),
        ("README.md", "Run " + "/opt/ci/.venv" + "/bin/pytest to test."),
        ("tests/test_x.py", f'"""Each rule of {PRIVATE_NOTE} has a test."""'),
        ("docs/a.md", "The numbers are in " + ".." + "/shared/bench.txt."),
        ("docs/b.md", "See [the guide](missing-guide.md)."),
    ],
)
def test_a_planted_reference_fails_the_check_and_is_named(
    tmp_path: Path, name: str, line: str
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "present.md").write_text("See [this](present.md).\n")
    planted = tmp_path / name
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(f"first line\n{line}\n")
    done = check(tmp_path)
    assert done.returncode == 1, done.stdout
    assert f"{name}:2:" in done.stdout


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "Run `python bench.py`; see [b](b.md) and [web](https://example.org/x.md).\n"
    )
    (tmp_path / "docs" / "b.md").write_text("ok\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "activate").write_text("/" + "home/me/.venv/bin/python\n")
    done = check(tmp_path)
    assert done.returncode == 0, done.stdout


@pytest.mark.skipif(
    not (ROOT / "bridges").is_dir(),
    reason="tox's copy of the checkout leaves bridges/ out, so links into it break there; "
    ".ci/run checks the checkout itself",
)
def test_this_repository_passes() -> None:
    done = check(ROOT)
    assert done.returncode == 0, done.stdout
