"""Step 3: the handler is rewritten as ``async def``; it still calls the old green data layer.

python step3_asyncio_handler.py [--port 8000]
python step3_asyncio_handler.py --self-test
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


async def greet(name: str) -> dict[str, Any]:
    """New code: asyncio.  The old data layer runs in a greenthread; its KeyError comes through."""
    full = await bridges.awaitable(eventlet.spawn(legacy_service.lookup_user, name))
    await asyncio.sleep(0)  # ... and any asyncio library can be awaited here
    return {"greeting": f"Hello, {full}!", "handler": "asyncio", "data": "eventlet"}


def greet_from_wsgi(name: str) -> dict[str, Any]:
    # eventlet.wsgi calls the app in a greenthread: be.wait blocks only it.
    return be.wait(greet(name))


async def serve(port: int, self_test: bool) -> bool:
    listener = eventlet.listen(("127.0.0.1", port))
    port = listener.getsockname()[1]
    app = legacy_service.make_app(greet_from_wsgi)
    print(f"step 3 (asyncio handler): http://127.0.0.1:{port}/greet?name=ada", flush=True)
    eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
    if self_test:
        return await bridges.awaitable(eventlet.spawn(selftest.check, port, "asyncio", "eventlet"))
    await asyncio.get_running_loop().create_future()  # serve until Ctrl-C / SIGTERM
    return True


if __name__ == "__main__":
    sys.exit(selftest.run_on_hub(serve, __doc__))
