"""The hub-owned socket map: a mapping that tells the hub's driver when dispatchers come and go."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from .._errors import HubNotRunningError
from .._hub import current_hub

if TYPE_CHECKING:
    from ._driver import _Driver

# -- the socket map -----------------------------------------------------------
from ._state import _unbound_maps


class SocketMap(MutableMapping):  # type: ignore[type-arg]
    """A socket map (``{fd: dispatcher}``) whose dispatchers the hub drives.

    Use it wherever asyncore takes ``map=``.  Adding a dispatcher registers
    its fd with the hub's loop and removing it unregisters it, so the hub
    never has to scan the map.  A map made where no hub runs holds its
    dispatchers until a hub adopts it (at attach, or through
    ``await loop(map=...)`` / ``await closed(...)``).  While the hub runs,
    ``asyncore.socket_map`` is one of these.
    """

    def __init__(self, items: Mapping[int, Any] | None = None) -> None:
        self._objs: dict[int, Any] = {}
        self._driver: _Driver | None = None
        _unbound_maps[id(self)] = self
        if items:
            self.update(items)

    def __getitem__(self, fd: int) -> Any:
        return self._objs[fd]

    def get(self, fd: int, default: Any = None) -> Any:
        return self._objs.get(fd, default)

    def __contains__(self, fd: object) -> bool:
        return fd in self._objs

    def __iter__(self) -> Iterator[int]:
        return iter(self._objs)

    def __len__(self) -> int:
        return len(self._objs)

    def __setitem__(self, fd: int, obj: Any) -> None:
        driver = self._driver
        if driver is None:
            driver = _adopting_driver(self)
        if driver is not None:
            driver.check_thread()
        self._objs[fd] = obj
        if driver is not None:
            driver.track(self, fd, obj)

    def __delitem__(self, fd: int) -> None:
        driver = self._driver
        if driver is not None:
            driver.check_thread()
        obj = self._objs.pop(fd)
        if driver is not None:
            driver.untrack(self, fd, obj)

    def copy(self) -> dict[int, Any]:
        """A plain dict snapshot, as ``dict.copy()`` gives code written for a dict map."""
        return dict(self._objs)

    def __repr__(self) -> str:
        state = "driven" if self._driver is not None else "not driven"
        return f"<bridges.asyncore.SocketMap {state} fds={sorted(self._objs)}>"


def _adopting_driver(socket_map: SocketMap) -> _Driver | None:
    """The driver of the hub running here, if it has asyncore attached: it adopts the map."""
    try:
        hub = current_hub()
    except HubNotRunningError:
        return None
    from ._adapter import AsyncoreAdapter

    adapter = hub.adapter("asyncore")
    if not isinstance(adapter, AsyncoreAdapter) or adapter.driver.detached:
        return None
    adapter.driver.bind(socket_map)
    return adapter.driver
