"""No global effect outlives a hub: after it stops, each framework behaves as it did before.

(Tornado's own tests of this are in tests/test_tornado_compat.py: its
``gen.Runner`` methods and ``convert_yielded`` registry are Tornado's again.)
"""

from __future__ import annotations

import asyncio
import socket
import sys
import warnings
from typing import Any

import pytest

import bridges

pytestmark = pytest.mark.timeout(60)


def test_after_a_hub_twisteds_global_reactor_is_unbound_and_says_so_on_use() -> None:
    from twisted.internet import protocol

    from bridges import twisted as bt

    async def main() -> bool:
        return bt.get_reactor().running

    assert bridges.run(main, frameworks=["twisted"]) is True
    from twisted.internet import reactor

    assert not reactor.running  # type: ignore[attr-defined]
    with pytest.raises(bt.NotAttachedError, match="no bridges hub runs") as caught:
        reactor.listenTCP(0, protocol.Factory(), interface="127.0.0.1")  # type: ignore[attr-defined]
    assert isinstance(caught.value, bridges.NotAttachedError)
    with pytest.raises(bridges.NotAttachedError, match="no bridges hub is running"):
        bt.get_reactor()


def _asyncore() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asyncore
    return asyncore


def test_after_a_hub_asyncore_has_its_own_socket_map_and_loop_again() -> None:
    asyncore = _asyncore()
    socket_map, loop = asyncore.socket_map, asyncore.loop

    async def main() -> bool:
        return asyncore.socket_map is not socket_map and asyncore.loop is not loop

    assert bridges.run(main, frameworks=["asyncore"]) is True
    assert asyncore.socket_map is socket_map
    assert asyncore.loop is loop
    left, right = socket.socketpair()
    try:
        left.setblocking(False)
        read: list[bytes] = []
        after = asyncore.dispatcher(left)
        after.handle_read = lambda: read.append(after.recv(10))
        assert socket_map.get(left.fileno()) is after
        right.send(b"x")
        asyncore.loop(timeout=1, count=1)  # asyncore's own, blocking loop works again
        assert read == [b"x"]
    finally:
        socket_map.pop(left.fileno(), None)
        left.close()
        right.close()


def test_after_a_hub_gevent_runs_natively_on_its_own_hub_again() -> None:
    import gevent
    import gevent.hub

    native = gevent.get_hub()

    async def main() -> bool:
        from bridges import gevent as bg

        return bg.get_hub() is not native

    try:
        assert bridges.run(main, frameworks=["gevent"]) is True
        assert gevent.get_hub() is native
        assert type(native.loop).__module__.startswith("gevent")
        assert gevent.spawn(lambda: "native").get(timeout=5) == "native"
        gevent.sleep(0)
    finally:
        # A native hub that has run work would be this thread's "previous" hub
        # for every later test's hub, which refuses one with pending work.
        native.destroy(destroy_loop=True)


def test_after_a_hub_without_a_native_gevent_hub_gevent_makes_a_native_one() -> None:
    script = """
import bridges, gevent
from gevent._hub_local import get_hub_if_exists
async def main():
    return type(gevent.get_hub().loop).__name__
print(bridges.run(main, frameworks=["gevent"]), get_hub_if_exists() is None,
      type(gevent.get_hub().loop).__module__.split(".")[0], gevent.spawn(lambda: 7).get())
"""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["AsyncioLoop", "True", "gevent", "7"]


def test_after_a_hub_plain_asyncio_runs_without_any_framework_attached() -> None:
    async def main() -> str:
        await asyncio.sleep(0)
        return "asyncio"

    bridges.run(asyncio.sleep, 0)
    assert asyncio.run(main()) == "asyncio"
