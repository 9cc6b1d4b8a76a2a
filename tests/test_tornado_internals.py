"""The private details of Tornado that bridges.tornado relies on, one test each.

Checked on Tornado 6.2, 6.3.3, 6.4.2, 6.5.2 and 6.6.1.  When one of these
fails after a Tornado upgrade, the isolated function named in the test's
docstring needs updating (see the "Tornado internals, isolated" section of
bridges/tornado.py).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket

import pytest
from tornado import gen
from tornado.ioloop import IOLoop
from tornado.platform.asyncio import AsyncIOLoop, BaseAsyncIOLoop

from bridges import tornado as btn

pytestmark = pytest.mark.timeout(30)


def test_tornado_keeps_its_asyncio_loop_to_ioloop_map_in_ioloop_ioloop_for_asyncio() -> None:
    """_bound_ioloop and _unbind_ioloop read and edit this map."""

    async def main() -> bool:
        ioloop = IOLoop.current()
        return IOLoop._ioloop_for_asyncio[asyncio.get_running_loop()] is ioloop

    assert isinstance(IOLoop._ioloop_for_asyncio, dict)
    assert asyncio.run(main()) is True


def test_asyncio_ioloops_register_fds_through_their_selector_loop_attribute() -> None:
    """_swap_selector replaces selector_loop; _release_handlers walks handlers."""
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
        original = ioloop.selector_loop
        ioloop.selector_loop = Spy()
        left, right = socket.socketpair()
        fd = left.fileno()
        try:
            ioloop.add_handler(fd, lambda *_: None, IOLoop.READ)
            assert ioloop.handlers[fd][0] == fd
            ioloop.remove_handler(fd)
        finally:
            ioloop.selector_loop = original
            del IOLoop._ioloop_for_asyncio[asyncio.get_running_loop()]
            left.close()
            right.close()
        assert seen == [("add_reader", fd), ("remove_reader", fd)]

    asyncio.run(main())


def test_gen_runner_has_the_state_the_cancellation_fixes_drive() -> None:
    """_runner_init_propagating_cancel and _run_resolving_cancellation use these
    Runner attributes, its constructor's arguments and gen._null_future."""
    tornados_init = btn._tornados_runner_init
    assert list(inspect.signature(tornados_init).parameters) == [
        "self",
        "ctx_run",
        "gen",
        "result_future",
        "first_yielded",
    ]
    assigned = tornados_init.__code__.co_names
    for name in ("gen", "result_future", "future", "running", "finished", "handle_yield"):
        assert name in assigned, name
    assert gen.Runner.__init__ is btn._runner_init_propagating_cancel
    assert gen._null_future.done()
    assert gen.Return("value").value == "value"


def test_convert_yielded_is_a_singledispatch_function_whose_default_the_hub_took_over() -> None:
    """_claim_convert_yielded registers over every entry of this registry."""
    assert callable(gen.convert_yielded.register)
    assert gen.convert_yielded.registry[object] is btn._convert_yielded
    assert btn._displaced.registry[object].__module__ == "tornado.gen"


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
