"""Helpers for the Tornado adapter's tests: run a hub, serve on 127.0.0.1, speak WebSocket."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct
from typing import Any, Awaitable, Callable, Iterable

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

import bridges

LOOPS = ["asyncio", "uvloop"]
"""Loop factories the lifecycle and end-to-end tests run on."""


def run_tornado(
    main: Callable[..., Awaitable[Any]],
    *args: Any,
    frameworks: Iterable[str] = ("tornado",),
    loop_factory: Any = None,
    **kwargs: Any,
) -> Any:
    """``bridges.run`` with Tornado (and whatever else is named) attached."""
    return bridges.run(
        main, *args, frameworks=list(frameworks), loop_factory=loop_factory, **kwargs
    )


class Served:
    """A Tornado application listening on 127.0.0.1 on a port the OS chose."""

    def __init__(self, app: tornado.web.Application) -> None:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.port: int = sockets[0].getsockname()[1]
        self.server = tornado.httpserver.HTTPServer(app)
        self.server.add_sockets(sockets)

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def close(self) -> None:
        self.server.stop()
        await self.server.close_all_connections()


class EchoWebSocket(tornado.websocket.WebSocketHandler):
    """Echoes each text message back, prefixed with "echo:"."""

    def on_message(self, message: str | bytes) -> None:
        self.write_message(f"echo:{message}")


# -- a raw WebSocket client over asyncio streams (RFC 6455) ---------------------------

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def raw_websocket_echo(port: int, path: str, text: str) -> tuple[str, str]:
    """Handshake over plain asyncio streams, send one masked text frame, read one reply.

    Returns ``(accept_header_check, reply_text)``; the first is ``"ok"`` when the
    server's ``Sec-WebSocket-Accept`` matches the key we sent.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        status, *header_lines = head.split("\r\n")
        if " 101 " not in status:
            return f"bad status {status!r}", ""
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        expected = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        accept = "ok" if headers.get("sec-websocket-accept") == expected else "mismatch"
        writer.write(_masked_frame(0x1, text.encode()))
        await writer.drain()
        opcode, payload = await _read_frame(reader)
        reply = payload.decode() if opcode == 0x1 else f"opcode {opcode}"
        writer.write(_masked_frame(0x8, struct.pack("!H", 1000)))
        await writer.drain()
        return accept, reply
    finally:
        writer.close()
        await writer.wait_closed()


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    else:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return header + mask + masked


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)
