"""Step 4: the data layer is rewritten in asyncio; the old blocking-style handler calls it.

python step4_old_calls_new.py [--port 8000]
python step4_old_calls_new.py --self-test
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import asyncio  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import eventlet.wsgi  # noqa: E402
import legacy_service  # noqa: E402
import selftest  # noqa: E402

import bridges  # noqa: E402
from bridges import eventlet as be  # noqa: E402


async def fetch_user(name: str) -> str:
    """New code: the data layer in asyncio (a sleep stands in for an asyncio driver)."""
    await asyncio.sleep(0.005)
    if name not in legacy_service.USERS:
        raise KeyError(name)
    return legacy_service.USERS[name]


def greet(name: str) -> dict[str, Any]:
    """The old handler's shape, unchanged but for one line: it waits on the asyncio data layer."""
    full = be.wait(fetch_user(name))
    return {"greeting": f"Hello, {full}!", "handler": "eventlet", "data": "asyncio"}


async def serve(port: int, self_test: bool) -> bool:
    listener = eventlet.listen(("127.0.0.1", port))
    port = listener.getsockname()[1]
    app = legacy_service.make_app(greet)
    print(f"step 4 (old handler, asyncio data): http://127.0.0.1:{port}/greet?name=ada", flush=True)
    eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
    if self_test:
        return await bridges.awaitable(eventlet.spawn(selftest.check, port, "eventlet", "asyncio"))
    await asyncio.get_running_loop().create_future()  # serve until Ctrl-C / SIGTERM
    return True


if __name__ == "__main__":
    sys.exit(selftest.run_on_hub(serve, __doc__))
