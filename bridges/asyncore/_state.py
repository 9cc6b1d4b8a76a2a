"""The module-level state of the asyncore adapter: asyncore itself and the modules taken over."""

from __future__ import annotations

import errno
import warnings
import weakref
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._errors import FrameworkNotInstalledError

if TYPE_CHECKING:
    from ._socketmap import SocketMap

with warnings.catch_warnings():
    # Python 3.10 and 3.11 warn that asyncore is deprecated; the user chose it
    # by attaching this adapter, and the warning would otherwise surface in
    # every run that attaches frameworks="auto".
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*asyncore")
    try:
        import asyncore
    except ImportError:  # pragma: no cover - depends on the environment
        raise FrameworkNotInstalledError(
            "bridges.asyncore needs the asyncore module, which left the standard library "
            "in Python 3.12. Install it with: pip install 'tulip-bridges[asyncore]' "
            "(pyasyncore and pyasynchat)."
        ) from None

_OWNER = "asyncore"
"""The owner of asyncore's fds in the hub's registry: the adapter's name, as for every framework."""

# asyncore's own list (asyncore._DISCONNECTED), spelled out because it is private.
_DISCONNECTED = frozenset(
    {
        errno.ECONNRESET,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EBADF,
    }
)

# Modules with asyncore's interface whose socket_map and loop() the hub takes
# over while it runs: asyncore itself, plus what install() adds.  Those named
# in _KNOWN_FLAVORS are taken over too when they are already imported.
_flavors: list[ModuleType] = [asyncore]
_KNOWN_FLAVORS = ("waitress.wasyncore", "supervisor.medusa.asyncore_25")
_exit_now: tuple[type[BaseException], ...] = (asyncore.ExitNow,)
# SocketMaps no hub drives yet, by id (a mapping is unhashable): the next hub adopts them.
_originals: dict[ModuleType, tuple[Any, Any]] = {}
"""Each taken-over module's own socket_map and loop, as found before the first hub."""
_unbound_maps: weakref.WeakValueDictionary[int, SocketMap] = weakref.WeakValueDictionary()


def _describe(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        return f"<{type(obj).__qualname__} object at {id(obj):#x}>"


def _add_flavor(module: ModuleType) -> None:
    global _exit_now
    _flavors.append(module)
    exit_now = getattr(module, "ExitNow", None)
    if isinstance(exit_now, type) and exit_now not in _exit_now:
        _exit_now = (*_exit_now, exit_now)
