"""Which frameworks the hub knows, in which order they attach, and how to load them.

Each adapter is a module of this package (``bridges/<name>.py``) with the same
shape:

``attach(hub)``
    Bind the framework to ``hub.loop``.  Called from inside the running loop,
    in :data:`ADAPTERS` order.  May return an awaitable, which the hub awaits.
``detach(hub)``
    Undo ``attach``: finish the framework's shutdown work and release what it
    holds.  Called in reverse order during the stop sequence.  May return an
    awaitable, which the hub awaits with a bounded wait.

plus a converter from the native primitive, registered with
:func:`bridges.register`, and a function from any awaitable back to that
primitive.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Iterable, Union

from ._errors import FrameworkNotInstalledError, UnknownFrameworkError, UsageError

__all__ = ["ADAPTERS", "AdapterSpec", "FrameworksArg", "installed", "load", "resolve"]

FrameworksArg = Union[str, Iterable[str], None]


@dataclass(frozen=True)
class AdapterSpec:
    name: str
    """The name users pass in ``frameworks=``; also the extra to install."""
    requires: str
    """The top-level module the framework's package provides."""
    runs_shutdown_work: bool = False
    """True when the framework runs user code while it stops (Twisted's shutdown
    triggers).  Such adapters detach *before* the hub cancels the tasks that
    legacy code spawned, because that user code may still need them."""

    @property
    def module(self) -> str:
        return f"bridges.{self.name}"

    @property
    def extra(self) -> str:
        return f"tulip-bridges[{self.name}]"


# Attach order.  asyncore and gevent come first because they own the lowest
# level (raw fds, the greenlet hub); Twisted comes last because its startup
# triggers may already use the others.  Stop runs in reverse.
ADAPTERS: tuple[AdapterSpec, ...] = (
    # asyncore left the stdlib in 3.12; pyasyncore provides the same module name.
    AdapterSpec("asyncore", "asyncore"),
    AdapterSpec("gevent", "gevent"),
    AdapterSpec("eventlet", "eventlet"),
    AdapterSpec("tornado", "tornado"),
    AdapterSpec("twisted", "twisted", runs_shutdown_work=True),
)
_BY_NAME = {spec.name: spec for spec in ADAPTERS}


def installed(spec: AdapterSpec) -> bool:
    """Whether the framework's package can be imported (without importing it)."""
    if spec.requires in sys.modules:
        return sys.modules[spec.requires] is not None  # None: the import is blocked
    try:
        return importlib.util.find_spec(spec.requires) is not None
    except (ImportError, ValueError):
        return False


def resolve(frameworks: FrameworksArg) -> list[AdapterSpec]:
    """Turn the user's ``frameworks=`` argument into specs, in attach order.

    ``"auto"`` means every installed framework; ``None`` or ``()`` means none
    (plain asyncio).  Naming one that is not installed is an error rather than
    a silent skip: the user asked for it and would otherwise find out much
    later, from a confusing failure.
    """
    if frameworks is None:
        return []
    if frameworks == "auto":
        return [spec for spec in ADAPTERS if installed(spec)]
    names = [frameworks] if isinstance(frameworks, str) else list(frameworks)
    for name in names:
        if name not in _BY_NAME:
            known = ", ".join(repr(spec.name) for spec in ADAPTERS)
            raise UnknownFrameworkError(
                f"bridges has no adapter for the framework {name!r}. "
                f'Use "auto" or names from: {known}.'
            )
    missing = [_BY_NAME[name] for name in names if not installed(_BY_NAME[name])]
    if missing:
        spec = missing[0]
        raise FrameworkNotInstalledError(
            f"the framework {spec.name!r} was requested, but its package "
            f"({spec.requires!r}) is not installed. Install it with: "
            f"pip install '{spec.extra}'"
        )
    wanted = set(names)
    return [spec for spec in ADAPTERS if spec.name in wanted]


def load(spec: AdapterSpec) -> ModuleType:
    """Import the adapter module for ``spec`` and check it has the adapter shape."""
    module = importlib.import_module(spec.module)
    for hook in ("attach", "detach"):
        if not callable(getattr(module, hook, None)):
            raise UsageError(
                f"{spec.module} is not a bridges adapter: it has no {hook}(hub). "
                "An adapter module defines attach(hub) and detach(hub)."
            )
    return module
