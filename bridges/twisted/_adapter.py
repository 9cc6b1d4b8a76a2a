"""The Twisted adapter: installs (or re-binds) the hub's reactor at attach, stops it at detach."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Sequence

from .._adapter import Adapter, LeakFinder
from ._errors import NotAttachedError

if TYPE_CHECKING:
    from .._hub import Hub
    from ._reactor import HubReactor

__all__ = ["TwistedAdapter"]

_REACTOR_MODULE = "twisted.internet.reactor"


class TwistedAdapter(Adapter):
    """Twisted on the hub: the process-global reactor, bound to this hub's loop."""

    name: ClassVar[str] = "twisted"
    requires: ClassVar[str] = "twisted"
    # Last to attach: its startup triggers may already use the others.
    order: ClassVar[int] = 40
    runs_shutdown_work: ClassVar[bool] = True
    install_hint: ClassVar[str] = "pip install 'tulip-bridges[twisted]'"
    not_attached: ClassVar[type[NotAttachedError]] = NotAttachedError

    reactor: HubReactor
    """The hub's reactor (``twisted.internet.reactor`` while the hub runs)."""
    _observer: Callable[[dict[str, Any]], None]

    @classmethod
    def converters(cls) -> dict[type, Callable[[Any], asyncio.Future[Any]]]:
        from twisted.internet.defer import Deferred

        from . import _deferred_to_future

        return {Deferred: _deferred_to_future}

    def describe_dispatch(self, what: Any) -> str:
        """An fd event names the protocol's method; a timed call, the function it calls."""
        from ._writes import _Dispatch

        if isinstance(what, _Dispatch):
            return what.describe()
        return super().describe_dispatch(what)

    # -- attach / detach ---------------------------------------------------

    def attach(self) -> Awaitable[None] | None:
        """Install (or re-bind) the reactor on ``hub.loop`` and start it running."""
        from twisted.logger import globalLogPublisher

        reactor = _install(self.hub)
        observer = _make_observer(self.hub)
        globalLogPublisher.addObserver(observer)
        try:
            reactor.prepare_start()
            # The hub owns the signals: with Twisted's handlers installed, asyncio's
            # add_signal_handler (and so SIGINT/SIGTERM handling) silently stops working.
            reactor.startRunning(installSignalHandlers=False)
        except BaseException:
            # The hub calls detach() only for adapters whose attach() returned.
            globalLogPublisher.removeObserver(observer)
            reactor.unbind()
            raise
        self.reactor = reactor
        self._observer = observer
        if reactor.running:
            return None
        # A `before startup` trigger returned a Deferred: wait until the reactor runs.
        return _wait_running(reactor)

    def detach(self) -> Awaitable[None] | None:
        """Run the shutdown triggers (awaited), stop the pool, hand the fds back to the hub."""
        return self._detach()

    async def _detach(self) -> None:
        from twisted.logger import globalLogPublisher

        try:
            await self.reactor.shutdown()
        finally:
            globalLogPublisher.removeObserver(self._observer)

    def forget_observer(self) -> None:
        from twisted.logger import globalLogPublisher

        globalLogPublisher.removeObserver(self._observer)

    # -- the pytest plugin -------------------------------------------------

    def leak_finders(self) -> Sequence[LeakFinder]:
        return (
            LeakFinder(
                "Twisted delayed call",
                self._delayed_calls,
                "Set twisted.internet.base.DelayedCall.debug = True to see where each delayed "
                "call was made.",
            ),
        )

    def _delayed_calls(self) -> list[Any]:
        # DelayedCall's repr names the function, and where it was created when
        # twisted.internet.base.DelayedCall.debug is True.
        return [call for call in self.reactor.getDelayedCalls() if call.active()]

    @classmethod
    def test_flavor(cls, func: Any) -> str | None:
        from ._pytest import is_inline_callbacks

        return "inlineCallbacks" if is_inline_callbacks(func) else None

    @classmethod
    def owns_test_case(cls, case: Any) -> bool:
        from ._pytest import is_trial_case

        return is_trial_case(case)

    @classmethod
    def prepare_test_case(cls) -> None:
        from ._pytest import install_hub_reactor

        install_hub_reactor()

    def adopt_test_case(self, testcase: Any, runner: Any) -> Callable[[], None] | None:
        from ._pytest import adopt

        return adopt(testcase, runner)


async def _wait_running(reactor: HubReactor) -> None:
    running: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    reactor.callWhenRunning(lambda: running.done() or running.set_result(None))
    await running


def _install(hub: Hub) -> HubReactor:
    """Install the hub's reactor, or re-bind the one an earlier run installed."""
    from . import ForeignReactorError, ReactorInUseError
    from ._reactor import HubReactor

    installed = sys.modules.get(_REACTOR_MODULE)
    if installed is None:
        from twisted.internet.main import installReactor

        reactor = HubReactor(hub)
        installReactor(reactor)
        return reactor
    if not isinstance(installed, HubReactor):
        raise ForeignReactorError(_foreign_reactor_message(installed))
    if installed.hub is not None and installed.hub.loop.is_closed():
        _recover_from_closed_hub(installed, installed.hub)
    if installed.hub is not None:
        raise ReactorInUseError(
            "the Twisted reactor is process-global and already runs on another bridges hub "
            f"({installed.hub!r}). Twisted supports one reactor per process: run the "
            "Twisted code on that hub (hand it over with loop.call_soon_threadsafe), or "
            "stop that hub first."
        )
    installed.bind(hub)
    return installed


