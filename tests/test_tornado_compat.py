"""The private details of Tornado that bridges.tornado relies on, one behaviour test each.

Checked on Tornado 6.2, 6.3.3, 6.4.2, 6.5.2 and 6.6.1.  When one of these
fails after a Tornado upgrade, the function of bridges/tornado/_compat.py
named in the test's docstring needs updating.  The last tests show that the
patches live exactly as long as the hubs: Tornado after a hub behaves as it
did before.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import socket
import weakref
from typing import Any

import pytest
from tornado import gen
from tornado.ioloop import IOLoop
from tornado.platform.asyncio import AsyncIOLoop, BaseAsyncIOLoop

import bridges
from bridges import tornado as btn
from bridges.tornado import _compat

pytestmark = pytest.mark.timeout(30)


def test_tornado_keeps_its_asyncio_loop_to_ioloop_map_in_ioloop_ioloop_for_asyncio() -> None:
    """bound_ioloop and unbind_ioloop read and edit this map."""

    async def main() -> tuple[bool, bool, bool]:
        loop = asyncio.get_running_loop()
        assert _compat.bound_ioloop(loop) is None
        ioloop = IOLoop.current()
        bound = _compat.bound_ioloop(loop) is ioloop
        _compat.unbind_ioloop(ioloop)
        unbound = _compat.bound_ioloop(loop) is None
        fresh = IOLoop.current()
        _compat.unbind_ioloop(fresh)
        return bound, unbound, fresh is not ioloop

    assert asyncio.run(main()) == (True, True, True)


def test_asyncio_ioloops_register_fds_through_their_selector_loop_attribute() -> None:
    """swap_selector replaces selector_loop; release_handlers walks handlers."""
    seen: list[tuple[str, int]] = []

    class Spy:
        def add_reader(self, fd: int, *_args: object) -> None:
            seen.append(("add_reader", fd))

        def remove_reader(self, fd: int) -> bool:
            seen.append(("remove_reader", fd))
            return True

    async def main() -> None:
        ioloop = AsyncIOLoop(asyncio_loop=asyncio.get_running_loop(), make_current=False)
        assert isinstance(ioloop, BaseAsyncIOLoop)
        original = _compat.swap_selector(ioloop, Spy())
        left, right = socket.socketpair()
        fd = left.fileno()
        try:
            ioloop.add_handler(fd, lambda *_: None, IOLoop.READ)
            _compat.release_handlers(ioloop, all_fds=False)
            assert fd not in ioloop.handlers
        finally:
            _compat.swap_selector(ioloop, original)
            del IOLoop._ioloop_for_asyncio[asyncio.get_running_loop()]
            left.close()
            right.close()
        assert seen == [("add_reader", fd), ("remove_reader", fd)]

    asyncio.run(main())


def test_gen_runner_passes_every_yielded_object_through_handle_yield() -> None:
    """The cancellation hook sits in Runner.handle_yield(self, yielded), which Tornado
    calls for the first yield (from __init__) and every later one (from run)."""
    seen: list[Any] = []
    original = gen.Runner.handle_yield

    def spy(self: Any, yielded: Any) -> bool:
        seen.append(yielded)
        return original(self, yielded)

    @gen.coroutine
    def legacy() -> Any:
        yield gen.moment
        yield asyncio.sleep(0)
        return "done"

    async def main() -> Any:
        return await legacy()

    gen.Runner.handle_yield = spy  # type: ignore[method-assign]
    try:
        assert asyncio.run(main()) == "done"
    finally:
        gen.Runner.handle_yield = original  # type: ignore[method-assign]
    assert len(seen) == 2
    assert list(inspect.signature(original).parameters) == ["self", "yielded"]


def test_gen_runner_keeps_the_state_the_3537_fix_drives() -> None:
    """_run_resolving_cancellation (Tornado < 6.6) uses these Runner attributes."""
    names = gen.Runner.run.__code__.co_names
    for name in ("gen", "result_future", "future", "running", "finished", "handle_yield"):
        assert name in names, name
    assert gen._null_future.done()
    assert gen.Return("value").value == "value"


def test_convert_yielded_is_a_singledispatch_function_with_tornados_default_for_object() -> None:
    """_claim_convert_yielded takes over each registration of this registry."""
    assert callable(gen.convert_yielded.register)
    assert gen.convert_yielded.registry[object].__module__ == "tornado.gen"


def test_tornado_logs_callback_errors_with_the_message_templates_the_hub_listens_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """_ReportToHub matches records by their unformatted message."""

    async def main() -> None:
        IOLoop.current().add_callback(lambda: 1 / 0)
        await asyncio.sleep(0.01)

    with caplog.at_level(logging.ERROR, logger="tornado.application"):
        asyncio.run(main())
    templates = [r.msg for r in caplog.records if r.name == "tornado.application"]
    assert templates == ["Exception in callback %r"]
    assert set(templates) <= btn._UNHANDLED_MESSAGES


# -- no patch outlives the hubs ---------------------------------------------------


def _runner_methods() -> tuple[Any, Any]:
    return gen.Runner.handle_yield, gen.Runner.run


def test_importing_bridges_tornado_patches_nothing_in_tornado() -> None:
    assert not _compat.patched()
    assert _runner_methods() == (_compat._tornados_handle_yield, _compat._tornados_run)
    assert gen.Runner.__init__.__module__ == "tornado.gen"
    registry = gen.convert_yielded.registry
    assert all(impl is not _compat.convert_yielded for impl in registry.values())


def test_the_patches_are_applied_while_a_hub_runs_and_removed_when_it_stops() -> None:
    import tornado.platform.twisted  # noqa: F401 - its Deferred registration is Tornado's own

    registry_before = dict(gen.convert_yielded.registry)
    methods_before = _runner_methods()

    async def main() -> tuple[bool, bool]:
        return _compat.patched(), gen.convert_yielded.registry[object] is _compat.convert_yielded

    assert bridges.run(main, frameworks=["tornado"]) == (True, True)
    assert dict(gen.convert_yielded.registry) == registry_before
    assert _runner_methods() == methods_before
    assert not _compat.patched()


def test_after_a_hub_gen_coroutine_yields_a_plain_future_as_before() -> None:
    @gen.coroutine
    def legacy() -> Any:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_result, "plain")
        value = yield future
        return value

    async def main() -> Any:
        return await legacy()

    before = asyncio.run(main())
    bridges.run(main, frameworks=["tornado"])
    assert asyncio.run(main()) == before == "plain"


def test_after_a_hub_yielding_an_unknown_object_is_tornados_bad_yield_again() -> None:
    @gen.coroutine
    def legacy() -> Any:
        yield object()

    async def main() -> None:
        await legacy()

    bridges.run(asyncio.sleep, 0, frameworks=["tornado"])
    with pytest.raises(gen.BadYieldError, match="yielded unknown object"):
        asyncio.run(main())


class _Local:
    """Something a coroutine keeps in a local variable."""


@pytest.mark.parametrize("on_hub", [False, True], ids=["plain asyncio", "on the hub"])
def test_a_raising_gen_coroutine_frees_its_locals_without_the_garbage_collector(
    on_hub: bool,
) -> None:
    # Tornado clears the Runner's references on purpose; a wrapper of
    # Runner.__init__ holding result_future in *args inside the traceback's
    # frames made a cycle that kept every local alive until gc (issue 17).
    refs: list[weakref.ref[_Local]] = []

    @gen.coroutine
    def legacy() -> Any:
        local = _Local()
        refs.append(weakref.ref(local))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        yield done  # resumed at once, inside Runner.__init__
        raise ValueError("expected")

    async def main() -> None:
        with pytest.raises(ValueError, match="expected"):
            await legacy()

    gc.collect()
    gc.disable()
    try:
        if on_hub:
            bridges.run(main, frameworks=["tornado"])
        else:
            asyncio.run(main())
        assert refs[0]() is None
    finally:
        gc.enable()
