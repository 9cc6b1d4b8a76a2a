"""``scripts/ci_summary.py``: .ci/run's table of tox envs, their counts, and its verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _env(output: str, retcode: int) -> dict[str, Any]:
    """An env's entry in tox's --result-json, as tox writes it for an env it ran."""
    return {
        "result": {"success": retcode == 0, "exit_code": retcode, "duration": 60.0},
        "test": [
            {"run_id": "commands_pre[0]", "output": "staged", "retcode": 0, "elapsed": 1.0},
            {"run_id": "commands[0]", "output": output, "retcode": retcode, "elapsed": 59.0},
        ],
    }


def summarise(tmp_path: Path, envs: dict[str, Any], *may_fail: str) -> tuple[int, str]:
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"testenvs": envs}))
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ci_summary.py"), str(result), *may_fail],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout


GREEN = "...\n===== 1200 passed, 30 skipped, 2 xfailed in 183.20s (0:03:03) =====\n"
RED = "...\n===== 2 failed, 1198 passed, 30 skipped in 190.01s (0:03:10) =====\n"
CONFORMANCE = (
    "Twisted reactor conformance (stdlib loop): 253 passed, 3 known failures, 2 skipped, "
    "0 unexpected failures, of 258\n"
    "eventlet conformance (curated 18 modules): native 18 passed, asyncio 17 passed, "
    "bridges 17 passed, 1 known differences\n===== 3 passed in 200.00s =====\n"
)


def test_each_env_gets_its_counts_and_the_conformance_lines_and_a_total(tmp_path: Path) -> None:
    code, out = summarise(
        tmp_path, {"warnings": _env(GREEN, 0), "conformance": _env(CONFORMANCE, 0)}
    )
    assert code == 0, out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:3]}
    assert rows["warnings"] == ["ok", "1.0", "1200", "0", "0", "30", "2", "0"]
    assert "conformance: Twisted reactor conformance (stdlib loop): 253 passed" in out
    assert "conformance: eventlet conformance (curated 18 modules): native 18 passed" in out
    assert out.rstrip().splitlines()[-1] == "total: 1203 passed, 0 failed, 30 skipped"


def test_a_failed_env_fails_the_summary(tmp_path: Path) -> None:
    code, out = summarise(tmp_path, {"py39": _env(RED, 1)})
    assert code == 1
    assert "FAILED" in out
    assert out.rstrip().endswith("total: 1198 passed, 2 failed, 30 skipped")


def test_an_env_allowed_to_fail_is_reported_and_does_not_fail_it(tmp_path: Path) -> None:
    code, out = summarise(tmp_path, {"warnings": _env(GREEN, 0), "pre": _env(RED, 1)}, "pre")
    assert code == 0, out
    assert "failed (allowed)" in out


def test_envs_tox_did_not_run_are_left_out(tmp_path: Path) -> None:
    envs = {"warnings": _env(GREEN, 0), "py39": {"python": {}}, ".pkg": _env("built", 0)}
    code, out = summarise(tmp_path, envs)
    assert code == 0, out
    assert "py39" not in out
    assert ".pkg" not in out


def test_an_env_whose_pytest_never_finished_fails_it(tmp_path: Path) -> None:
    code, out = summarise(tmp_path, {"py39": _env("ImportError: no module named x\n", 0)})
    assert code == 1
    assert "FAILED" in out