def _recover_from_closed_hub(reactor: HubReactor, dead: Hub) -> None:
    """Take the reactor back from a hub whose loop closed before its Twisted stage ran.

    A second Ctrl-C while stopping (or an application that closes its loop
    without leaving ``async with Hub()``) can end a loop before ``detach``
    unbound the reactor.  That hub can never run again, so nothing is lost by
    unbinding it here; refusing instead would make every later run fail.
    """
    adapter = dead.adapter(TwistedAdapter.name)
    if isinstance(adapter, TwistedAdapter):
        adapter.forget_observer()
    reactor.recover()


def _foreign_reactor_message(installed: Any, when: str = "the bridges hub attached") -> str:
    kind = type(installed)
    name = f"{kind.__module__}.{kind.__qualname__}"
    importers = _importers_of(installed)
    if _crochet_runs_a_reactor():
        return (
            f"a Twisted reactor ({name}) was already installed when the bridges hub attached: "
            "crochet.setup() installed it and runs it in its thread 'CrochetReactor'. Twisted "
            "allows one reactor per process, and the hub must run its own on its asyncio loop. "
            "Call crochet.setup() (or crochet.no_setup()) inside the code bridges.run() runs, "
            "not before it: crochet then uses the hub's reactor. crochet supports one "
            "reactor run per process, so use it in one bridges.run() per process."
        )
    if importers:
        by = f"it was imported by {', '.join(importers[:3])}"
    else:
        by = f"it was installed by {kind.__module__} (or by code that imported {_REACTOR_MODULE})"
    return (
        f"a Twisted reactor ({name}) was already installed when {when}; {by}. "
        "Twisted allows one reactor per process, and bridges must install its own. "
        "Fix the import order: "
        "in a script that ends in reactor.run(), call bridges.twisted.install() first thing, "
        f"before anything imports {_REACTOR_MODULE}; with bridges.run(), do not import "
        f"{_REACTOR_MODULE} (`from twisted.internet import reactor`) at module level -- "
        "import it inside the code that runs on the hub; a twistd or twist service runs "
        "with `twistd --reactor=bridges` (or `twist --reactor=bridges`). "
        "Do not install another reactor (asyncioreactor.install(), pytest-twisted) "
        "in a process that uses bridges."
    )


def _crochet_runs_a_reactor() -> bool:
    # crochet.setup() runs the reactor in a thread of this name (crochet 1.x-2.x).
    return "crochet" in sys.modules and any(
        thread.name == "CrochetReactor" for thread in threading.enumerate()
    )


def _importers_of(installed: Any) -> list[str]:
    """Modules whose globals hold the reactor: the best guess of who imported it first.

    Python keeps no record of who imported a module; a module that did
    ``from twisted.internet import reactor`` keeps it as a global, so those are
    named, the application's modules before Twisted's own.
    """
    found: list[str] = []
    for name, module in list(sys.modules.items()):
        if name == _REACTOR_MODULE or not isinstance(module, ModuleType):
            continue
        namespace = getattr(module, "__dict__", {})
        if any(value is installed for value in list(namespace.values())):
            found.append(name)
    found.sort(key=lambda name: (name.startswith(("twisted.", "bridges.")), name))
    return found


# -- errors Twisted logs, to the hub's error sink --------------------------------


def _make_observer(hub: Hub) -> Callable[[dict[str, Any]], None]:
    """A log observer that sends every logged Failure to ``hub.report``.

    That covers "Unhandled error in Deferred" (logged when a failed Deferred
    nobody handled is garbage collected), exceptions in reactor callbacks,
    timed calls, triggers and ``log.err()``.  ``hub.report`` reports each
    exception object once, however many times Twisted logs it.
    """
    from twisted.python.failure import Failure

    def observe(event: dict[str, Any]) -> None:
        failure = event.get("log_failure", event.get("failure"))
        if not isinstance(failure, Failure):
            return
        # An observer that raises is removed by Twisted: never let the sink's trouble out.
        with contextlib.suppress(Exception):
            hub.report(failure.value, _describe(event))

    return observe


def _describe(event: dict[str, Any]) -> str:
    from twisted.logger import formatEvent

    if event.get("log_namespace") == "twisted.internet.defer":
        return "Twisted: Unhandled error in Deferred"
    text = ""
    try:
        text = formatEvent(event).strip()
    except Exception:  # noqa: BLE001 - a broken format string must not hide the error
        text = str(event.get("log_format") or "")
    return f"Twisted logged an error: {text}" if text else "Twisted logged an error"
