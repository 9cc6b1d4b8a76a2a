"""``@gen.coroutine`` yielding Twisted Deferreds on the hub, and the guard against
``tornado.platform.twisted`` taking the Deferred registration back."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from _tornado_helpers import LOOPS, run_tornado
from tornado import gen

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        importlib.util.find_spec("bridges.twisted") is None
        or importlib.util.find_spec("twisted") is None,
        reason="the Twisted adapter (bridges.twisted) or Twisted is not installed",
    ),
]

BOTH = ["tornado", "twisted"]


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_gen_coroutine_yields_a_pending_deferred_and_gets_the_same_result_object(
    loop_factory: str,
) -> None:
    payload = object()

    @gen.coroutine
    def legacy() -> Any:
        from twisted.internet import reactor, task

        value = yield task.deferLater(reactor, 0.01, lambda: payload)
        return value

    assert run_tornado(legacy, frameworks=BOTH, loop_factory=loop_factory) is payload


def test_a_gen_coroutine_sees_a_deferreds_failure_as_the_same_exception_object() -> None:
    boom = KeyError("from twisted")

    @gen.coroutine
    def legacy() -> Any:
        from twisted.internet import defer

        try:
            yield defer.fail(boom)
        except KeyError as exc:
            return exc
        return None

    assert run_tornado(legacy, frameworks=BOTH) is boom


def test_a_deferred_cancelled_by_twisted_code_resolves_the_gen_coroutine_as_cancelled() -> None:
    async def main() -> bool:
        from twisted.internet import defer

        d: defer.Deferred[str] = defer.Deferred()

        @gen.coroutine
        def legacy() -> Any:
            yield d

        outer = legacy()
        await asyncio.sleep(0)
        d.cancel()
        await asyncio.wait({outer}, timeout=5)
        return outer.cancelled()

    assert run_tornado(main, frameworks=BOTH) is True


def test_guard_tornado_platform_twisted_re_registering_deferred_does_not_bypass_the_hub() -> None:
    # tornado.platform.twisted registers its own Deferred converter, which ignores
    # cancellation; the last singledispatch registration wins.  Put it back on top
    # as a fresh import would, then check the hub's converter is the one used.
    import tornado.platform.twisted as tornado_twisted
    from twisted.internet import defer

    gen.convert_yielded.register(defer.Deferred, tornado_twisted._)

    async def main() -> tuple[bool, bool]:
        cancelled: list[bool] = []
        d: defer.Deferred[str] = defer.Deferred(lambda _: cancelled.append(True))
        converted = gen.convert_yielded(d)
        converted.cancel()
        await asyncio.sleep(0)
        return bool(cancelled), converted.cancelled()

    assert run_tornado(main, frameworks=BOTH) == (True, True)


def test_guard_a_first_import_of_tornado_platform_twisted_mid_run_cannot_override_the_hub() -> None:
    # A fresh interpreter: the application imports tornado.platform.twisted lazily,
    # inside the hub, for the first time.  Its registration must not win.
    code = textwrap.dedent(
        """
        import asyncio, bridges
        from tornado import gen

        async def main():
            import tornado.platform.twisted  # first import, after attach
            from twisted.internet import defer
            cancelled = []
            d = defer.Deferred(lambda _: cancelled.append(True))
            gen.convert_yielded(d).cancel()
            await asyncio.sleep(0)
            return cancelled

        print(bridges.run(main, frameworks=["tornado", "twisted"]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[True]", result.stderr
