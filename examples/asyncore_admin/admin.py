"""The legacy asynchat daemon, unchanged, plus an asyncio HTTP admin endpoint, in one process.

    python admin.py [--port 7000] [--admin-port 7001]
        curl -s http://127.0.0.1:7001/stats        # the daemon's live counters, as JSON
        curl -s -X POST http://127.0.0.1:7001/shutdown
    python admin.py --self-test                    # real clients for both; exit 0 or 1

What changed: ``asyncore.loop()`` became ``await ba.loop()`` inside
``bridges.run``.  The admin endpoint reads the daemon's objects directly --
same thread, same loop, so no locks -- and ``POST /shutdown`` closes every
dispatcher with asyncore's own ``close_all()``, after which ``ba.loop()``
returns and the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import urllib.request
import warnings

import bridges

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # asyncore on Python 3.10-3.11
    import asyncore

    import legacy_daemon


async def start_admin(daemon: legacy_daemon.NotesServer, port: int) -> asyncio.AbstractServer:
    """A minimal HTTP/1.0 server on asyncio streams: GET /stats, POST /shutdown."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            while (await reader.readline()).strip():  # skip the headers
                pass
            if (method, path) == ("GET", "/stats"):
                status, body = "200 OK", {**daemon.stats, "notes": len(daemon.notes)}
            elif (method, path) == ("POST", "/shutdown"):
                asyncore.close_all()  # the daemon's own way to stop; ba.loop() then returns
                status, body = "200 OK", {"shutdown": True}
            else:
                status, body = "404 Not Found", {"error": "try GET /stats or POST /shutdown"}
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except ValueError:
            writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def self_test(daemon_port: int, admin_port: int) -> bool:
    """A line client for the daemon and an HTTP client for the admin endpoint, both real."""
    with socket.create_connection(("127.0.0.1", daemon_port), timeout=10) as sock:
        lines = sock.makefile("rwb")
        replies = []
        for command in (b"ADD buy milk\n", b"ADD call mum\n", b"QUIT\n"):
            lines.write(command)
            lines.flush()
            replies.append(lines.readline().strip())
    admin = f"http://127.0.0.1:{admin_port}"
    with urllib.request.urlopen(f"{admin}/stats", timeout=10) as response:
        stats = json.loads(response.read())
    shutdown = urllib.request.Request(f"{admin}/shutdown", method="POST")
    with urllib.request.urlopen(shutdown, timeout=10) as response:
        stopped = json.loads(response.read())
    checks = [
        ("the daemon answers its clients", replies == [b"OK 1", b"OK 2", b"BYE"], replies),
        (
            "GET /stats shows its live counters",
            stats["notes"] == 2 and stats["commands"] == 3,
            stats,
        ),
        ("POST /shutdown closes it", stopped == {"shutdown": True}, stopped),
    ]
    for name, passed, seen in checks:
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {seen}")
    return all(passed for _, passed, _ in checks)


async def serve(port: int, admin_port: int, run_self_test: bool) -> bool:
    from bridges import asyncore as ba

    daemon = legacy_daemon.NotesServer(("127.0.0.1", port))  # the legacy class, unchanged
    daemon_port = daemon.socket.getsockname()[1]
    admin = await start_admin(daemon, admin_port)
    admin_port = admin.sockets[0].getsockname()[1]
    print(
        f"daemon on 127.0.0.1:{daemon_port}; admin on http://127.0.0.1:{admin_port}/stats",
        flush=True,
    )
    loop = asyncio.get_running_loop()
    checking = (
        loop.run_in_executor(None, self_test, daemon_port, admin_port) if run_self_test else None
    )
    try:
        await ba.loop()  # was: asyncore.loop(); returns once every dispatcher has closed
    finally:
        admin.close()
    print("daemon closed; exiting", flush=True)
    if checking is None:
        return True
    ok = await checking
    print("self-test passed" if ok else "self-test FAILED", flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7000)
    parser.add_argument("--admin-port", type=int, default=7001)
    parser.add_argument("--self-test", action="store_true", help="serve on free ports, check, exit")
    args = parser.parse_args()
    ports = (0, 0) if args.self_test else (args.port, args.admin_port)
    try:
        ok = bridges.run(serve, *ports, args.self_test, frameworks=["asyncore"])
    except KeyboardInterrupt:
        return 0
    return 0 if ok is not False else 1


if __name__ == "__main__":
    sys.exit(main())
