"""gevent's backend vocabulary (``supported_backends``, ``loop.backend``) on the asyncio loop."""

from __future__ import annotations

import selectors
import textwrap
from pathlib import Path
from typing import Any

import gevent
import pytest
from _gevent_helpers import run_script

import bridges
from bridges import gevent as bg

pytestmark = pytest.mark.timeout(60)

STANDALONE = {"GEVENT_LOOP": "bridges.gevent.AsyncioLoop"}

WHAT_THE_HUB_USES = textwrap.dedent(
    """
    import json, socket
    import gevent, gevent.core, gevent.socket
    from bridges.gevent._compat import loop_selector

    hub = gevent.get_hub()
    # A gevent socket waits through the chosen backend.
    left, right = socket.socketpair()
    reader = gevent.spawn(gevent.socket.wait_read, left.fileno(), timeout=5)
    gevent.sleep(0.01)
    right.send(b"x")
    reader.get()
    print(json.dumps([
        gevent.core.supported_backends(),
        gevent.core.recommended_backends(),
        hub.loop.backend,
        type(loop_selector(hub.loop._aio)).__name__,
    ]))
    """
)


def _selector_names() -> list[str]:
    names = [("epoll", "EpollSelector"), ("poll", "PollSelector"), ("select", "SelectSelector")]
    return [name for name, cls in names if hasattr(selectors, cls)]


def test_gevent_core_lists_this_systems_selectors_as_backends(tmp_path: Path) -> None:
    supported, recommended, backend, selector = run_script(
        tmp_path, WHAT_THE_HUB_USES, env=STANDALONE
    )
    assert [name for name in supported if name in _selector_names()] == _selector_names()
    default = selectors.DefaultSelector.__name__
    assert recommended == [backend]
    assert selector == default


@pytest.mark.parametrize("backend", ["select", "poll"])
def test_gevent_backend_chooses_the_selector_the_standalone_loop_waits_on(
    tmp_path: Path, backend: str
) -> None:
    _, _, used, selector = run_script(
        tmp_path, WHAT_THE_HUB_USES, env=dict(STANDALONE, GEVENT_BACKEND=backend)
    )
    assert used == backend
    assert selector == f"{backend.capitalize()}Selector"


def test_several_backends_take_the_first_available_in_libevs_order() -> None:
    loop = bg.AsyncioLoop(["select", "linux_aio", "noenv", "poll"])
    try:
        assert loop.backend == "poll"
    finally:
        loop.destroy()


@pytest.mark.parametrize("flags", ["kqueue-ish", "port", 1])
def test_an_unusable_backend_is_refused_as_libev_refuses_it(flags: Any) -> None:
    with pytest.raises(bg.UnsupportedBackendError) as caught:
        bg.AsyncioLoop(flags)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, bridges.BridgeError)
    assert "GEVENT_BACKEND" in str(caught.value) or "possible values" in str(caught.value)


def test_the_hosted_loop_reports_the_selector_of_the_hubs_asyncio_loop() -> None:
    async def main() -> str:
        return gevent.get_hub().loop.backend

    expected = selectors.DefaultSelector.__name__.replace("Selector", "").lower()
    assert bridges.run(main, frameworks=["gevent"]) == expected


def test_the_hosted_loop_on_uvloop_reports_the_default_backend() -> None:
    pytest.importorskip("uvloop")

    async def main() -> str:
        return gevent.get_hub().loop.backend

    assert bridges.run(main, frameworks=["gevent"], loop_factory="uvloop") == "default"


def test_a_stat_watcher_keeps_its_path_and_asked_interval_until_it_starts(
    tmp_path: Path,
) -> None:
    watched = tmp_path / "watched"
    outcome = run_script(
        tmp_path,
        textwrap.dedent(
            f"""
            import json, os
            import gevent

            path = {str(watched)!r}
            watcher = gevent.get_hub().loop.stat(path, interval=-1)
            before = [watcher.path == path, watcher._paths == os.fsencode(path), watcher.interval]
            watcher.start(lambda: None)
            started = watcher.interval
            watcher.stop()
            with gevent.Timeout(5):
                waiter = gevent.spawn(gevent.get_hub().wait, watcher)
                gevent.sleep(0.05)
                open(path, "w").close()
                waiter.get()
            print(json.dumps([before, started, watcher.attr is not None, watcher.prev is None]))
            """
        ),
        env=STANDALONE,
    )
    assert outcome == [[True, True, -1], 1.0, True, True]
