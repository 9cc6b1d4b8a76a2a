"""The hub's observation: its accounting and its blocking detector (a mixin of Hub)."""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import TYPE_CHECKING, Any, Callable, Union

from ._accounting import Accounting, qualified_name
from ._errors import SlowCallbackError, UsageError
from ._watchdog import Watchdog

if TYPE_CHECKING:
    from ._adapter import Adapter

__all__ = [
    "ACCOUNTING_ENV",
    "AccountingArg",
    "SLOW_CALLBACK_ENV",
    "Observation",
    "accounting_mode",
    "positive_seconds",
    "slow_callback_value",
]

SLOW_CALLBACK_ENV = "BRIDGES_SLOW_CALLBACK"
"""Environment variable: the blocking detector's threshold in seconds when the code sets none."""
ACCOUNTING_ENV = "BRIDGES_ACCOUNTING"
"""Environment variable: ``0`` turns accounting off when the code does not say, ``exact``
times every dispatch."""
AccountingArg = Union[bool, str, None]
"""``accounting=``: True (sampled timing, the default), False, ``"exact"`` or None (the env)."""


def slow_callback_value(value: float | str | None, where: str = "slow_callback") -> float | None:
    """The blocking detector's threshold: ``value``, else ``$BRIDGES_SLOW_CALLBACK``, else None."""
    if value is None:
        return positive_seconds(os.environ.get(SLOW_CALLBACK_ENV) or None, SLOW_CALLBACK_ENV)
    return positive_seconds(value, where)


def accounting_mode(value: AccountingArg) -> str | None:
    """``"sampled"``, ``"exact"`` or None (off): ``value``, else ``$BRIDGES_ACCOUNTING``."""
    where = "accounting"
    if value is None:
        value, where = os.environ.get(ACCOUNTING_ENV, "1"), ACCOUNTING_ENV
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("0", "no", "off", "false"):
            return None
        if word in ("", "1", "yes", "on", "true"):
            return "sampled"
        if word == "exact":
            return "exact"
        raise UsageError(
            f"bridges: {where} must be on, off or exact (or a bool in code), not {value!r}."
        )
    return "sampled" if value else None


def positive_seconds(value: Any, where: str) -> float | None:
    """``value`` as a positive number of seconds; None for None, "", "none" or "off"."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise UsageError(
            f"bridges: {where} must be a positive number of seconds or none, not {value!r}."
        )
    return seconds


def _describer(hub: Observation) -> Callable[[str, Any], str]:
    """``hub._describe_dispatch``, holding the hub weakly.

    The accounting outlives the hub's run (``stats()`` is readable after it
    stopped): a bound method would make a cycle that keeps every stopped hub
    and its closed loop alive until a full garbage collection.
    """
    hub_ref = weakref.ref(hub)

    def describe(framework: str, what: Any) -> str:
        owner = hub_ref()
        if owner is None:
            return qualified_name(what)
        return owner._describe_dispatch(framework, what)

    return describe


class Observation:
    """Accounting per framework and the blocking detector (a mixin of :class:`bridges.Hub`)."""

    _attached: list[Adapter]
    _by_name: dict[str, Adapter]
    _host: asyncio.Task[Any] | None
    _thread_id: int | None
    loop: asyncio.AbstractEventLoop

    def report(self, exc: BaseException | None, message: str, **context: Any) -> None:
        raise NotImplementedError

    def _init_observation(self, accounting: AccountingArg, slow_callback: float | None) -> None:
        self.slow_callback = slow_callback_value(slow_callback)
        """The blocking detector's threshold in seconds, or None when it is off."""
        mode = accounting_mode(accounting)
        if mode is None and self.slow_callback is not None:
            mode = "sampled"  # the detector reads the accounting's slot: it needs accounting on
        self._accounting_mode = mode
        self.accounting: Accounting | None = None
        """The accounting of this run (the adapters' dispatch hook), None when it is off."""
        self.watchdog: Watchdog | None = None
        """The blocking detector of this run (``slow_callback`` set)."""

    def _start_accounting(self) -> None:
        """Before the adapters attach: they take their meters from the accounting."""
        if self._accounting_mode is not None:
            self.accounting = Accounting(_describer(self), exact=self._accounting_mode == "exact")

    def _start_observing(self) -> None:
        """After the adapters attached (gevent's may have given the loop another selector)."""
        if self.accounting is not None:
            self.accounting.watch_loop(self.loop, self._thread_id or 0)
        self._start_watchdog()

    def _stop_observing(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.accounting is not None:
            self.accounting.unwatch_loop()

    def _start_watchdog(self) -> None:
        if self.slow_callback is None or self.accounting is None:
            return
        boundaries = []
        host = self._host
        frame = getattr(host.get_coro(), "cr_frame", None) if host is not None else None
        if frame is not None and frame.f_back is not None:
            # What runs the loop (on uvloop, the caller of run_until_complete):
            # the stack outside it is never a dispatch.
            boundaries.append(frame.f_back.f_code)
        self.watchdog = Watchdog(
            loop=self.loop,
            accounting=self.accounting,
            threshold=self.slow_callback,
            thread_ident=self._thread_id or 0,
            frameworks={
                adapter.requires.partition(".")[0]: adapter.name for adapter in self._attached
            },
            describe=self._describe_dispatch,
            report=self._report_stall,
            boundaries=boundaries,
        )
        self.watchdog.start()

    def _describe_dispatch(self, framework: str, what: Any) -> str:
        adapter = self._by_name.get(framework)
        if adapter is not None:
            return adapter.describe_dispatch(what)
        return qualified_name(what)

    def _report_stall(self, error: SlowCallbackError) -> None:
        self.report(
            error,
            f"bridges: {error.function} ({error.framework}) held the event loop for "
            f"{error.seconds:.3f}s, past slow_callback={self.slow_callback:g}s",
        )

    def _stats(self) -> dict[str, Any]:
        if self.accounting is None:
            figures: dict[str, Any] = {
                "wall_seconds": None,
                "busy_seconds": None,
                "loop_passes": None,
                "frameworks": {},
                "slowest": [],
            }
        else:
            figures = self.accounting.stats()
        figures["stalls"] = self.watchdog.stalls if self.watchdog is not None else 0
        figures["slow_callback"] = self.slow_callback
        return figures
