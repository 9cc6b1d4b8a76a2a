"""``python -m bridges demo``: Tornado, Twisted, gevent and asyncore side by side on one hub.

Four servers share one asyncio loop, on one thread, in one process::

    tornado   http://127.0.0.1:PORT/      a tornado.web.Application
    twisted   http://127.0.0.1:PORT+1/    a twisted.web Site
    gevent    http://127.0.0.1:PORT+2/    a gevent.pywsgi WSGI app
    asyncore  127.0.0.1:PORT+3            an asynchat line service ("hop" -> one JSON line)

``GET /chain`` on the Tornado app crosses every framework, each through its
own public API, the way legacy code already calls them::

    Tornado handler  --await a Twisted Agent's Deferred-->  Twisted resource
    Twisted resource --Agent.request (plain Twisted)----->  gevent WSGI app
    gevent WSGI app  --bg.wait(an asyncio coroutine)----->  asyncio
    asyncio          --asyncio streams------------------->  asynchat service

Every hop adds ``{"framework", "by", "thread"}`` to the JSON answer, so the
response shows who handled what, and that all of it ran on one thread; a hop
that fails adds an ``"error"`` hop saying where, and the answer is a 502.

Ctrl-C or SIGTERM stops it gracefully: the Tornado app stops taking requests,
the chains in flight finish (for up to ``DRAIN_SECONDS``), then the servers
close and ``bridges.run`` runs the hub's stop sequence.

Read it top to bottom: one section per framework, then the code that starts
them, then the self-test.  Copy what you need.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import socket
import sys
import threading
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import bridges

from ._demo_needs import DEMO_MODULES

__all__ = ["FRAMEWORKS", "CannotServeError", "demo"]

FRAMEWORKS = tuple(DEMO_MODULES)
CHAIN = ["tornado", "twisted", "gevent", "asyncio", "asyncore"]
"""The frameworks ``GET /chain`` passes through, in order."""

log = logging.getLogger("bridges.demo")


class CannotServeError(bridges.BridgeError, OSError):
    """A demo server could not listen (most often: its port is in use)."""


Hop = dict[str, Any]


def hop(framework: str, by: str, request: str) -> Hop:
    """Record that ``framework`` handled ``request`` here, on this thread, and log it."""
    log.info("%-8s %s", framework, request)
    return {"framework": framework, "by": by, "thread": threading.get_ident()}


def failed_hop(where: str, what: object) -> Hop:
    """A hop that says where the chain broke and why, so the answer shows it."""
    log.warning("%-8s %s: %s", "error", where, what)
    return {"framework": "error", "by": f"{where}: {what}", "thread": threading.get_ident()}


def hops_in(where: str, body: bytes) -> list[Hop]:
    """The hops of a downstream JSON answer, or one failed hop if it is not one."""
    try:
        return list(json.loads(body)["hops"])
    except (ValueError, KeyError, TypeError):
        return [failed_hop(where, f"answered {body[:200]!r}")]


def status_of(hops: list[Hop]) -> int:
    """200, or 502 (Bad Gateway) when a hop further down failed."""
    return 502 if any(h["framework"] == "error" for h in hops) else 200


def answer(hops: list[Hop]) -> bytes:
    """The JSON body every HTTP endpoint returns."""
    threads = {h["thread"] for h in hops}
    body = {
        "path": " -> ".join(h["framework"] for h in hops),
        "one_thread": len(threads) == 1,
        "hops": hops,
    }
    return json.dumps(body, indent=2).encode() + b"\n"


@dataclass
class Ports:
    tornado: int = 0
    twisted: int = 0
    gevent: int = 0
    asyncore: int = 0


# -- asyncore: an asynchat line service ------------------------------------------------
# Plain asyncore/asynchat code: on the hub, its dispatchers are polled by the
# asyncio loop instead of asyncore.loop().

with warnings.catch_warnings():
    # asyncore and asynchat are deprecated on 3.10-3.11 (pyasyncore from 3.12).
    warnings.simplefilter("ignore", DeprecationWarning)
    import asynchat
    import asyncore


class HopChannel(asynchat.async_chat):
    """One client connection: each line "hop" is answered with one JSON line."""

    def __init__(self, sock: Any) -> None:
        super().__init__(sock)
        self.set_terminator(b"\n")
        self.buffer: list[bytes] = []

    def collect_incoming_data(self, data: bytes) -> None:
        self.buffer.append(data)

    def found_terminator(self) -> None:
        line = b"".join(self.buffer).strip().decode(errors="replace")
        self.buffer.clear()
        if line == "hop":
            reply = hop("asyncore", "asynchat.async_chat", "line 'hop'")
            self.push(json.dumps(reply).encode() + b"\n")
        else:
            self.push(
                json.dumps({"error": f"unknown command {line!r}; send 'hop'"}).encode() + b"\n"
            )


class HopServer(asyncore.dispatcher):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.create_socket()
        self.set_reuse_addr()
        self.bind(("127.0.0.1", port))
        self.listen(64)

    def handle_accepted(self, sock: Any, addr: Any) -> None:
        HopChannel(sock)


# -- asyncio: a client of the asyncore service -----------------------------------------


async def ask_asyncore(port: int) -> list[Hop]:
    """An asyncio coroutine that asks the asynchat service for its hop, over a real socket."""
    here = hop("asyncio", "asyncio streams client", f"connect 127.0.0.1:{port}")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"hop\n")
        line = await reader.readline()
    finally:
        writer.close()
    try:
        return [here, json.loads(line)]
    except ValueError:
        return [here, failed_hop(f"asyncore 127.0.0.1:{port}", f"answered {line[:200]!r}")]


# -- gevent: a WSGI app served by gevent.pywsgi ----------------------------------------


def make_wsgi_app(ports: Ports) -> Callable[..., Iterable[bytes]]:
    from bridges import gevent as bg

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        hops = [hop("gevent", "gevent.pywsgi WSGI app", f"GET {path}")]
        if path == "/chain":
            # Blocks this greenlet only; the loop (and every other framework) keeps going.
            try:
                hops += bg.wait(ask_asyncore(ports.asyncore))
            except Exception as exc:  # noqa: BLE001 - the answer says where the chain broke
                hops.append(failed_hop("asyncio -> asyncore", repr(exc)))
        status = "200 OK" if status_of(hops) == 200 else "502 Bad Gateway"
        start_response(status, [("Content-Type", "application/json")])
        return [answer(hops)]

    return wsgi_app


# -- Twisted: a twisted.web site that calls the gevent app with Twisted's own Agent -----


def make_twisted_site(ports: Ports) -> Any:
    from twisted.internet import reactor
    from twisted.web.client import Agent, readBody
    from twisted.web.resource import Resource
    from twisted.web.server import NOT_DONE_YET, Site

    class HopResource(Resource):
        isLeaf = True

        def render_GET(self, request: Any) -> Any:
            path = request.path.decode()
            here = hop("twisted", "twisted.web.resource.Resource", f"GET {path}")
            request.setHeader(b"content-type", b"application/json")
            if path != "/chain":
                return answer([here])
            # Plain callback-style Twisted, unchanged: it neither knows nor cares
            # that the server it calls is a gevent app on the same loop.
            url = f"http://127.0.0.1:{ports.gevent}/chain"
            d = Agent(reactor).request(b"GET", url.encode())
            d.addCallback(readBody)
            d.addCallback(lambda body: [here, *hops_in(url, body)])
            d.addErrback(lambda failure: [here, failed_hop(url, failure.value)])
            finished = request.notifyFinish()
            finished.addErrback(lambda _: d.cancel())  # the client left: stop the call

            def respond(hops: list[Hop]) -> None:
                if not finished.called:  # called already: the client has gone
                    request.setResponseCode(status_of(hops))
                    request.write(answer(hops))
                    request.finish()

            d.addCallback(respond)
            return NOT_DONE_YET

    return Site(HopResource())


# -- Tornado: a web app whose handler awaits a Twisted Deferred -------------------------


def make_tornado_app(ports: Ports, in_flight: set[asyncio.Task[Any]]) -> Any:
    import tornado.web
    from twisted.internet import reactor
    from twisted.web.client import Agent, readBody

    class Index(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "application/json")
            self.write(answer([hop("tornado", "tornado.web.RequestHandler", "GET /")]))

    class Chain(tornado.web.RequestHandler):
        async def get(self) -> None:
            task = asyncio.current_task()
            assert task is not None  # Tornado runs each handler as an asyncio task
            in_flight.add(task)  # so that stopping waits for it (Servers.close)
            try:
                await self.chain()
            finally:
                in_flight.discard(task)

        async def chain(self) -> None:
            here = hop("tornado", "tornado.web.RequestHandler", "GET /chain")
            url = f"http://127.0.0.1:{ports.twisted}/chain"
            try:
                # Agent.request returns a Deferred: bridges.awaitable makes it awaitable here.
                response = await bridges.awaitable(Agent(reactor).request(b"GET", url.encode()))
                hops = [here, *hops_in(url, await bridges.awaitable(readBody(response)))]
            except Exception as exc:  # noqa: BLE001 - the answer says where the chain broke
                hops = [here, failed_hop(url, repr(exc))]
            self.set_status(status_of(hops))
            self.set_header("Content-Type", "application/json")
            self.write(answer(hops))

    return tornado.web.Application([("/", Index), ("/chain", Chain)])


# -- starting and stopping the four servers --------------------------------------------


DRAIN_SECONDS = 3.0
"""How long stopping waits for the requests in flight before closing the servers."""


class Servers:
    """The four servers on the running hub, each started through its framework's own API."""

    def __init__(self, port: int) -> None:
        self.ports = Ports()
        self._first = port
        self._closers: list[Callable[[], Any]] = []
        self.in_flight: set[asyncio.Task[Any]] = set()
        """The ``GET /chain`` requests being served (each crosses every server)."""

    def _port(self, offset: int) -> int:
        return self._first + offset if self._first else 0

    async def start(self) -> None:
        """Start the four servers; :class:`CannotServeError` if one cannot listen."""
        from twisted.internet.error import CannotListenError

        try:
            await self._start()
        except CannotListenError as exc:  # Twisted's "address in use"
            raise CannotServeError(str(exc.socketError)) from exc
        except OSError as exc:
            raise CannotServeError(str(exc)) from exc

    async def _start(self) -> None:
        # The last hop starts first: each server knows where the next one listens.
        import gevent
        import tornado.httpserver
        import tornado.netutil
        from gevent.pywsgi import WSGIServer
        from twisted.internet import reactor

        dispatcher = HopServer(self._port(3))
        self._closers.append(dispatcher.close)
        self.ports.asyncore = dispatcher.socket.getsockname()[1]

        wsgi = WSGIServer(("127.0.0.1", self._port(2)), make_wsgi_app(self.ports), log=None)
        # start() may block (it looks the host name up), and blocking gevent calls
        # belong in a greenlet, never straight in a coroutine: run it in one, await it.
        await bridges.awaitable(gevent.spawn(wsgi.start))
        self._closers.append(wsgi.close)
        self.ports.gevent = wsgi.server_port

        listening = reactor.listenTCP(
            self._port(1), make_twisted_site(self.ports), interface="127.0.0.1"
        )
        self._closers.append(listening.stopListening)
        self.ports.twisted = listening.getHost().port

        sockets = tornado.netutil.bind_sockets(self._port(0), "127.0.0.1")
        http = tornado.httpserver.HTTPServer(make_tornado_app(self.ports, self.in_flight))
        http.add_sockets(sockets)
        self._closers.append(http.stop)
        self.ports.tornado = sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop taking requests; let the chains in flight finish (bounded); close the rest.

        The Tornado app, where chains come in, stops listening first; the
        servers further down keep serving the chains already under way.
        """
        closers, self._closers = list(reversed(self._closers)), []
        for close in closers:
            outcome = close()
            if outcome is not None:
                await bridges.awaitable(outcome)
            if close is closers[0] and self.in_flight:
                await asyncio.wait(set(self.in_flight), timeout=DRAIN_SECONDS)

    def urls(self) -> dict[str, str]:
        return {
            "tornado": f"http://127.0.0.1:{self.ports.tornado}/",
            "twisted": f"http://127.0.0.1:{self.ports.twisted}/",
            "gevent": f"http://127.0.0.1:{self.ports.gevent}/",
            "asyncore": f"127.0.0.1:{self.ports.asyncore}",
        }


def banner(servers: Servers) -> str:
    urls = servers.urls()
    return "\n".join(
        [
            f"bridges demo: four frameworks on one asyncio loop, one thread "
            f"(ident {threading.get_ident()})",
            f"  tornado   {urls['tornado']}   GET /chain crosses every framework",
            f"  twisted   {urls['twisted']}",
            f"  gevent    {urls['gevent']}",
            f"  asyncore  {urls['asyncore']}   a line service: send 'hop'",
            f"Try: curl -s {urls['tornado']}chain",
            "Ctrl-C (or SIGTERM) stops it.",
        ]
    )


async def serve(port: int, self_test: bool) -> bool:
    """Start the servers; then serve until stopped, or run the self-test and return its verdict."""
    servers = Servers(port)
    try:
        await servers.start()
        if self_test:
            return await run_self_test(servers)
        print(banner(servers), flush=True)
        await asyncio.get_running_loop().create_future()  # until Ctrl-C / SIGTERM cancels us
        return True
    finally:
        await servers.close()


# -- the self-test: real requests to every endpoint ------------------------------------


def http_get(url: str) -> dict[str, Any]:
    """A real HTTP client (urllib, in a worker thread): it shares nothing with the hub."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as error:  # a 502 still says which hop failed
        return json.loads(error.read())  # type: ignore[no-any-return]


