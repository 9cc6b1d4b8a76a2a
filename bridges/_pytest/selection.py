"""Which tests run on the hub, and with which options (from the marker and the ini file).

Besides ``async def``, each adapter whose framework is imported recognises
its own flavors of test functions (``Adapter.test_flavor``) and the unittest
classes it runs (``Adapter.owns_test_case``): no framework is named here.
"""

from __future__ import annotations

import inspect
import unittest
from typing import Any, Optional

import pytest

from .. import _adapter
from .._adapter import FrameworksArg
from .._errors import UsageError
from .._observe import positive_seconds

__all__ = ["async_flavor", "imported_frameworks"]

_MARKER_KEYS = ("frameworks", "loop_factory", "timeout", "slow_callback")
_OTHER_ASYNC_MARKERS = ("asyncio", "anyio", "trio")


class _Options:
    __slots__ = ("frameworks", "loop_factory", "timeout")

    def __init__(self, frameworks: FrameworksArg, loop_factory: Any, timeout: Optional[float]):
        self.frameworks = frameworks
        self.loop_factory = loop_factory
        self.timeout = timeout


def _mode(config: pytest.Config) -> str:
    return str(config.getoption("bridges_mode") or config.getini("bridges_mode")).strip()


def _timeout_value(value: Any, where: str) -> Optional[float]:
    try:
        return positive_seconds(value, where)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def imported_frameworks() -> tuple[str, ...]:
    """What ``frameworks = "auto"`` attaches to a test's hub: the installed frameworks imported.

    Attaching a framework to each test's hub costs more than the hub itself
    (Twisted's reactor, gevent's hub and its heap scan at detach), so a test
    suite pays only for the frameworks it uses: those that the test modules,
    conftests and plugins imported by the end of collection.  A framework no
    module imported cannot be what a test's code runs on.
    """
    return tuple(cls.name for cls in sorted(_adapter.loaded(), key=lambda cls: cls.order))


def _frameworks_value(value: str) -> FrameworksArg:
    words = value.replace(",", " ").split()
    if words in (["auto"], []):
        return "auto"
    if words == ["none"]:
        return None
    return words


# -- which tests run on the hub ---------------------------------------------


def async_flavor(func: Any) -> Optional[str]:
    """The async flavor of a test or fixture function, or None for a plain function.

    Besides ``async def``, each adapter whose framework is imported names its
    own flavors (Twisted's ``inlineCallbacks``, Tornado's ``gen.coroutine``).
    """
    func = getattr(func, "__func__", func)
    if inspect.iscoroutinefunction(func):
        return "async def"
    if inspect.isasyncgenfunction(func):
        return "async generator"
    for cls in _adapter.loaded():
        flavor = cls.test_flavor(func)
        if flavor is not None:
            return flavor
    return None


def _test_case_owner(cls: Any) -> Optional[type[_adapter.Adapter]]:
    """The adapter that runs the unittest class ``cls`` on the hub (trial's), if any."""
    if not isinstance(cls, type):
        return None
    for adapter in _adapter.loaded():
        if adapter.owns_test_case(cls):
            return adapter
    return None


def _options_for(item: pytest.Item, config: pytest.Config) -> Optional[_Options]:
    if not isinstance(item, pytest.Function):
        return None
    if _is_other_unittest_case(item.cls):
        return None
    marker = item.get_closest_marker("bridges")
    if marker is None:
        if _mode(config) != "auto":
            return None
        if async_flavor(item.obj) is None and _test_case_owner(item.cls) is None:
            return None
        if any(item.get_closest_marker(name) for name in _OTHER_ASYNC_MARKERS):
            return None
        if "anyio_backend" in item.fixturenames:
            return None
        return _Options(
            _frameworks_value(config.getini("bridges_frameworks")),
            _default_loop_factory(config),
            _timeout_value(config.getini("bridges_timeout"), "bridges_timeout"),
        )
    return _marker_options(marker, item, config)


def _is_other_unittest_case(cls: Any) -> bool:
    # unittest cases that no adapter owns run their own loop (IsolatedAsyncioTestCase,
    # tornado's AsyncTestCase and bridges.tornado.HubAsyncTestCase): not ours.
    return (
        isinstance(cls, type)
        and issubclass(cls, unittest.TestCase)
        and _test_case_owner(cls) is None
    )


def _default_loop_factory(config: pytest.Config) -> Optional[str]:
    value = str(config.getini("bridges_loop_factory")).strip()
    return None if value in ("", "asyncio") else value


def _marker_options(marker: pytest.Mark, item: pytest.Item, config: pytest.Config) -> _Options:
    unknown = sorted(set(marker.kwargs) - set(_MARKER_KEYS))
    if unknown or len(marker.args) > 1:
        raise pytest.UsageError(
            f"bridges: {item.nodeid}: @pytest.mark.bridges takes frameworks=, loop_factory=, "
            f"timeout= and slow_callback=, not "
            f"{', '.join(unknown) or 'more than one positional argument'}."
        )
    frameworks: FrameworksArg
    if marker.args:
        frameworks = marker.args[0]
    elif "frameworks" in marker.kwargs:
        frameworks = marker.kwargs["frameworks"]
    else:
        frameworks = _frameworks_value(config.getini("bridges_frameworks"))
    timeout = (
        _timeout_value(marker.kwargs["timeout"], f"{item.nodeid}: bridges(timeout=...)")
        if "timeout" in marker.kwargs
        else _timeout_value(config.getini("bridges_timeout"), "bridges_timeout")
    )
    loop_factory = marker.kwargs.get("loop_factory", _default_loop_factory(config))
    return _Options(frameworks, loop_factory, timeout)
