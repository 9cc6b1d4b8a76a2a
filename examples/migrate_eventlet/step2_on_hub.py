"""Step 2: the same service, unchanged, on the hub: the eventlet hub runs on an asyncio loop.

python step2_on_hub.py [--port 8000]
python step2_on_hub.py --self-test
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import asyncio  # noqa: E402
import sys  # noqa: E402

import eventlet.wsgi  # noqa: E402
import legacy_service  # noqa: E402
import selftest  # noqa: E402

import bridges  # noqa: E402


async def serve(port: int, self_test: bool) -> bool:
    listener = eventlet.listen(("127.0.0.1", port))
    port = listener.getsockname()[1]
    app = legacy_service.make_app(legacy_service.legacy_greet)
    print(f"step 2 (eventlet on the hub): http://127.0.0.1:{port}/greet?name=ada", flush=True)
    eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
    if self_test:
        return await bridges.awaitable(eventlet.spawn(selftest.check, port, "eventlet", "eventlet"))
    await asyncio.get_running_loop().create_future()  # serve until Ctrl-C / SIGTERM
    return True


if __name__ == "__main__":
    sys.exit(selftest.run_on_hub(serve, __doc__))
