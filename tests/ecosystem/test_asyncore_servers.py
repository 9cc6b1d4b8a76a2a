"""waitress and medusa (supervisor's HTTP server) on the hub, each under 50 keep-alive clients."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from _ecosystem import keep_alive_client

import bridges
from bridges import asyncore as ba

waitress_server = pytest.importorskip("waitress.server")
# Imported before the hub starts: the hub takes over medusa's asyncore_25 map at attach.
# supervisor's own subclass of medusa's http_server: medusa's stock http_channel
# still parses requests as text (Python 2), natively too.
supervisor_http = pytest.importorskip("supervisor.http")
medusa_logger = pytest.importorskip("supervisor.medusa.logger")

pytestmark = pytest.mark.timeout(120)

CLIENTS = 50
REQUESTS = 10


def expected(server: str) -> list[list[bytes]]:
    return [
        [f"{server} answers /client{c}/request{r}".encode() for r in range(REQUESTS)]
        for c in range(CLIENTS)
    ]


async def fifty_clients(port: int) -> list[list[bytes]]:
    return await asyncio.gather(
        *(
            keep_alive_client(port, [f"/client{c}/request{r}" for r in range(REQUESTS)])
            for c in range(CLIENTS)
        )
    )


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = f"waitress answers {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.mark.parametrize("socket_map", ["waitress's dict", "ba.SocketMap"])
def test_waitress_serves_fifty_keep_alive_clients(socket_map: str) -> None:
    async def main() -> list[list[bytes]]:
        the_map = ba.SocketMap() if socket_map == "ba.SocketMap" else None
        server = waitress_server.create_server(
            hello, host="127.0.0.1", port=0, threads=4, map=the_map
        )
        serving = asyncio.ensure_future(ba.closed(server))
        try:
            return await fifty_clients(server.effective_port)
        finally:
            server.close()
            await asyncio.wait_for(serving, 10)

    assert bridges.run(main, frameworks=["asyncore"]) == expected("waitress")


class Hello:
    """A medusa handler answering every GET with a short text."""

    def match(self, request: Any) -> bool:
        return True

    def handle_request(self, request: Any) -> None:
        body = f"medusa answers {request.split_uri()[0]}"
        request["Content-Type"] = "text/plain"
        request["Content-Length"] = len(body)
        request.push(body.encode())
        request.done()


@pytest.mark.filterwarnings("ignore::DeprecationWarning:supervisor")
def test_medusa_serves_fifty_keep_alive_clients() -> None:
    async def main() -> list[list[bytes]]:
        server = supervisor_http.supervisor_af_inet_http_server(
            "127.0.0.1", 0, logger_object=medusa_logger.file_logger(io.StringIO())
        )
        server.install_handler(Hello())
        try:
            return await fifty_clients(server.socket.getsockname()[1])
        finally:
            server.close()

    assert bridges.run(main, frameworks=["asyncore"]) == expected("medusa")
