"""Step 1: the service as it was -- plain Twisted, with its own ``reactor.run()``.

python step1_twisted.py [--port 8000]
python step1_twisted.py --self-test
"""

from __future__ import annotations

import argparse
import sys

import legacy_service
import selftest
from twisted.internet import reactor, threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--self-test", action="store_true", help="serve on a free port, check, exit"
    )
    args = parser.parse_args()

    listening = reactor.listenTCP(
        0 if args.self_test else args.port, legacy_service.make_site(), interface="127.0.0.1"
    )
    port = listening.getHost().port
    print(f"step 1 (plain Twisted): http://127.0.0.1:{port}/greet?name=ada", flush=True)
    outcome = {"ok": True}
    if args.self_test:
        # The client blocks, so it runs in a thread; then the reactor stops.
        d = threads.deferToThread(selftest.check, port, handler="twisted", data="twisted")
        d.addCallback(lambda ok: outcome.update(ok=ok))
        d.addErrback(lambda failure: outcome.update(ok=False) or failure.printTraceback())
        d.addBoth(lambda _: reactor.stop())
    reactor.run()
    return 0 if outcome["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
