"""Flask on gevent's pywsgi after patch_all(), with monkey-patched requests, on the hub.

patch_all() is process-wide, so the service runs in a child process.
"""

from __future__ import annotations

import pytest
from _ecosystem import run_app

pytest.importorskip("flask")
pytest.importorskip("requests")
pytestmark = pytest.mark.timeout(120)


def test_flask_on_pywsgi_serves_fifty_requests_that_call_back_into_itself_with_requests() -> None:
    result = run_app("flask_on_pywsgi")
    assert result["answers"] == [
        {"outer": n, "inner": {"n": n, "said": f"asyncio {n}"}} for n in range(50)
    ]
    assert result["most_in_flight"] > 1  # greenlets served them side by side
    assert "Traceback" not in result["stderr"]
