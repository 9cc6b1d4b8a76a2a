"""Python function calls per Tornado HTTP request, plain Tornado vs the hub: a noise-free figure.

Timing on a shared 2-core VM drifts by +-10-30% between identical servers
(see ``bench_tornado.py --control``).  The number of Python-level calls the
server's loop thread makes per request does not drift: it is counted here with
``cProfile`` (which profiles only the thread that enables it, so the client
thread is not counted), for the same ``tornado.web`` handler under
``asyncio.run`` and under ``bridges.run(..., frameworks=["tornado"])``, each
in a fresh subprocess.  The extra calls are the adapter's whole per-request
cost in Python; what they cost in time is in bench_tornado.py.

    python benchmarks/bench_tornado_calls.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap

from _harness import add_report_options, emit, summarise

SERVER = textwrap.dedent(
    """
    import asyncio, cProfile, pstats, socket, sys, threading
    import tornado.httpserver, tornado.netutil, tornado.web

    mode, requests = sys.argv[1], int(sys.argv[2])
    BODY = b"hello from tornado"

    class Hello(tornado.web.RequestHandler):
        async def get(self):
            self.write(BODY)

    def client(port, finished):
        sock = socket.create_connection(("127.0.0.1", port))
        request = b"GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n"
        for _ in range(requests):
            sock.sendall(request)
            received = b""
            while not received.endswith(BODY):
                received += sock.recv(65536)
        sock.close()
        finished()

    async def main():
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        server = tornado.httpserver.HTTPServer(tornado.web.Application([("/", Hello)]))
        server.add_sockets(sockets)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        port = sockets[0].getsockname()[1]
        worker = threading.Thread(
            target=client, args=(port, lambda: loop.call_soon_threadsafe(done.set_result, None))
        )
        profile = cProfile.Profile()
        profile.enable()
        worker.start()
        await done
        profile.disable()
        worker.join()
        server.stop()
        print(pstats.Stats(profile).total_calls / requests)

    if mode == "hub":
        import bridges
        bridges.run(main, frameworks=["tornado"])
    else:
        asyncio.run(main())
    """
)


def calls_per_request(mode: str, requests: int) -> float:
    result = subprocess.run(
        [sys.executable, "-c", SERVER, mode, str(requests)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    add_report_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.requests = 500
    native = calls_per_request("native", args.requests)
    hub = calls_per_request("hub", args.requests)
    print(f"Python calls per Tornado HTTP request ({args.requests} requests, loop thread only):")
    print(f"  native: {native:7.1f}")
    print(f"     hub: {hub:7.1f}  ({hub - native:+.1f}, {hub / native:.3f}x)")
    # A count, not a time: the same on a busy machine, so one measurement each.
    row = summarise(
        benchmark="tornado",
        case="Python calls per HTTP request (machine-independent)",
        unit="calls/request",
        higher_is_better=False,
        baseline_name="plain Tornado",
        baselines=[native],
        ours=[hub],
    )
    emit([row], args.report)


if __name__ == "__main__":
    main()
