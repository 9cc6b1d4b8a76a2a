"""Helpers for the gevent tests: running a script in a fresh, monkey-patched process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PATCHED_PRELUDE = """\
{before_patch}
from gevent import monkey

monkey.patch_all()

import json
import sys
"""


def run_script(
    tmp_path: Path, source: str, timeout: float = 60, env: dict[str, str] | None = None
) -> Any:
    """Run ``source`` in a new interpreter; return the JSON its last stdout line prints."""
    script = tmp_path / "script.py"
    script.write_text(source)
    full_env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    full_env.update(env or {})
    completed = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(tmp_path),
        env=full_env,
        check=False,
    )
    if completed.returncode != 0:
        raise AssertionError(f"the script exited with {completed.returncode}:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_patched(tmp_path: Path, body: str, timeout: float = 60, before_patch: str = "") -> Any:
    """Run ``body`` after ``monkey.patch_all()`` in a new interpreter.

    ``patch_all`` cannot be undone in a process, so each such test gets its
    own.  The script prints one JSON document as its last stdout line; that
    document is returned.  A non-zero exit fails with the script's stderr.
    """
    prelude = PATCHED_PRELUDE.format(before_patch=textwrap.dedent(before_patch))
    return run_script(tmp_path, prelude + textwrap.dedent(body), timeout)