def line_get(port: int) -> dict[str, Any]:
    """A real line client of the asynchat service."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"hop\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return {"hops": [json.loads(data)]}


BURST = 10
"""How many ``GET /chain`` requests the self-test sends at once."""

Request = Callable[[], dict[str, Any]]


async def run_self_test(servers: Servers) -> bool:
    """Every endpoint once; then a burst of concurrent chains; then every endpoint again.

    The last round checks that each framework still serves after a burst that
    crossed all of them at once.
    """
    urls = servers.urls()
    endpoints: list[tuple[str, Request, list[str]]] = [
        (f"tornado  GET {urls['tornado']}", lambda: http_get(urls["tornado"]), ["tornado"]),
        (f"twisted  GET {urls['twisted']}", lambda: http_get(urls["twisted"]), ["twisted"]),
        (f"gevent   GET {urls['gevent']}", lambda: http_get(urls["gevent"]), ["gevent"]),
        (
            f"asyncore hop {urls['asyncore']}",
            lambda: line_get(servers.ports.asyncore),
            ["asyncore"],
        ),
    ]
    chain = (f"GET {urls['tornado']}chain", lambda: http_get(urls["tornado"] + "chain"), CHAIN)
    with concurrent.futures.ThreadPoolExecutor(max_workers=BURST) as clients:
        lines = [line for _, line in await _check_all(clients, endpoints)]
        burst = await _check_all(clients, [chain] * BURST)
        failed = [line for ok, line in burst if not ok]
        verdict = f"{BURST - len(failed)}/{BURST} concurrent {chain[0]}"
        lines.append(
            f"FAIL {verdict}; first failure: {failed[0]}"
            if failed
            else f"ok   {verdict}: {' -> '.join(CHAIN)} on one thread"
        )
        lines += [f"{line} (after the burst)" for _, line in await _check_all(clients, endpoints)]
    passed = sum(line.startswith("ok") for line in lines)
    print("self-test:", *lines, sep="\n  ", flush=True)
    print(f"self-test: {passed}/{len(lines)} passed", flush=True)
    return passed == len(lines)


async def _check_all(
    clients: concurrent.futures.Executor, checks: list[tuple[str, Request, list[str]]]
) -> list[tuple[bool, str]]:
    """Send every request at once (each from a client thread); check each answer's hops."""
    loop = asyncio.get_running_loop()
    hub_thread = threading.get_ident()

    async def check(name: str, request: Request, expected: list[str]) -> tuple[bool, str]:
        try:
            body = await loop.run_in_executor(clients, request)
        except Exception as exc:  # noqa: BLE001 - every failure goes into the report
            return False, f"FAIL {name}: {type(exc).__name__}: {exc}"
        hops = body.get("hops", [])
        seen = [h.get("framework") for h in hops]
        threads = {h.get("thread") for h in hops}
        if seen != expected:
            got = " -> ".join(
                h["by"] if h["framework"] == "error" else h["framework"] for h in hops
            )
            return False, f"FAIL {name}: expected {' -> '.join(expected)}, got {got}"
        if threads != {hub_thread}:
            return False, f"FAIL {name}: hops ran on threads {sorted(threads)}, not the hub's"
        return True, f"ok   {name}: {' -> '.join(seen)} on one thread"

    return list(await asyncio.gather(*(check(*c) for c in checks)))


