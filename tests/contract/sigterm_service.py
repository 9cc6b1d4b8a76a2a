"""A service the SIGTERM test runs as a child process: requests of every flavor in flight.

It starts a loopback TCP server whose handler awaits a call of every ordered
pair of the available flavors on primitives that never resolve, sends it a
request, prints ``READY`` and waits.  On SIGTERM ``bridges.run`` must return
None after its stop sequence; the service then prints how its requests ended
and exits 0.
"""

from __future__ import annotations

import asyncio
import sys

import bridges

from .harness import InFlight, available_flavors, eventually, frameworks_of

calls: list[InFlight] = []


async def main() -> str:
    flavors = available_flavors()
    request_seen = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        request_seen.set_result(None)
        calls.extend(InFlight(caller, callee) for caller in flavors for callee in flavors)
        try:
            await asyncio.gather(*(call.outcome for call in calls))
            writer.write(b"done\n")
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"request\n")
    await request_seen
    await eventually(lambda: bool(calls) and all(call.waiting() for call in calls))
    print(f"READY with {len(calls)} requests in flight", flush=True)
    await asyncio.get_running_loop().create_future()
    return "unreachable"


if __name__ == "__main__":
    flavors = available_flavors()
    result = bridges.run(main, frameworks=frameworks_of(*flavors), stop_timeout=5.0)
    unfinished = sum(1 for call in calls if not call.outcome.done())
    cancelled = sum(
        1
        for call in calls
        if call.outcome.done()
        and (call.outcome.cancelled() or call.outcome.result()[0] == "cancelled")
    )
    print(f"STOPPED result={result!r} cancelled={cancelled} unfinished={unfinished}", flush=True)
    sys.exit(0 if result is None else 1)
