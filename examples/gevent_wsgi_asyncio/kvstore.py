"""A tiny asyncio key-value store: a server and its client library.

It stands in for any asyncio-only client library (a database driver, an
HTTP client, a message queue) that a gevent application wants to use.  The
protocol is one line per request: ``GET key``, ``SET key value``,
``INCR key``; one line per answer.
"""

from __future__ import annotations

import asyncio


async def start_server(host: str = "127.0.0.1", port: int = 0) -> asyncio.AbstractServer:
    data: dict[str, str] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command, _, rest = line.decode().strip().partition(" ")
                key, _, value = rest.partition(" ")
                if command == "SET":
                    data[key] = value
                    reply = "OK"
                elif command == "GET":
                    reply = data.get(key, "")
                elif command == "INCR":
                    data[key] = reply = str(int(data.get(key, "0")) + 1)
                else:
                    reply = f"ERR unknown command {command!r}"
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


class KVClient:
    """One connection, shared by every caller: requests take turns on it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._turn = asyncio.Lock()

    @classmethod
    async def connect(cls, host: str, port: int) -> KVClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def _call(self, *words: str) -> str:
        async with self._turn:
            self._writer.write(" ".join(words).encode() + b"\n")
            await self._writer.drain()
            reply = (await self._reader.readline()).decode().rstrip("\n")
        if reply.startswith("ERR "):
            raise RuntimeError(reply[4:])
        return reply

    async def get(self, key: str) -> str:
        return await self._call("GET", key)

    async def set(self, key: str, value: str) -> None:
        await self._call("SET", key, value)

    async def incr(self, key: str) -> int:
        return int(await self._call("INCR", key))

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()
