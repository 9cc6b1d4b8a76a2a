"""gunicorn worker classes that run one bridges hub per worker process.

The hub is made in ``run()``, after the fork, and serving, the heartbeat and
every signal the worker obeys live on the hub's loop:

* the heartbeat (``notify()``) is a loop callback, so a loop that something
  blocks stops beating and gunicorn's ``--timeout`` kills the worker;
* SIGTERM is graceful: stop accepting, let in-flight requests finish within
  ``graceful_timeout``, then run the hub's stop sequence and exit 0;
* SIGQUIT and SIGINT are quick: the hub's stop sequence at once, exit 0;
* signals that arrive while the worker boots (importing the app, starting the
  hub) are recorded and obeyed once the hub runs, instead of being handled on
  half-built state (gunicorn's gevent worker spawns a greenlet on gevent's
  native hub there, which then keeps the bridges hub from attaching gevent).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import sys
from typing import Any, Awaitable, Callable, Union

from gunicorn.arbiter import Arbiter
from gunicorn.workers import base

import bridges

from .._errors import BridgeError
from .._run import _OWNER as _RUN_OWNER
from . import _compat
from ._settings import frameworks_from

__all__ = ["HubASGIWorker", "HubWorker", "WorkerStateError", "current_worker", "on_startup"]

_OWNER = "bridges.gunicorn"
# Signals the worker obeys on the hub's loop.  SIGABRT (gunicorn's timeout
# notice) stays a plain handler: it must run even when the loop is stuck.
_LOOP_SIGNALS = (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT, signal.SIGUSR1)
_QUICK = (signal.SIGQUIT, signal.SIGINT)

StartupHook = Callable[["HubWorker"], Union[Awaitable[Any], Any]]
_startup_hooks: list[StartupHook] = []
_running: list[HubWorker] = []


class WorkerStateError(BridgeError, RuntimeError):
    """A worker API was used outside the time it is meant for (see the message)."""


def on_startup(hook: StartupHook) -> StartupHook:
    """Run ``hook(worker)`` in every hub worker, on its hub, before it serves.

    Use it as a decorator in the application's module.  ``hook`` may be a
    coroutine function or return anything :func:`bridges.awaitable` accepts
    (a Deferred, a greenlet...), which is awaited; an exception stops the
    worker from booting, and gunicorn with it (``WORKER_BOOT_ERROR``).  This
    is the place to start Twisted, Tornado or asyncore listeners on sockets
    gunicorn bound (see :meth:`HubWorker.claim_listener`), for WSGI apps that
    have no ASGI lifespan.
    """
    _startup_hooks.append(hook)
    return hook


def current_worker() -> HubWorker:
    """The hub worker serving in this process (from a view, a hook or a lifespan)."""
    if not _running:
        raise WorkerStateError(
            "no bridges hub worker runs in this process. Run the app under gunicorn with "
            "-k bridges.gunicorn.HubWorker (or HubASGIWorker)."
        )
    return _running[-1]


def is_asgi(app: Any) -> bool:
    """Whether ``app`` is an ASGI app: an ``async def`` callable (function or object)."""
    if inspect.iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)  # noqa: B004 - the method, not callable()
    return inspect.iscoroutinefunction(call)


class HubWorker(base.Worker):  # type: ignore[misc]  # gunicorn is untyped
    """A gunicorn worker whose process runs one bridges hub: ``-k bridges.gunicorn.HubWorker``.

    The app may be WSGI or ASGI (an ``async def`` callable is ASGI).  A WSGI
    app runs in a greenlet per request on gevent's pywsgi when gevent is
    attached, otherwise in a pool of ``--threads`` threads; an ASGI app runs
    on the hub's loop, served by gunicorn's own ASGI protocol.  The
    frameworks attached are ``--bridges-frameworks`` (with ``python -m
    bridges.gunicorn``), else ``BRIDGES_FRAMEWORKS``, else every installed one.
    """

    force_asgi = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_connections = self.cfg.worker_connections
        self.loop: asyncio.AbstractEventLoop | None = None
        self.hub: bridges.Hub | None = None
        self.asgi: Any = None
        self.state: dict[str, Any] = {}
        self.listeners = list(self.sockets)
        self.serving: Any = None
        self._nr_conns = 0
        self._early_signals: list[int] = []
        self._quick = False
        self._wake: asyncio.Event | None = None
        self._serving_started = False
        self._hub_signals: list[int] = []

    # -- gunicorn's ASGI protocol counts connections here ---------------------

    @property
    def nr_conns(self) -> int:
        """Open connections, kept by gunicorn's ASGI protocol; a close may resume accepting."""
        return self._nr_conns

    @nr_conns.setter
    def nr_conns(self, value: int) -> None:
        closed = value < self._nr_conns
        self._nr_conns = value
        if closed and self.serving is not None:
            self.serving.connection_closed()

    # -- boot -----------------------------------------------------------------

    def init_signals(self) -> None:
        """gunicorn's signals, recorded only until the hub runs (then obeyed on its loop)."""
        for signum in self.SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        for signum in _LOOP_SIGNALS:
            signal.signal(signum, self._signal_while_booting)
        signal.signal(signal.SIGWINCH, self.handle_winch)
        signal.signal(signal.SIGABRT, self.handle_abort)
        signal.siginterrupt(signal.SIGTERM, False)
        signal.siginterrupt(signal.SIGUSR1, False)

    def _signal_while_booting(self, signum: int, _frame: Any) -> None:
        # Nothing to act on yet: remember it, obey it once the hub runs.
        self._early_signals.append(signum)
        if signum != signal.SIGUSR1:
            self.alive = False

    def load_wsgi(self) -> None:
        """Import the app (gunicorn's way) and tell WSGI from ASGI."""
        _compat.check_version()
        super().load_wsgi()
        if self.force_asgi or is_asgi(self.wsgi):
            self.asgi = self.wsgi

    def run(self) -> None:
        """The worker's life after the fork: one ``bridges.run`` serving until told to stop."""
        if not self.alive:
            self._exit_before_serving()
            return
        try:
            bridges.run(
                self._serve_on_hub,
                frameworks=frameworks_from(self.cfg),
                loop_factory=_loop_factory(self.cfg),
            )
        except KeyboardInterrupt:
            # SIGINT before the worker took the signals over: a quick exit, as asked.
            self.log.info("Worker exiting on SIGINT (pid: %s)", self.pid)
        except Exception:
            if self._serving_started:
                raise
            # The hub, a startup hook or the lifespan failed: gunicorn's convention for
            # a worker that cannot boot, so that the master stops instead of respawning
            # it forever (an unknown framework name, a failing database connection...).
            self.log.exception("Worker failed to boot (pid: %s)", self.pid)
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def _exit_before_serving(self) -> None:
        if any(signum in _QUICK for signum in self._early_signals):
            self.cfg.worker_int(self)
        self.log.info("Worker told to stop while booting; exiting (pid: %s)", self.pid)

    # -- on the hub -----------------------------------------------------------

    async def _serve_on_hub(self) -> None:
        self.hub = bridges.current_hub()
        self.loop = self.hub.loop
        self._wake = asyncio.Event()
        self._take_signals(self.hub)
        _running.append(self)
        try:
            if not self.alive:  # SIGTERM while the hub started: nothing to serve or drain
                return
            await self._start_serving()
            await self._beat_until_stopped()
            await self._drain()
        finally:
            _running.remove(self)
            self._ignore_stop_signals(self.hub)

    async def _start_serving(self) -> None:
        for hook in list(_startup_hooks):
            outcome = hook(self)
            if inspect.isawaitable(outcome) or outcome is not None:
                await bridges.awaitable(outcome)
        self.serving = self._make_serving()
        await self.serving.start()
        self._serving_started = True
        self.log.info(
            "Hub worker serving (pid: %s, frameworks: %s)",
            self.pid,
            ", ".join(self.hub.frameworks) or "asyncio only",  # type: ignore[union-attr]
        )

    def _make_serving(self) -> Any:
        from ._asgi import ASGIServing, wsgi_in_threads

        if self.asgi is not None:
            return ASGIServing(self, lifespan=True)
        if "gevent" in self.hub.frameworks:  # type: ignore[union-attr]
            from ._wsgi import GeventWSGIServing

            return GeventWSGIServing(self)
        self.asgi = wsgi_in_threads(self.wsgi, self.cfg.threads)
        return ASGIServing(self, lifespan=False)

    def _take_signals(self, hub: bridges.Hub) -> None:
        """Move gunicorn's signals onto the hub's loop, then obey those that came while booting.

        Blocked meanwhile, so that a signal arriving during the swap waits for
        the new handler instead of meeting the default action.
        """
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _LOOP_SIGNALS)
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                hub.remove_signal_handler(signum, owner=_RUN_OWNER)
            for signum, handler in (
                (signal.SIGTERM, self._handle_exit),
                (signal.SIGQUIT, self._handle_quit),
                (signal.SIGINT, self._handle_quit),
                (signal.SIGUSR1, self.log.reopen_files),
            ):
                hub.add_signal_handler(signum, handler, owner=_OWNER)
                self._hub_signals.append(signum)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        early, self._early_signals = self._early_signals, []
        for signum in early:
            if signum in _QUICK:
                self._handle_quit()
            elif signum == signal.SIGTERM:
                self._handle_exit()
            else:
                self.log.reopen_files()

    def _ignore_stop_signals(self, hub: bridges.Hub) -> None:
        """The worker is leaving: a second SIGTERM (systemd and ``timeout`` signal every
        process of the group, then the master signals the worker again) must not kill
        it halfway through the hub's stop sequence with the default action."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _LOOP_SIGNALS)
        try:
            for signum in self._hub_signals:
                hub.remove_signal_handler(signum, owner=_OWNER)
            for signum in _LOOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            self._hub_signals.clear()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def handle_abort(self, _signum: int, _frame: Any) -> None:
        """SIGABRT, gunicorn's timeout notice: the loop is stuck, so leave from the handler.

        ``sys.exit`` (gunicorn's way) would raise inside the stuck view, where
        a server's catch-all turns it into a 500 and the worker goes on.
        """
        self.alive = False
        self.cfg.worker_abort(self)
        os._exit(1)

    def _handle_exit(self) -> None:
        """SIGTERM: stop accepting, finish what is in flight, then stop the hub."""
        self.alive = False
        if self.serving is not None:
            # At once, not at the next heartbeat: a worker past max_requests must
            # not take another connection meanwhile.
            self.serving.stop_accepting()
        if self._wake is not None:
            self._wake.set()

    def _handle_quit(self) -> None:
        """SIGQUIT/SIGINT: run the hub's stop sequence now."""
        self.alive = False
        if self._quick:
            return
        self._quick = True
        self.cfg.worker_int(self)
        if self.hub is not None:
            self.hub.request_stop("gunicorn SIGQUIT")

    def count_request(self) -> None:
        """One more request served; past ``max_requests`` (+ jitter) the worker restarts."""
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self._handle_exit()

    def notify(self) -> None:
        """The heartbeat gunicorn's master watches; also notices a master that went away."""
        super().notify()
        if self.ppid != os.getppid() and self.alive:
            self.log.info("Parent changed, shutting down: %s", self)
            self._handle_exit()

    async def _beat_until_stopped(self) -> None:
        # gunicorn's protocol may also clear `alive` (max_requests): look every beat.
        interval = max(0.05, min(1.0, self.timeout / 2))
        assert self._wake is not None
        while self.alive:
            self.notify()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def _drain(self) -> None:
        serving = self.serving
        serving.stop_accepting()
        deadline = self.loop.time() + self.cfg.graceful_timeout  # type: ignore[union-attr]
        while serving.in_flight() and self.loop.time() < deadline:  # type: ignore[union-attr]
            self.notify()
            await asyncio.sleep(0.05)
        if serving.in_flight():
            self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
        await serving.close()

    # -- sockets for the app's own listeners ------------------------------------

    def claim_listener(self, address: Any) -> Any:
        """Take a socket gunicorn bound (``-b``) away from HTTP serving, for the app's own server.

        ``address`` is ``(host, port)``, ``"host:port"`` or a unix socket path,
        as bound.  Returns the listening ``socket.socket``, shared with the
        other workers, so that e.g. ``HTTPServer.add_sockets([sock])`` or
        ``reactor.adoptStreamPort(sock.fileno(), ...)`` serves on it.  Call it
        from an :func:`on_startup` hook or an ASGI lifespan startup.
        """
        if self._serving_started:
            raise WorkerStateError(
                "claim_listener() was called after the worker began serving. Call it from "
                "an @bridges.gunicorn.on_startup hook or an ASGI lifespan startup."
            )
        wanted = _normalise_address(address)
        for listener in self.listeners:
            if _normalise_address(listener.sock.getsockname()) == wanted:
                self.listeners.remove(listener)
                return listener.sock
        bound = ", ".join(str(listener) for listener in self.listeners) or "none left"
        raise WorkerStateError(
            f"no listening socket bound to {address!r} is left to claim (bound: {bound}). "
            "Bind it with gunicorn's -b, once per address the app serves itself."
        )


class HubASGIWorker(HubWorker):
    """``-k bridges.gunicorn.HubASGIWorker``: serve the app as ASGI without detecting it."""

    force_asgi = True


def _normalise_address(address: Any) -> Any:
    if isinstance(address, str) and ":" in address and not address.startswith("/"):
        host, _, port = address.rpartition(":")
        return (host.strip("[]"), int(port))
    if isinstance(address, tuple):
        return (address[0], int(address[1]))
    return address


def _loop_factory(cfg: Any) -> str | None:
    # gunicorn's asgi_loop setting: "auto" keeps the stdlib loop (uvloop is opt-in
    # on the hub: with gevent.monkey.patch_all it has conditions, see docs/gevent.md).
    return "uvloop" if getattr(cfg, "asgi_loop", "auto") == "uvloop" else None