# -- the command -------------------------------------------------------------------------


def demo(port: int = 8080, self_test: bool = False) -> int:
    """Run the demo until Ctrl-C / SIGTERM (exit 0), or ``self_test``: exit 0 if every check passed.

    ``port`` is the Tornado app's; the others listen on the next three.  Port 0
    (and ``--self-test``) lets the system pick free ports, printed at start.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    # Each hop is logged for a person watching the demo serve; the self-test's report
    # says everything, and its requests would bury it.
    log.setLevel(logging.WARNING if self_test else logging.INFO)
    log.propagate = False
    try:
        ok = bridges.run(serve, 0 if self_test else port, self_test, frameworks=FRAMEWORKS)
    except KeyboardInterrupt:
        print("bridges demo: stopped (Ctrl-C)", flush=True)
        return 0  # Ctrl-C is how the demo is meant to stop
    except CannotServeError as exc:
        print(
            f"bridges demo: cannot serve on 127.0.0.1 ports {port}-{port + 3}: {exc}. "
            "Pick other ports with --port N (or --port 0 for any free ones).",
            file=sys.stderr,
        )
        return 2
    finally:
        log.removeHandler(handler)
    if ok is None:
        print("bridges demo: stopped (SIGTERM)", flush=True)
    return 0 if ok is not False else 1
