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
import contextlib
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


def _from_concurrent(source: concurrent.futures.Future[Any]) -> asyncio.Future[Any]:
    """An asyncio future of the running loop that ``source``'s outcome resolves.

    What ``asyncio.wrap_future`` does for a concurrent future, with the same
    rules: the outcome crosses to the loop through ``call_soon_threadsafe``;
    cancelling the asyncio future cancels ``source`` (if it has not started
    running); ``source`` cancelled by its owner cancels the asyncio future.
    ``wrap_future`` builds three closures and makes two more future checks
    per call, and its done-callback runs more Python in the resolving thread,
    which holds the GIL while the woken loop waits for it
    (benchmarks/bench_core.py measures the difference).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.wrap_future(source)
    waiter = loop.create_future()
    waiter.add_done_callback(functools.partial(_cancel_source, source))
    source.add_done_callback(functools.partial(_deliver, loop, waiter))
    return waiter


def _cancel_source(source: concurrent.futures.Future[Any], waiter: asyncio.Future[Any]) -> None:
    if waiter.cancelled():
        source.cancel()


def _deliver(
    loop: asyncio.AbstractEventLoop,
    waiter: asyncio.Future[Any],
    source: concurrent.futures.Future[Any],
) -> None:
    """In the thread that resolved ``source``: hand its outcome to the loop."""
    # RuntimeError: the loop is closed, no one awaits ``waiter`` any more
    # (wrap_future drops the outcome the same way).
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_copy_outcome, source, waiter)


_ASYNCIO_EQUIVALENT: dict[type, type] = {
    concurrent.futures.CancelledError: asyncio.CancelledError,
    concurrent.futures.InvalidStateError: asyncio.InvalidStateError,
    concurrent.futures.TimeoutError: asyncio.TimeoutError,
}
"""concurrent.futures' exceptions set on a future become asyncio's, as wrap_future does."""


def _copy_outcome(source: concurrent.futures.Future[Any], waiter: asyncio.Future[Any]) -> None:
    if waiter.done():
        return
    if source.cancelled():
        waiter.cancel()
        return
    error = source.exception()
    if error is None:
        waiter.set_result(source.result())
        return
    equivalent = _ASYNCIO_EQUIVALENT.get(type(error))
    if equivalent is not None and equivalent is not type(error):
        error = equivalent(*error.args)
    elif isinstance(error, StopIteration):
        # An asyncio future refuses StopIteration: before Python 3.13 the
        # refusal escaped into the loop's exception handler and the await
        # never ended.  Python 3.13's own wording and chaining, on every version.
        refused = error
        error = RuntimeError(
            "StopIteration interacts badly with generators and cannot be raised into a Future"
        )
        error.__cause__ = error.__context__ = refused
    waiter.set_exception(error)


register(concurrent.futures.Future, _from_concurrent)


def _from_generator(gen: Generator[Any, Any, T]) -> Awaitable[T]:
    # A generator of a @types.coroutine function is awaitable as it is; any
    # other is a Tulip-era coroutine.  Registered for the generator type so
    # that the await pays for neither inspect.isawaitable()'s ABC check nor
    # a second dispatch.
    if gen.gi_code.co_flags & inspect.CO_ITERABLE_COROUTINE:
        return gen  # type: ignore[return-value]
    return _drive_generator(gen)


register(types.GeneratorType, _from_generator)


_FUTURE_CLASSES = frozenset({asyncio.Future, asyncio.Task})
"""asyncio's futures and tasks: known without ``asyncio.isfuture()``'s call (most yields)."""


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
            elif yielded.__class__ in _FUTURE_CLASSES or asyncio.isfuture(yielded):
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
