"""``bridges.awaitable()``: one door through which every framework's primitive becomes awaitable.

The registry is a :func:`functools.singledispatch` function, so registration
follows the type's MRO and abstract base classes the way Python users expect.
Adapters register their native primitives when they are imported; users
register their own types with :func:`register`.

What needs no framework lives here too: ``concurrent.futures.Future`` and the
Tulip-era ``yield from`` generator coroutines that predate ``async def``.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import functools
import importlib
import inspect
import sys
import types
from typing import Any, Awaitable, Callable, Generator, TypeVar

from ._errors import NotAwaitableError

__all__ = ["awaitable", "has_converter", "register", "to_future"]

T = TypeVar("T")
Converter = Callable[[Any], Awaitable[Any]]


@functools.singledispatch
def _convert(obj: Any) -> Awaitable[Any]:
    if inspect.isawaitable(obj):
        return obj
    if inspect.isgenerator(obj):
        return _drive_generator(obj)
    raise NotAwaitableError(_not_awaitable_message(obj))


def _not_awaitable_message(obj: object) -> str:
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if inspect.iscoroutinefunction(obj) or inspect.isgeneratorfunction(obj):
        return (
            f"bridges.awaitable() was given the function {obj!r}, not the coroutine it "
            f"makes: call it first, e.g. bridges.awaitable(f(...))."
        )
    return (
        f"bridges.awaitable() does not know how to await a {name} object. "
        "If it belongs to a framework, attach that framework "
        "(bridges.run(..., frameworks=[...]) or bridges.Hub(frameworks=[...])); "
        f"for a type of your own, teach the hub with bridges.register({kind.__name__}, "
        "converter), where converter(obj) returns an awaitable."
    )


def register(type_: type, converter: Converter) -> None:
    """Teach :func:`awaitable` to convert instances of ``type_`` (and its subclasses).

    ``converter(obj)`` must return an awaitable (an ``asyncio.Future``, a
    coroutine, ...).  A later registration for the same type replaces the
    earlier one.
    """
    if not isinstance(type_, type):
        raise NotAwaitableError(
            f"bridges.register() takes a class as its first argument, not {type_!r}."
        )
    if not callable(converter):
        raise NotAwaitableError(
            f"bridges.register({type_.__qualname__}, ...) needs a callable converter, "
            f"not {converter!r}."
        )
    _convert.register(type_, converter)
    _by_class.clear()


def has_converter(cls: type) -> bool:
    """Whether a converter is registered for ``cls`` (or a base of it).

    Other frameworks' dispatch hooks (Tornado's ``convert_yielded``) ask this to
    decide between the hub's converters and their own rules.
    """
    return _dispatch(cls) is not _convert.registry[object]


def awaitable(obj: Any) -> Awaitable[Any]:
    """Return something that can be awaited for ``obj``'s outcome.

    Accepts any awaitable, a ``concurrent.futures.Future``, a Tulip-era
    generator coroutine, and every type an attached framework (or the user,
    through :func:`register`) registered.  Results and exceptions pass through
    unchanged; cancelling the awaiting task cancels ``obj`` natively.
    """
    converter = _by_class.get(obj.__class__)
    if converter is None or _by_class_token != abc.get_cache_token():
        converter = _converter_for(obj.__class__)
    return converter(obj)


# awaitable() runs on every bridged await: one dict lookup instead of
# singledispatch's three Python calls (its wrapper, dispatch() and the weak
# cache).  Emptied by register() and, as singledispatch's own cache is,
# when an ABC registration changes; bounded, since it holds its classes.
_by_class: dict[type, Converter] = {}
_by_class_token = abc.get_cache_token()
_BY_CLASS_LIMIT = 256


def _converter_for(cls: type) -> Converter:
    global _by_class_token
    token = abc.get_cache_token()
    if _by_class_token != token or len(_by_class) >= _BY_CLASS_LIMIT:
        _by_class.clear()
        _by_class_token = token
    converter = _dispatch(cls)
    _by_class[cls] = converter
    return converter


# A Deferred must be awaitable whether or not bridges.twisted was imported:
# `bridges.run(main, frameworks=None)` never imports it, and a pending
# Deferred awaited through its own __await__ fails deep in asyncio ("Task got
# bad yield").  A Deferred needs no attached framework to fire (anything may
# call it back), so its converter works on any hub.  The class is named here
# (top-level package, qualified name), never imported: if an object of it
# exists, Twisted is already imported, and importing the adapter module then
# registers the real converter (importing it changes no framework).
# Greenlets and dispatchers are not listed: they run only when their
# framework is attached, and NotAwaitableError says so.
_ADAPTER_OF: dict[tuple[str, str], str] = {
    ("twisted", "Deferred"): "bridges.twisted",
}


def _dispatch(cls: type) -> Converter:
    converter: Converter = _convert.dispatch(cls)
    if converter is _convert.registry[object] and _import_adapter_for(cls):
        converter = _convert.dispatch(cls)
    return converter


def _import_adapter_for(cls: type) -> bool:
    """Import the adapter that registers ``cls``'s converter; True if one was imported."""
    for base in cls.__mro__:
        package = base.__module__.partition(".")[0]
        adapter = _ADAPTER_OF.get((package, base.__qualname__))
        if adapter is not None and adapter not in sys.modules:
            importlib.import_module(adapter)
            return True
    return False


