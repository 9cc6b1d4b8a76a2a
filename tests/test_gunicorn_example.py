"""examples/gunicorn_mixed runs with one command and passes its own self-test."""

from __future__ import annotations

import pytest
from _demo_helpers import EXAMPLES, run_command

pytest.importorskip("gunicorn.asgi.protocol", reason="needs gunicorn >= 25")


@pytest.mark.timeout(120)
def test_the_mixed_service_serves_on_two_gunicorn_workers_and_stops_on_sigterm() -> None:
    code, output = run_command(
        ["run.py", "--self-test"], cwd=EXAMPLES / "gunicorn_mixed", timeout=100
    )
    assert code == 0, output
    assert "self-test passed" in output
