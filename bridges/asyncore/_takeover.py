"""Module takeover: while a hub runs, asyncore's ``socket_map`` and ``loop()`` are the hub's."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from ._compat import _map_of, _set_map_of
from ._errors import HubOwnsLoopError
from ._socketmap import SocketMap
from ._state import _OWNER, _describe, _flavors, _originals, _unbound_maps, asyncore

if TYPE_CHECKING:
    pass


class TakeOver:
    """Taking over and giving back asyncore-like modules (a mixin of ``_Driver``)."""

    def take_over(self) -> None:
        self.default_map = SocketMap()
        self.bind(self.default_map)
        for module in _flavors:
            self._take_over(module)
        for socket_map in list(_unbound_maps.values()):
            if socket_map:
                self.bind(socket_map)

    def _take_over(self, module: ModuleType) -> None:
        current = module.socket_map
        if isinstance(current, SocketMap):
            # A hub whose loop was closed before its stop sequence finished (a
            # second Ctrl-C while stopping) never gave the module back: recover
            # the originals, or no later hub could start.
            original_map, original_loop = _originals[module]
            leftovers = list(current._objs.items())
            current._objs.clear()
            current._driver = None
        else:
            original_map, original_loop = current, module.loop
            _originals[module] = (original_map, original_loop)
            leftovers = list(original_map.items())
            # Dispatchers made before the hub started sit in the original map
            # and point at it; move them, so that closing one unregisters its fd.
            original_map.clear()
        self.saved.append((module, original_map, original_loop))
        hub_map = self.default_map if module is asyncore else SocketMap()
        if hub_map is not self.default_map:
            self.bind(hub_map)
        for fd, obj in leftovers:
            if _map_of(obj) is original_map or _map_of(obj) is current:
                _set_map_of(obj, hub_map)
            hub_map[fd] = obj
        module.socket_map = hub_map
        module.loop = _refusing_loop(module, original_loop, self.loop)

    def close_all(self) -> None:
        """Close every dispatcher still open: the stop sequence's "dispatchers are closed"."""
        for socket_map in list(self.watched.values()):
            self._sync(socket_map)
        for entry in list(self.entries.values()):
            if entry.dead:
                continue
            try:
                entry.obj.close()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - one failing close must not skip the rest
                self.hub.report(
                    exc, f"bridges.asyncore: closing {_describe(entry.obj)} at hub stop failed"
                )
            if not entry.dead:
                # It did not leave its map (a close() that forgot del_channel):
                # stop watching its fd anyway, the hub is going away.
                self._drop(entry)

    def release(self) -> None:
        self.detached = True
        for handle in (self.sweep_handle, self.tick_handle, self.fresh_handle):
            if handle is not None:
                handle.cancel()
        self.sweep_handle = self.tick_handle = self.fresh_handle = None
        self.fresh.clear()
        for module, original_map, original_loop in reversed(self.saved):
            module.socket_map = original_map
            module.loop = original_loop
        self.saved.clear()
        for socket_map in self.maps.values():
            socket_map._driver = None
            _unbound_maps[id(socket_map)] = socket_map
        self.maps.clear()
        self.watched.clear()
        self.synced.clear()
        for waiters in (*self.loop_waiters.values(), *self.closed_waiters.values()):
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        self.loop_waiters.clear()
        self.closed_waiters.clear()
        if self.expt is not None:
            self.hub.remove_reader(self.expt.fileno(), owner=_OWNER)
            self.expt.close()
            self.expt = None
        self._close_poller()


def _refusing_loop(
    module: ModuleType, original: Callable[..., Any], hub_loop: asyncio.AbstractEventLoop
) -> Callable[..., Any]:
    name = module.__name__

    def loop(
        timeout: float = 30.0, use_poll: bool = False, map: Any = None, count: Any = None
    ) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is hub_loop or map is None:
            raise HubOwnsLoopError(
                f"{name}.loop() was called while the bridges hub drives {name}'s dispatchers. "
                "It would block the hub's event loop (and every framework on it) and poll "
                "the same sockets twice. The hub already runs the dispatchers: use "
                "`await bridges.asyncore.loop(map=...)` to wait until the map is empty. Its "
                "timeout= is the total time to wait, not asyncore's per-poll timeout. "
                "Other threads may still run asyncore.loop() with a map of their own (map={...})."
            )
        return original(timeout, use_poll, map, count)

    loop.__wrapped__ = original  # type: ignore[attr-defined]
    return loop
