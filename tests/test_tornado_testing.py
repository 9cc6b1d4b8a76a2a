"""tornado.testing on the hub: AsyncTestCase / AsyncHTTPTestCase and @gen_test on a hub."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import socket
import unittest
from typing import Any

import pytest
import tornado.web
import tornado.websocket
from _tornado_helpers import EchoWebSocket
from tornado import gen
from tornado.ioloop import IOLoop
from tornado.testing import gen_test

import bridges
from bridges import tornado as btn

pytestmark = pytest.mark.timeout(60)


class Hello(tornado.web.RequestHandler):
    async def get(self) -> None:
        await asyncio.sleep(0)
        self.write("hello from the hub")


def hub_test_cases() -> list[type[unittest.TestCase]]:
    """The cases, made in a function so pytest runs them through unittest below.

    (Tornado before 6.4 cannot be collected by pytest >= 8 as unittest classes:
    its AsyncTestCase rejects the ``runTest`` method name pytest instantiates
    them with.  Running them through ``unittest`` works on every version.)
    """

    class TestGenTestOnTheHub(btn.HubAsyncTestCase):
        @gen_test
        async def test_a_gen_test_coroutine_runs_on_the_hubs_ioloop(self) -> None:
            assert IOLoop.current() is btn.ioloop()
            assert btn.ioloop() is self.io_loop
            assert bridges.current_hub() is self.hub

        @gen_test
        def test_a_gen_test_generator_yields_what_the_hub_knows(self) -> Any:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                value = yield pool.submit(lambda: "threaded")
            assert value == "threaded"

        def test_each_test_runs_on_a_running_hub_with_tornado_attached(self) -> None:
            assert self.hub.running
            assert "tornado" in self.hub.frameworks

    class TestHTTPOnTheHub(btn.HubAsyncHTTPTestCase):
        def get_app(self) -> tornado.web.Application:
            return tornado.web.Application([("/", Hello), ("/ws", EchoWebSocket)])

        def test_fetch_reaches_the_handler_served_on_the_hub(self) -> None:
            response = self.fetch("/")
            assert response.body == b"hello from the hub"

        @gen_test
        async def test_a_websocket_client_talks_to_the_app_on_the_hub(self) -> None:
            connection = await tornado.websocket.websocket_connect(
                self.get_url("/ws").replace("http", "ws", 1)
            )
            await connection.write_message("hi")
            assert await connection.read_message() == "echo:hi"
            connection.close()

    @unittest.skipIf(
        importlib.util.find_spec("bridges.twisted") is None, "the Twisted adapter is not there yet"
    )
    class TestWithTwistedAttached(btn.HubAsyncTestCase):
        bridges_frameworks = ("tornado", "twisted")

        @gen_test
        def test_a_gen_test_yields_a_deferred(self) -> Any:
            from twisted.internet import reactor, task

            value = yield task.deferLater(reactor, 0.01, lambda: "deferred")
            assert value == "deferred"

    return [TestGenTestOnTheHub, TestHTTPOnTheHub, TestWithTwistedAttached]


def _case_methods() -> list[Any]:
    return [
        pytest.param(case, name, id=f"{case.__name__}.{name}")
        for case in hub_test_cases()
        for name in unittest.TestLoader().getTestCaseNames(case)
    ]


@pytest.mark.parametrize(("case", "method"), _case_methods())
def test_a_hub_test_case_method_passes(case: type[unittest.TestCase], method: str) -> None:
    result = unittest.TestResult()
    case(method).run(result)
    problems = [text for _, text in result.errors + result.failures]
    assert not problems, problems[0]
    assert result.testsRun == 1


def test_a_failing_assertion_in_a_hub_test_case_fails_the_test() -> None:
    class Failing(btn.HubAsyncTestCase):
        @gen_test
        async def test_fails(self) -> None:
            await gen.sleep(0)
            self.fail("meant to fail")

    result = unittest.TestResult()
    Failing("test_fails").run(result)
    assert len(result.failures) == 1
    assert "meant to fail" in result.failures[0][1]


def test_a_hub_that_cannot_start_fails_the_test_and_still_closes_tornados_loop() -> None:
    class Misconfigured(btn.HubAsyncTestCase):
        bridges_frameworks = ("no-such-framework",)

        def test_never_runs(self) -> None:
            raise AssertionError("the test ran without a hub")

    case = Misconfigured("test_never_runs")
    result = unittest.TestResult()
    case.run(result)
    assert len(result.errors) == 1
    assert "UnknownFrameworkError" in result.errors[0][1]
    assert case.io_loop.asyncio_loop.is_closed()


def test_a_handler_whose_socket_the_test_closed_leaves_no_error_at_teardown() -> None:
    reported: list[dict[str, Any]] = []

    class ClosesItsSocket(btn.HubAsyncTestCase):
        def test_closes_a_socket_it_watches(self) -> None:
            self.io_loop.asyncio_loop.set_exception_handler(lambda _, ctx: reported.append(ctx))
            left, right = socket.socketpair()
            right.close()
            self.io_loop.add_handler(left.fileno(), lambda fd, events: None, IOLoop.READ)
            left.close()  # without remove_handler: Tornado's tearDown copes, so must the hub

    result = unittest.TestResult()
    ClosesItsSocket("test_closes_a_socket_it_watches").run(result)
    assert not result.errors + result.failures, (result.errors + result.failures)[0][1]
    assert [ctx["message"] for ctx in reported] == []


def test_a_test_that_closed_its_own_loop_fails_at_teardown_as_natively_not_on_the_hub() -> None:
    hubs: list[bridges.Hub] = []

    class ClosesItsLoop(btn.HubAsyncTestCase):
        def test_closes_its_loop(self) -> None:
            hubs.append(self.hub)
            self.io_loop.close(all_fds=True)

    case = ClosesItsLoop("test_closes_its_loop")
    result = unittest.TestResult()
    case.run(result)
    # Tornado's own tearDown refuses to close the IOLoop twice (KeyError), as it
    # does without a hub; the hub adds no error of its own and leaves no trace.
    assert [text.splitlines()[-1] for _, text in result.errors] == [
        f"KeyError: {case.io_loop.asyncio_loop!r}"
    ]
    assert not hubs[0].running
