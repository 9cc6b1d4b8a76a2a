"""The Tornado adapter: one IOLoop bound to the hub's loop, Tornado's fds through the hub."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from .._adapter import Adapter, _importable

if TYPE_CHECKING:
    from tornado.ioloop import IOLoop

    from . import _HubSelector

__all__ = ["TornadoAdapter"]


class TornadoAdapter(Adapter):
    """Tornado on the hub: one IOLoop per hub, ``yield`` anything, errors to the hub."""

    name: ClassVar[str] = "tornado"
    requires: ClassVar[str] = "tornado"
    order: ClassVar[int] = 30
    install_hint: ClassVar[str] = "pip install 'tulip-bridges[tornado]'"

    ioloop: IOLoop
    """The hub's IOLoop (``IOLoop.current()`` inside the hub)."""
    created: bool
    """True when the hub made the IOLoop (and unbinds it at detach); False when it
    adopted one that already existed (``tornado.testing``), which it leaves bound."""
    selector: _HubSelector
    """The stand-in selector; its ``original`` goes back to the IOLoop at detach."""

    def attach(self) -> None:
        """Bind one IOLoop to the hub's loop (adopting an existing one) and route Tornado
        through the hub."""
        from . import _HubIOLoop, _HubSelector, _install_report_filter
        from ._compat import bound_ioloop, patch, swap_selector

        hub = self.hub
        patch(twisted_available=_importable("twisted"))
        existing = bound_ioloop(hub.loop)
        if existing is not None:
            self.ioloop, self.created = existing, False
        else:
            ioloop = _HubIOLoop(asyncio_loop=hub.loop, make_current=False)
            ioloop._bridges_hub = hub
            if hub.accounting is not None:
                ioloop._bridges_meter = hub.accounting.meter_for(self.name)
            self.ioloop, self.created = ioloop, True
        self.selector = _HubSelector(hub)
        self.selector.original = swap_selector(self.ioloop, self.selector)
        _install_report_filter()

    def detach(self) -> None:
        """Release Tornado's fd registrations, unbind the IOLoop the hub made, undo the patches.

        Tornado has no shutdown work of its own (servers are stopped by the code
        that started them); a server still listening when the hub stops loses its
        registrations here, and its sockets are closed by their owners or the GC.

        An adopted IOLoop keeps its binding and its handlers: its owner goes on
        running it (and closes it).  The fds it registered while the hub ran went
        through the hub's registry, which the hub empties from the loop when it
        stops, so they are moved out of the registry and back onto the asyncio
        loop directly, where the IOLoop's handlers registered before the hub
        attached already are.
        """
        from . import _remove_report_filter
        from ._compat import release_handlers, swap_selector, unbind_ioloop, unpatch

        try:
            _remove_report_filter()
            ioloop = self.ioloop
            if self.created:
                release_handlers(ioloop, all_fds=False)
                swap_selector(ioloop, self.selector.original)
                ioloop._bridges_meter = None  # type: ignore[attr-defined]
                unbind_ioloop(ioloop)
                return
            events = self._events_in_registry()
            for fd in events:
                ioloop.update_handler(fd, 0)
            swap_selector(ioloop, self.selector.original)
            for fd, mask in events.items():
                try:
                    ioloop.update_handler(fd, mask)
                except OSError:
                    # The application closed the fd without remove_handler(): the
                    # loop cannot watch it again.  Tornado's own close() drops such
                    # a handler without a word; so does the hub.
                    ioloop.remove_handler(fd)
        finally:
            unpatch()

    def _events_in_registry(self) -> dict[int, int]:
        """Tornado's event mask for each fd Tornado holds in the hub's registry."""
        from tornado.ioloop import IOLoop

        from . import OWNER

        owners = self.hub.fd_owners()
        events: dict[int, int] = {}
        for role, flag in (("readers", IOLoop.READ), ("writers", IOLoop.WRITE)):
            for fd, owner in owners[role].items():
                if owner == OWNER:
                    events[fd] = events.get(fd, 0) | flag
        return events

    # -- the pytest plugin -------------------------------------------------

    @classmethod
    def test_flavor(cls, func: Any) -> str | None:
        return "gen.coroutine" if getattr(func, "__tornado_coroutine__", False) else None
