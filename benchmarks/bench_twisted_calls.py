"""Python function calls per echo round trip: Twisted on the hub vs a plain asyncio echo.

The machine-independent side of bench_twisted.py's limit rows: the same echo
(50 connections, one 64-byte message in flight each) served by a Twisted
``Protocol`` on the hub's reactor and by a plain ``asyncio.Protocol`` on the
same loop, with the Python-level calls of the server's loop thread counted by
``cProfile`` (which profiles only the thread that enables it: the client
thread is not counted).  Each server runs in a fresh subprocess.  ``--top N``
lists the functions called most per round trip, which is where the time goes.
What a call costs inside (an attribute CPython could not specialise costs ten
times one it could) is counted by twisted_instructions.py, in instructions.

    python benchmarks/bench_twisted_calls.py [--round-trips 5000] [--top 25] [--loops asyncio]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

from _harness import add_report_options, emit, summarise

SERVER = textwrap.dedent(
    """
    import asyncio, cProfile, json, pstats, selectors, socket, sys, threading

    mode, loop_kind, round_trips, top = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    CONNECTIONS, PAYLOAD = 50, 64

    def client(port, finished):
        selector = selectors.DefaultSelector()
        socks = []
        for _ in range(CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(sock)
        message = b"m" * PAYLOAD
        received = dict.fromkeys(socks, 0)
        started = done = 0
        for sock in socks:
            sock.send(message)
            started += 1
            selector.register(sock, selectors.EVENT_READ)
        while done < round_trips:
            for key, _ in selector.select(5):
                sock = key.fileobj
                received[sock] += len(sock.recv(PAYLOAD * 2))
                if received[sock] < PAYLOAD:
                    continue
                received[sock] = 0
                done += 1
                if started < round_trips:
                    sock.send(message)
                    started += 1
                else:
                    selector.unregister(sock)
        for sock in socks:
            sock.close()
        finished()

    class AsyncioEcho(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    async def serve():
        loop = asyncio.get_running_loop()
        if mode == "hub":
            from twisted.internet import protocol, reactor

            class Echo(protocol.Protocol):
                def dataReceived(self, data):
                    self.transport.write(data)

            port = reactor.listenTCP(0, protocol.Factory.forProtocol(Echo), interface="127.0.0.1")
            number = port.getHost().port
        else:
            server = await loop.create_server(AsyncioEcho, "127.0.0.1", 0)
            number = server.sockets[0].getsockname()[1]
        done = loop.create_future()
        worker = threading.Thread(
            target=client, args=(number, lambda: loop.call_soon_threadsafe(done.set_result, None))
        )
        profile = cProfile.Profile()
        profile.enable()
        worker.start()
        await done
        profile.disable()
        worker.join()
        stats = pstats.Stats(profile)
        ranked = sorted(stats.stats.items(), key=lambda item: -item[1][1])[:top]
        print(json.dumps({
            "calls": stats.total_calls / round_trips,
            "top": [
                [f"{path.rsplit('/', 1)[-1]}:{line}({name})", calls / round_trips]
                for (path, line, name), (_, calls, *_rest) in ranked
            ],
        }))

    if mode == "hub":
        import bridges
        bridges.run(serve, frameworks=["twisted"], loop_factory=loop_kind)
    elif loop_kind == "uvloop":
        import uvloop
        uvloop.run(serve())
    else:
        asyncio.run(serve())
    """
)


def count(mode: str, loop_kind: str, round_trips: int, top: int) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", SERVER, mode, loop_kind, str(round_trips), str(top)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--top", type=int, default=0, help="list the N most called functions")
    parser.add_argument("--loops", default="asyncio,uvloop", help="loops to count on")
    add_report_options(parser)
    args = parser.parse_args()
    if args.quick:
        args.round_trips = 2000
    rows = []
    for loop in args.loops.split(","):
        plain = count("plain", loop, args.round_trips, args.top)
        hub = count("hub", loop, args.round_trips, args.top)
        print(f"Python calls per echo round trip on {loop} ({args.round_trips} round trips):")
        for name, figures in (("plain asyncio", plain), ("Twisted on the hub", hub)):
            print(f"  {name:>18}: {figures['calls']:6.1f}")
            for function, calls in figures["top"]:  # type: ignore[attr-defined]
                print(f"      {calls:6.2f}  {function}")
        # A count, not a time: the same on a busy machine, so one measurement each.
        rows.append(
            summarise(
                benchmark="twisted",
                case=f"Python calls per echo round trip, 50 conns, {loop} (machine-independent)",
                unit="calls/round trip",
                higher_is_better=False,
                baseline_name=f"asyncio.Protocol echo, {loop}",
                baselines=[plain["calls"]],  # type: ignore[list-item]
                ours=[hub["calls"]],  # type: ignore[list-item]
            )
        )
    emit(rows, args.report)


if __name__ == "__main__":
    main()
