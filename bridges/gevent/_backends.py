"""gevent's *backend* vocabulary for a loop whose poller is an asyncio loop.

libev calls the kernel mechanism its loop waits on (epoll, kqueue, poll,
select) the loop's *backend*: ``gevent.core.supported_backends()`` lists the
ones this system offers, ``Hub(backend)`` or ``GEVENT_BACKEND=select`` chooses
one, and ``hub.loop.backend`` names the one in use.  On our loop the thing
that waits is the asyncio loop's selector, and the same names mean the same
kernel mechanisms: ``selectors.EpollSelector`` is ``'epoll'``, and so on.

* The standalone loop (``GEVENT_LOOP=bridges.gevent.AsyncioLoop``) honours the
  choice as libev does: it builds its asyncio loop on that selector, and then
  waits for gevent's own fds with it too (no private epoll unless the backend
  is epoll), so that ``GEVENT_BACKEND=select`` really polls with ``select()``.
* The hosted loop (``bridges.run``) waits on the asyncio loop it was given;
  its backend is that loop's selector, or ``'default'`` for a loop that is
  not selector-based (uvloop: libuv chooses, as gevent's libuv loop says).

libev's tuning flags (``noenv``, ``forkcheck``, ``signalfd``, ``nosigmask``)
are accepted and have no effect: asyncio has none of those knobs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._errors import BridgeError
from ._compat import loop_selector, original_attr

__all__ = [
    "UnsupportedBackendError",
    "backend_of",
    "choose_selector",
    "recommended_backends",
    "supported_backends",
]

_SELECTORS = (
    ("devpoll", "DevpollSelector"),
    ("kqueue", "KqueueSelector"),
    ("epoll", "EpollSelector"),
    ("poll", "PollSelector"),
    ("select", "SelectSelector"),
)
"""Backend names and the ``selectors`` class of each, in libev's order of preference."""

_LIBEV_ONLY = ("port", "linux_aio", "linux_iouring")
"""libev backends with no selector: valid names, never supported here."""

_LIBEV_FLAGS = ("noenv", "forkcheck", "signalfd", "nosigmask")


class UnsupportedBackendError(BridgeError, ValueError):
    """The backend asked of a standalone ``AsyncioLoop`` is unknown or not available here.

    A ``ValueError`` too, as libev's loop raises for the same mistake.
    """


def _selector_classes() -> dict[str, type]:
    """Name -> the unpatched ``selectors`` class, for the selectors this platform has."""
    found = {}
    for name, attr in _SELECTORS:
        try:
            found[name] = original_attr("selectors", attr)
        except AttributeError:
            continue
    return found


def supported_backends() -> list[str]:
    """The backends a standalone loop can use on this system, most preferred first."""
    return list(_selector_classes())


def recommended_backends() -> list[str]:
    """The backend used when none is asked for: ``selectors.DefaultSelector``'s."""
    default = original_attr("selectors", "DefaultSelector")
    return [name for name, cls in _selector_classes().items() if cls is default]


def choose_selector(flags: Any) -> tuple[str, type]:
    """The backend name and selector class for libev-style ``flags``.

    ``flags`` is what gevent passes a loop class: None or ``""`` (the default
    backend), or backend names as a comma-separated string or a sequence.  Of
    several names the first available in libev's order is used, as libev does.
    """
    names = _requested(flags)
    available = _selector_classes()
    if not names:
        (name,) = recommended_backends()
        return name, available[name]
    for name, _ in _SELECTORS:
        if name in names and name in available:
            return name, available[name]
    raise UnsupportedBackendError(
        f"unsupported gevent backend {','.join(names)!r} for bridges' AsyncioLoop: this "
        f"system's selectors offer {', '.join(available)}. Set GEVENT_BACKEND (or pass "
        "Hub(backend)) to one of those, or leave it unset for the default."
    )


def _requested(flags: Any) -> list[str]:
    if not flags:
        return []
    if isinstance(flags, int):
        raise UnsupportedBackendError(
            f"gevent backend flags {flags:#x}: bridges' AsyncioLoop takes backend names "
            "(GEVENT_BACKEND=select, Hub('epoll')), not libev's bit masks."
        )
    parts = flags.split(",") if isinstance(flags, str) else list(flags)
    names = []
    known = {name for name, _ in _SELECTORS} | set(_LIBEV_ONLY)
    for part in parts:
        value = str(part).strip().lower()
        if not value or value in _LIBEV_FLAGS:
            continue
        if value not in known:
            raise UnsupportedBackendError(
                f"invalid gevent backend {value!r}; possible values: "
                f"{', '.join(sorted(known | set(_LIBEV_FLAGS)))}."
            )
        names.append(value)
    return names


def backend_of(aio_loop: asyncio.AbstractEventLoop) -> str:
    """The backend name of the selector ``aio_loop`` waits on; ``'default'`` if it has none."""
    selector = loop_selector(aio_loop)
    if selector is not None:
        for name, cls in _selector_classes().items():
            if type(selector) is cls:
                return name
    return "default"
