"""The asyncore adapter: the hub drives ``asyncore.socket_map`` (and install()ed modules')."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

from .._accounting import qualified_name
from .._adapter import Adapter, LeakFinder
from ._errors import NotAttachedError

if TYPE_CHECKING:
    from . import _Driver

__all__ = ["AsyncoreAdapter"]


class AsyncoreAdapter(Adapter):
    """asyncore and asynchat dispatchers on the hub, each fd watched by the hub's loop."""

    name: ClassVar[str] = "asyncore"
    # asyncore left the stdlib in 3.12; pyasyncore provides the same module name.
    requires: ClassVar[str] = "asyncore"
    # First to attach: it owns the lowest level (raw fds).
    order: ClassVar[int] = 10
    install_hint: ClassVar[str] = "pip install 'tulip-bridges[asyncore]'"
    not_attached: ClassVar[type[NotAttachedError]] = NotAttachedError

    driver: _Driver
    """The registered dispatchers, the interest sweep, the waiters of this hub."""

    @classmethod
    def converters(cls) -> dict[type, Callable[[Any], asyncio.Future[Any]]]:
        from . import _CONVERTERS

        return dict(_CONVERTERS)

    def describe_dispatch(self, what: Any) -> str:
        """A dispatcher's event names the handler asyncore calls for it (``Echo.handle_read``)."""
        obj, event = what
        if event == "handle_read_event":
            method = "handle_accept" if getattr(obj, "accepting", False) else "handle_read"
        else:
            method = "handle_write"
        return f"{qualified_name(type(obj))}.{method}"

    def attach(self) -> None:
        """Take over ``asyncore.socket_map`` and ``asyncore.loop`` (and install()ed modules')."""
        from ._driver import _Driver
        from ._state import _KNOWN_FLAVORS, _add_flavor, _flavors

        for name in _KNOWN_FLAVORS:
            module = sys.modules.get(name)
            if module is not None and module not in _flavors:
                _add_flavor(module)
        self.driver = _Driver(self.hub)
        try:
            self.driver.take_over()
        except BaseException:
            self.driver.release()
            raise

    def detach(self) -> None:
        """Close the dispatchers still open, release their fds, give asyncore its map back."""
        try:
            self.driver.close_all()
        finally:
            self.driver.release()

    def dispatchers(self) -> list[Any]:
        """The dispatchers this hub drives now (every map)."""
        return [entry.obj for entry in self.driver.entries.values() if not entry.dead]

    def leak_finders(self) -> Sequence[LeakFinder]:
        return (LeakFinder("asyncore dispatcher", self.dispatchers),)
