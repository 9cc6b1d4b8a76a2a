"""``bridges.twisted.install()``: a script's unchanged ``reactor.run()`` runs a hub.

Also what ``twistd --reactor=bridges`` and ``twist --reactor=bridges`` call.
Both install a reactor *before* any loop runs and then call ``reactor.run()``;
in between they do work a stock reactor accepts before it runs: a ``.tac``
file builds its services, ``twistd`` forks into the background and writes its
pidfile, and ``privilegedStartService`` opens the listening ports.

So the reactor installed here holds no loop until ``run()``: it is built on a
throw-away hub and left unbound, exactly as a reactor is between two
``bridges.run`` calls.  The ports opened before ``run()`` wait, listening,
until the hub binds the reactor (connections queue in the kernel's backlog, as
they do before a stock reactor runs); timers wait too.  ``run()`` is
``bridges.run`` with Twisted attached, serving until ``reactor.stop()``,
SIGTERM or SIGINT, after the shutdown triggers ran in the hub's stop sequence.
Then it returns, as the stock ``run()`` does, so that ``twistd`` removes its
pidfile and the process exits 0.  Creating the loop only in ``run()`` also
means nothing of it is inherited across ``twistd``'s daemonizing fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
from typing import Any, Callable

from twisted.internet.defer import Deferred

from .._adapter import FrameworksArg
from .._entry import serve_until_stopped, with_framework
from .._errors import HubStateError
from .._hub import DEFAULT_STOP_TIMEOUT, Hub
from .._run import LoopFactoryArg, make_loop_factory
from .._run import run as run_hub
from ._reactor import UNBOUND_FORMS, HubReactor

__all__ = ["deferred_before_run", "install"]

_REACTOR_MODULE = "twisted.internet.reactor"


class _RunnableHubReactor(HubReactor):
    """The hub's reactor whose ``run()`` starts a hub, for code that owns its main.

    Before ``run()`` it accepts what a stock reactor accepts before it runs:
    readers and writers (listening ports) wait in ``_early`` until the hub
    binds the reactor.  Inside the hub it is the ordinary :class:`HubReactor`.
    """

    def __init__(self, hub: Hub) -> None:
        self._early: dict[Any, bool] = {}
        """Selectables registered before run(): True for a reader, False for a writer."""
        self._frameworks: FrameworksArg = "auto"
        self._loop_factory: LoopFactoryArg = None
        self._stop_timeout = DEFAULT_STOP_TIMEOUT
        super().__init__(hub)

    def configure(
        self, frameworks: FrameworksArg, loop_factory: LoopFactoryArg, stop_timeout: float
    ) -> None:
        make_loop_factory(loop_factory)  # refuse a bad loop_factory now, not at run()
        self._frameworks = with_framework(frameworks, "twisted")
        self._loop_factory = loop_factory
        self._stop_timeout = stop_timeout

    # -- run --------------------------------------------------------------------

    def run(self, installSignalHandlers: bool = True) -> None:
        """Run a hub with Twisted attached until ``reactor.stop()``, SIGTERM or SIGINT.

        The hub owns SIGINT and SIGTERM (``installSignalHandlers`` is ignored):
        either one runs the stop sequence, shutdown triggers included, and then
        ``run()`` returns, as the stock reactor's does after Ctrl-C.
        """
        if self.hub is not None:
            super().run(installSignalHandlers)  # refused: the hub already runs us
        # SIGINT: the stop sequence ran; return as a stock reactor's run() does.
        with contextlib.suppress(KeyboardInterrupt):
            run_hub(
                serve_until_stopped,
                frameworks=self._frameworks,
                loop_factory=self._loop_factory,
                stop_timeout=self._stop_timeout,
            )

    # -- what a stock reactor accepts before it runs -------------------------------

    def _waiting(self) -> bool:
        return self.hub is None

    def bind(self, hub: Hub) -> None:
        super().bind(hub)
        early, self._early = self._early, {}
        for selectable, read in early.items():
            if read:
                self.addReader(selectable)
            else:
                self.addWriter(selectable)

    def addReader(self, reader: Any) -> None:
        if self._waiting():
            self._early[reader] = True
            return
        super().addReader(reader)

    def addWriter(self, writer: Any) -> None:
        if self._waiting():
            self._early[writer] = False
            return
        super().addWriter(writer)

    def removeReader(self, reader: Any) -> None:
        if self._early.get(reader) is True:
            del self._early[reader]
            return
        super().removeReader(reader)

    def removeWriter(self, writer: Any) -> None:
        if self._early.get(writer) is False:
            del self._early[writer]
            return
        super().removeWriter(writer)

    def removeAll(self) -> list[Any]:
        early, self._early = list(self._early), {}
        return early + super().removeAll()

    def getReaders(self) -> list[Any]:
        return super().getReaders() + [s for s, read in self._early.items() if read]

    def getWriters(self) -> list[Any]:
        return super().getWriters() + [s for s, read in self._early.items() if not read]


def _unbound_before_run(name: str) -> Callable[..., Any]:
    """``name`` as it works unbound (the stock reactor's, or ours for listenTCP) before ``run()``.

    HubReactor refuses ``listenTCP`` and the other calls that open an fd while
    no hub runs it (between ``bridges.run`` calls nothing would ever serve the
    fd).  Before ``run()`` the fd will be served: the hub binds the reactor.
    """
    unbound = UNBOUND_FORMS[name]
    bound = getattr(HubReactor, name)

    def method(self: _RunnableHubReactor, *args: Any, **kwargs: Any) -> Any:
        chosen = unbound if self._waiting() else bound
        return chosen(self, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = unbound.__doc__
    return method


for _name in UNBOUND_FORMS:
    setattr(_RunnableHubReactor, _name, _unbound_before_run(_name))
del _name


def deferred_before_run(aw: Any) -> Deferred[Any] | None:
    """``bt.deferred(aw)`` called before ``reactor.run()`` of an installed reactor, else None.

    ``twistd`` starts the services before it runs the reactor, so a
    ``startService`` that starts a coroutine runs before any loop does.  The
    coroutine then starts as an asyncio task when the reactor runs, as
    ``ensureDeferred`` code would start when a stock reactor does.
    """
    reactor = sys.modules.get(_REACTOR_MODULE)
    if not isinstance(reactor, _RunnableHubReactor) or reactor.hub is not None:
        return None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return None  # a loop without the reactor: let bt.deferred say what is wrong
    from . import deferred

    started: list[Deferred[Any]] = []

    def cancel(_: Deferred[Any]) -> None:
        if started:
            started[0].cancel()
        elif inspect.iscoroutine(aw):
            aw.close()  # it never ran: no "coroutine was never awaited" warning

    result: Deferred[Any] = Deferred(cancel)

    def start() -> None:
        if not result.called:
            started.append(deferred(aw))
            started[0].chainDeferred(result)

    reactor.callWhenRunning(start)
    return result


def _new_unbound_reactor() -> _RunnableHubReactor:
    """A reactor built on a throw-away hub and unbound, holding no loop and no fd."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_build())
    finally:
        loop.close()


async def _build() -> _RunnableHubReactor:
    async with Hub(frameworks=None) as hub:
        reactor = _RunnableHubReactor(hub)
        reactor.unbind()
    return reactor


def install(
    *,
    frameworks: FrameworksArg = "auto",
    loop_factory: LoopFactoryArg = None,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
) -> HubReactor:
    """Install the hub's reactor so that an unchanged ``reactor.run()`` runs a hub.

    Call it first thing, before anything imports ``twisted.internet.reactor``
    (as with any Twisted reactor's ``install()``)::

        from bridges import twisted as bt
        bt.install()
        from twisted.internet import reactor
        ...                       # the program as it was
        reactor.run()             # a hub until reactor.stop(), SIGTERM or Ctrl-C

    ``reactor.run()`` is then :func:`bridges.run` with these ``frameworks``
    (Twisted is always among them), ``loop_factory`` (``"uvloop"`` for uvloop)
    and ``stop_timeout``; asyncio code may be started from Twisted code
    (``bt.deferred(coro)``, ``asyncio.ensure_future``) once the reactor runs.
    ``twistd --reactor=bridges`` (``bridges-uvloop`` for uvloop) calls this.
    Calling it again updates the settings of the reactor it installed.
    """
    installed = sys.modules.get(_REACTOR_MODULE)
    if installed is None:
        reactor = _new_unbound_reactor()
        from twisted.internet.main import installReactor

        reactor.configure(frameworks, loop_factory, stop_timeout)
        installReactor(reactor)
        return reactor
    if isinstance(installed, _RunnableHubReactor):
        installed.configure(frameworks, loop_factory, stop_timeout)
        return installed
    from . import ForeignReactorError
    from ._adapter import _foreign_reactor_message

    if isinstance(installed, HubReactor):
        raise HubStateError(
            "bridges.twisted.install() was called after bridges.run() had installed the "
            "hub's reactor; that reactor already runs (or ran) the hub's way, inside "
            "bridges.run(). Keep one way: either call install() first thing and end with "
            "reactor.run(), or drop install() and use bridges.run(main)."
        )
    raise ForeignReactorError(
        _foreign_reactor_message(installed, "bridges.twisted.install() was called")
    )
