"""treq, klein, crochet and autobahn on the hub, against local servers."""

from __future__ import annotations

import pytest
from _ecosystem import run_app

pytest.importorskip("treq")
pytest.importorskip("klein")
pytestmark = pytest.mark.timeout(120)


def test_treq_fetches_from_klein_routes_and_from_an_asyncio_server_on_one_hub() -> None:
    result = run_app("twisted_web")
    assert result["bodies"] == {
        "/sync": [200, "klein sync"],
        "/deferred/treq": [200, "asyncio says hello to treq"],
        "/async/treq": [200, "asyncio says hello to treq"],
    }
    assert result["many"] is True
    assert result["from_streams"] == "from asyncio streams"
    assert "Traceback" not in result["stderr"]


def test_klein_imported_before_the_hub_is_named_in_the_foreign_reactor_error() -> None:
    result = run_app("foreign_reactor", "klein")
    assert "imported by klein" in result["error"]


def test_crochet_setup_inside_the_hub_uses_the_hubs_reactor_without_a_thread_traceback() -> None:
    pytest.importorskip("crochet")
    result = run_app("crochet_on_the_hub")
    assert result["results"] == [f"call {i} via the hub's reactor" for i in range(5)]
    assert result["reactor"] == "HubReactor"
    assert result["threads_left"] == []  # crochet's thread returned when the hub stopped
    assert "Traceback" not in result["stderr"]


def test_crochet_setup_before_the_hub_is_named_in_the_foreign_reactor_error() -> None:
    pytest.importorskip("crochet")
    result = run_app("foreign_reactor", "crochet")
    assert "crochet.setup() installed it" in result["error"]


def test_autobahn_websockets_on_the_hub_reply_from_asyncio_and_txaio_keeps_one_flavour() -> None:
    pytest.importorskip("autobahn")
    result = run_app("autobahn_websocket")
    assert result["replies"] == ["HELLO 0", "HELLO 1", "HELLO 2"]
    assert result["clean"] is True
    # txaio's rule, not ours: one framework per process (docs/pitfalls.md).
    assert result["other_flavour"] == "Explicitly using 'twisted' already"
    assert "Traceback" not in result["stderr"]
