"""Step 4: the data layer moves to asyncio; the old Twisted handler calls it with ``bt.deferred``.

python step4_old_calls_new.py [--port 8000]
python step4_old_calls_new.py --self-test
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import selftest

import bridges

USERS = {"ada": "Ada Lovelace", "alan": "Alan Turing", "grace": "Grace Hopper"}


async def fetch_user(name: str) -> dict[str, str]:
    """The new data layer: plain asyncio code (an asyncio database driver, in real life)."""
    await asyncio.sleep(0.01)
    if name not in USERS:
        raise KeyError(name)
    return {"name": name, "full_name": USERS[name], "data": "asyncio"}


def lookup_for_twisted(name: str) -> Any:
    """What the old code expects -- a Deferred -- made from the new coroutine.

    The coroutine runs as a real asyncio task; its result or its KeyError
    reaches the old ``addCallbacks`` chain unchanged.
    """
    from bridges import twisted as bt

    return bt.deferred(fetch_user(name))


async def serve(port: int, self_test: bool) -> bool:
    import legacy_service
    from twisted.internet import reactor

    # The old Greeting resource, unchanged, now backed by the asyncio data layer.
    site = legacy_service.make_site(lookup=lookup_for_twisted)
    listening = reactor.listenTCP(port, site, interface="127.0.0.1")
    port = listening.getHost().port
    print(f"step 4 (old code calls new): http://127.0.0.1:{port}/greet?name=ada", flush=True)
    if self_test:
        return await asyncio.get_running_loop().run_in_executor(
            None, selftest.check, port, "twisted", "asyncio"
        )
    await asyncio.get_running_loop().create_future()  # serve until Ctrl-C / SIGTERM
    return True


def main() -> int:
    port, self_test = selftest.options(__doc__)
    try:
        ok = bridges.run(serve, port, self_test, frameworks=["twisted"])
    except KeyboardInterrupt:
        return 0
    return 0 if ok is not False else 1


if __name__ == "__main__":
    sys.exit(main())
