"""Step 2: the same service, unchanged, on the hub: ``reactor.run()`` became ``bridges.run()``.

python step2_on_hub.py [--port 8000]
python step2_on_hub.py --self-test
"""

from __future__ import annotations

import asyncio
import sys

import selftest

import bridges


async def serve(port: int, self_test: bool) -> bool:
    # Import the Twisted code here, on the hub: the hub installs its reactor when
    # it starts, and legacy_service's module-level `from twisted.internet import
    # reactor` must find that one, not install Twisted's default.
    import legacy_service
    from twisted.internet import reactor

    listening = reactor.listenTCP(port, legacy_service.make_site(), interface="127.0.0.1")
    port = listening.getHost().port
    print(f"step 2 (Twisted on the hub): http://127.0.0.1:{port}/greet?name=ada", flush=True)
    if self_test:
        return await asyncio.get_running_loop().run_in_executor(
            None, selftest.check, port, "twisted", "twisted"
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
