"""jupyter_server on the hub (Tornado attached), serving until SIGTERM.

``ServerApp.start()`` would start the IOLoop, which the hub already runs, so
the app is started as ``start()`` does, minus ``IOLoop.start()``.  SIGTERM
reaches both the hub (which stops) and jupyter_server's own handler (which
awaits its cleanup and then calls ``IOLoop.stop()``).

Usage: ``python jupyter_on_the_hub.py PORT TOKEN ROOT_DIR``.
"""

from __future__ import annotations

import asyncio
import sys

from jupyter_server.serverapp import ServerApp

import bridges


async def main(port: str, token: str, root_dir: str) -> None:
    app = ServerApp.instance()
    app.initialize(
        argv=[
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root_dir}",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
        ]
    )
    app.start_app()
    app.io_loop.add_callback(app._post_start)  # what start_ioloop() does before IOLoop.start()
    await asyncio.Event().wait()  # serve until the hub stops


if __name__ == "__main__":
    bridges.run(lambda: main(*sys.argv[1:4]), frameworks=["tornado"])