def to_future(obj: Any) -> asyncio.Future[Any]:
    """Like :func:`awaitable`, but always an ``asyncio.Future`` of the running loop.

    Adapters use this where the other framework needs a future object (a
    Tornado future, a callback target) rather than something to ``await``.
    Coroutines become tasks of the current hub, so the hub cancels them when it
    stops.
    """
    # awaitable()'s look-up, inline (one Python call fewer): Tornado's
    # gen.coroutine comes here on every yield of a bridged primitive.
    converter = _by_class.get(obj.__class__)
    if converter is None or _by_class_token != abc.get_cache_token():
        converter = _converter_for(obj.__class__)
    converted = converter(obj)
    if isinstance(converted, asyncio.Future):
        return converted
    from ._hub import current_hub

    return current_hub().spawn(converted)


def _from_concurrent(fut: concurrent.futures.Future[Any]) -> asyncio.Future[Any]:
    # wrap_future already carries cancellation both ways: cancelling the asyncio
    # future cancels the concurrent one (if it has not started running), and a
    # concurrent future cancelled by its owner cancels the asyncio one.
    return asyncio.wrap_future(fut)


register(concurrent.futures.Future, _from_concurrent)


@types.coroutine
def _drive_generator(gen: Generator[Any, Any, T]) -> Generator[Any, Any, T]:
    """Run a Tulip-era ``yield from`` coroutine as a native one.

    Such a generator yields the futures it waits on (``yield from fut`` yields
    ``fut`` itself) and, on Python 3.11+, cannot be awaited any more because
    ``@asyncio.coroutine`` is gone.  This driver is itself a generator-based
    coroutine, so the task waits on the legacy futures directly, as it did in
    Python 3.4, with cancellation thrown back in where the generator waits.
    Anything else it yields (a Deferred, a concurrent future, ...) goes through
    :func:`awaitable` and its outcome is sent (or thrown) back in.  A bare
    ``yield`` is one loop pass.
    """
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        try:
            if to_throw is not None:
                exc, to_throw = to_throw, None
                yielded = gen.throw(exc)
            else:
                yielded = gen.send(to_send)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        to_send = None
        try:
            if yielded is None:
                yield None
            elif asyncio.isfuture(yielded):
                # `yield from fut` flagged it (the generator then reads the result
                # itself); a bare `yield fut` did not, and expects the result sent in.
                reads_result_itself = yielded._asyncio_future_blocking
                yielded._asyncio_future_blocking = True
                yield yielded
                if not reads_result_itself:
                    to_send = yielded.result()
            else:
                future = to_future(yielded)
                future._asyncio_future_blocking = True
                yield future
                to_send = future.result()
        except BaseException as exc:  # noqa: BLE001 - every outcome, cancellation included, goes back into the generator
            to_throw = exc
