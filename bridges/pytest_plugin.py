"""The pytest plugin: run tests of every async flavor on a bridges hub.

Each test that runs on the hub gets its own hub on its own event loop (the
``_bridges_runner`` fixture, set up before every other fixture of the test and
torn down after them).  Its async fixtures, the test itself and their
teardowns run on that loop, one after the other, under pytest's usual
ordering.  A new hub per test is what makes tests independent: the Twisted
reactor, the gevent hub and the IOLoop are process-wide or per-thread, and a
test that left them in a bad state must not break the next one.

What a test may be (``@pytest.mark.bridges`` or, in auto mode, by its type):

* ``async def``;
* a Twisted ``inlineCallbacks`` function, or any function returning a Deferred;
* a Tornado ``gen.coroutine``;
* a plain function: it runs inside a greenlet when gevent is attached (so it
  may block on gevent and call ``bg.wait``), else on the loop itself.

A test fails when an error nobody handled was reported while it ran, and when
it passes its ``timeout``; what it leaked is a warning (or, with
``bridges_leaks = fail``, an error at teardown).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable, Iterator, Optional

import pytest

from . import _adapter
from ._adapter import FrameworksArg, resolve
from ._errors import BridgeError, SlowCallbackError
from ._hub import DEFAULT_STOP_TIMEOUT, Hub
from ._pytest.competitors import advice
from ._pytest.runner import (
    GC_MODES,
    ReentrantRunError,
    TestRunner,
    TestTimeoutError,
    format_errors,
)
from ._pytest.selection import (
    _mode,
    _Options,
    _options_for,
    _test_case_owner,
    _timeout_value,
    async_flavor,
    imported_frameworks,
)

__all__ = ["LeakWarning", "SlowCallbackWarning", "ReentrantRunError", "TestTimeoutError", "hub"]

RUNNER = "_bridges_runner"
MODES = ("strict", "auto")
LEAK_MODES = ("warn", "fail")

_options_key = pytest.StashKey["_Options"]()
_failed_key = pytest.StashKey[bool]()
_competitors_key = pytest.StashKey["list[tuple[str, str]]"]()
_active: Optional[TestRunner] = None
"""The runner of the test being set up, run or torn down, if it runs on the hub."""


class LeakWarning(pytest.PytestWarning):
    """A test left tasks, fds, delayed calls, greenlets or dispatchers alive on its hub."""


class SlowCallbackWarning(pytest.PytestWarning):
    """A dispatch held a test's loop past ``slow_callback`` (``bridges_slow = fail``: a failure)."""


# -- configuration ---------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bridges", "tulip-bridges: tests on one hub for every framework")
    group.addoption(
        "--bridges-mode",
        dest="bridges_mode",
        default=None,
        choices=MODES,
        help="strict: only tests marked @pytest.mark.bridges run on the hub; auto: every "
        "async-flavored test does (overrides the bridges_mode ini option)",
    )
    parser.addini(
        "bridges_mode",
        "strict (default): only tests marked bridges run on the hub; auto: also every "
        "async def, inlineCallbacks or gen.coroutine test not claimed by another plugin",
        default="strict",
    )
    parser.addini(
        "bridges_frameworks",
        'frameworks attached for tests on the hub: "auto" (default: every installed framework '
        "imported by the end of collection), "
        '"none", or names separated by spaces or commas',
        default="auto",
    )
    parser.addini(
        "bridges_leaks",
        "warn (default): what a test leaked is a warning; fail: it is an error at teardown",
        default="warn",
    )
    parser.addini(
        "bridges_timeout",
        "default timeout in seconds of each test and async fixture on the hub (none: no limit)",
        default="none",
    )
    parser.addini(
        "bridges_stop_timeout",
        "seconds each stage of a test hub's stop sequence may take (default 5), and how long a "
        "test past its timeout gets to respond to cancellation",
        default=str(DEFAULT_STOP_TIMEOUT),
    )
    parser.addini(
        "bridges_loop_factory",
        'default event loop for tests on the hub: "asyncio" (default) or "uvloop"',
        default="asyncio",
    )
    parser.addini(
        "bridges_slow_callback",
        "blocking detector: report any dispatch that holds a test's loop longer than this many "
        "seconds, while it blocks (none: off, the default; $BRIDGES_SLOW_CALLBACK also sets it)",
        default="none",
    )
    parser.addini(
        "bridges_slow",
        "warn (default): a dispatch past bridges_slow_callback is a warning; fail: the test fails",
        default="warn",
    )
    parser.addini(
        "bridges_gc",
        "garbage collection when a test ends, to surface errors only reported when an "
        "object is collected: young (default), full, off",
        default="young",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "bridges(frameworks=..., loop_factory=None, timeout=None, slow_callback=None): run "
        "the test on a tulip-bridges hub with the given frameworks attached.",
    )
    _choice("bridges_mode", MODES, _mode(config))
    _choice("bridges_leaks", LEAK_MODES, config.getini("bridges_leaks"))
    _choice("bridges_slow", LEAK_MODES, config.getini("bridges_slow"))
    _timeout_value(config.getini("bridges_slow_callback"), "the ini option bridges_slow_callback")
    _choice("bridges_gc", tuple(GC_MODES), config.getini("bridges_gc"))
    _timeout_value(config.getini("bridges_timeout"), "the ini option bridges_timeout")
    _stop_timeout(config)
    for message in _competitor_messages(config):
        config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
    if _mode(config) == "auto" and _asyncio_mode(config) == "auto":
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "bridges: bridges_mode = auto and pytest-asyncio's asyncio_mode = auto are both "
                "on; pytest-asyncio claims every `async def` test first, so only tests marked "
                "@pytest.mark.bridges run on the hub. Set asyncio_mode = strict (and mark the "
                "asyncio tests), or disable pytest-asyncio with -p no:asyncio."
            ),
            stacklevel=2,
        )


def _asyncio_mode(config: pytest.Config) -> Optional[str]:
    if not config.pluginmanager.has_plugin("asyncio"):
        return None
    value = config.getoption("asyncio_mode", default=None) or config.getini("asyncio_mode")
    return str(value)


def _choice(name: str, choices: tuple[str, ...], value: str) -> None:
    if value not in choices:
        raise pytest.UsageError(
            f"bridges: {name} = {value!r} is not valid; use one of {', '.join(choices)}."
        )


def _stop_timeout(config: pytest.Config) -> float:
    value = _timeout_value(config.getini("bridges_stop_timeout"), "bridges_stop_timeout")
    return DEFAULT_STOP_TIMEOUT if value is None else value


def _competitors(config: pytest.Config) -> list[tuple[str, str]]:
    """``(takes, message)`` for each competing plugin active in this session (found once)."""
    cached = config.stash.get(_competitors_key, None)
    if cached is not None:
        return cached
    by_module = {plugin.module: plugin for plugin in _adapter.competing_plugins() if plugin.takes}
    found = []
    for name, plugin in config.pluginmanager.list_name_plugin():
        known = by_module.get(getattr(plugin, "__name__", None))  # type: ignore[arg-type]
        if known is not None:
            found.append(
                (
                    known.takes,
                    f"bridges: {known.project} is active in this session and would fight the "
                    f"bridges plugin: {advice(known, name)}.",
                )
            )
    config.stash[_competitors_key] = found
    return found


def _competitor_messages(config: pytest.Config) -> list[str]:
    return [message for _, message in _competitors(config)]


def _fought_over(item: pytest.Function, options: _Options) -> Optional[str]:
    """The competitor message that applies to this test, if a competing plugin would take it."""
    for takes, message in _competitors(item.config):
        if takes == "async" and async_flavor(item.obj) in ("async def", "gen.coroutine"):
            return message
        if takes != "async" and takes in _framework_names(options.frameworks):
            return message
    return None


def _framework_names(frameworks: FrameworksArg) -> list[str]:
    return [cls.name for cls in resolve(frameworks)]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Let an adapter prepare before pytest instantiates a test case class it runs on the hub.

    (Twisted installs the hub's reactor: trial's TestCase imports the reactor.)
    """
    owner = _test_case_owner(obj)
    if owner is None:
        return
    marked = any(mark.name == "bridges" for mark in getattr(obj, "pytestmark", ()))
    if marked or collector.get_closest_marker("bridges") or _mode(collector.config) == "auto":
        owner.prepare_test_case()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    auto: Optional[tuple[str, ...]] = None
    for index, item in enumerate(items):
        options = _options_for(item, config)
        if options is None:
            continue
        if options.frameworks == "auto":
            # Every module of the run is imported by now: "auto" is decided
            # once, the same for every test whatever order they run in.
            if auto is None:
                auto = imported_frameworks()
            options.frameworks = auto
        item = _reclaim(item)
        items[index] = item
        item.stash[_options_key] = options
        # First, so that the hub exists before any fixture of the test and is
        # torn down after all of them (it may already be there, after "hub").
        if RUNNER in item.fixturenames:
            item.fixturenames.remove(RUNNER)
        item.fixturenames.insert(0, RUNNER)


def _reclaim(item: pytest.Function) -> pytest.Function:
    """Undo pytest-asyncio's claim on a test explicitly marked bridges (its auto mode claims all).

    pytest-asyncio replaces async test items with its own subclass, which runs
    the test on its loop; an explicit bridges marker says the hub should, so
    the item is rebuilt as a plain ``pytest.Function``, the way pytest-asyncio
    built it from one.
    """
    if type(item).__module__ != "pytest_asyncio.plugin" or not item.get_closest_marker("bridges"):
        return item
    rebuilt = pytest.Function.from_parent(
        item.parent,
        name=item.name,
        callspec=getattr(item, "callspec", None),
        callobj=item.obj,
        fixtureinfo=_fixtureinfo(item),
        keywords=item.keywords,
        originalname=item.originalname,
    )
    rebuilt.own_markers = [mark for mark in item.own_markers if mark.name != "asyncio"]
    return rebuilt


def _fixtureinfo(item: pytest.Function) -> Any:
    # pytest's private FuncFixtureInfo (checked on pytest 7.4-9.2, and used the
    # same way by pytest-asyncio and AnyIO): the only record of which fixtures
    # the test function itself takes, as opposed to autouse ones.
    return item._fixtureinfo


def _test_argnames(item: pytest.Function) -> tuple[str, ...]:
    return tuple(_fixtureinfo(item).argnames)


# -- fixtures ----------------------------------------------------------------


@pytest.fixture
def _bridges_runner(request: pytest.FixtureRequest) -> Iterator[TestRunner]:
    """The hub of a test that runs on the hub (put first in its fixtures by the plugin)."""
    global _active
    item = request.node
    options = item.stash.get(_options_key, None)
    if options is None:
        pytest.fail(
            f"bridges: {item.name} is not a test on the hub, so it has no hub to use. "
            "Mark it with @pytest.mark.bridges (or set bridges_mode = auto for async tests).",
            pytrace=False,
        )
    _check_other_markers(item)
    fought = _fought_over(item, options)
    if fought is not None:
        pytest.fail(fought, pytrace=False)
    config = request.config
    try:
        runner = TestRunner(
            frameworks=options.frameworks,
            loop_factory=options.loop_factory,
            timeout=options.timeout,
            slow_callback=_slow_callback_for(item, config),
            on_slow=_warn_slow if config.getini("bridges_slow") == "warn" else None,
            stop_timeout=_stop_timeout(config),
            gc_mode=config.getini("bridges_gc"),
            name=item.name,
        )
    except BridgeError as exc:
        message = f"bridges: the hub of {item.name} could not start: {exc}"
    else:
        message = None
    if message is not None:
        pytest.fail(message, pytrace=False)
    release = None
    owner = _test_case_owner(item.cls)
    if owner is not None and request.instance is not None:
        adapter = runner.hub.adapter(owner.name)
        if adapter is not None:
            release = adapter.adopt_test_case(request.instance, runner)
    _active = runner
    try:
        yield runner
    finally:
        _active = None
        if release is not None:
            release()
        _finish(runner, item, config)


def _slow_callback_for(item: pytest.Item, config: pytest.Config) -> Optional[float]:
    marker = item.get_closest_marker("bridges")
    if marker is not None and "slow_callback" in marker.kwargs:
        where = f"{item.nodeid}: bridges(slow_callback=...)"
        return _timeout_value(marker.kwargs["slow_callback"], where)
    return _timeout_value(config.getini("bridges_slow_callback"), "bridges_slow_callback")


def _warn_slow(context: dict[str, Any]) -> None:
    warnings.warn(SlowCallbackWarning(str(context["exception"])), stacklevel=1)


def _check_other_markers(item: pytest.Item) -> None:
    other = [name for name in ("anyio", "trio") if item.get_closest_marker(name)]
    if other:
        pytest.fail(
            f"bridges: {item.name} is marked both bridges and {other[0]}; a test runs on one "
            f"loop. Keep @pytest.mark.bridges to run it on the hub (AnyIO's asyncio backend "
            "works there), or remove it to let the other plugin run it.",
            pytrace=False,
        )


def _finish(runner: TestRunner, item: pytest.Item, config: pytest.Config) -> None:
    leaks = runner.close()
    errors = runner.take_errors(collect=False)
    problems = []
    if errors:
        problems.append(
            f"bridges: {len(errors)} error(s) nobody handled were reported while {item.name} "
            f"was torn down or its hub stopped:\n\n{format_errors(errors)}"
        )
    if leaks:
        text = (
            f"bridges: {item.name} left {len(leaks)} thing(s) alive on its hub when it ended "
            "(the hub stopped them):\n" + "\n".join(f"  - {leak}" for leak in leaks) + "\n"
            "Await, cancel or close them before the test ends (a fixture's teardown is a good "
            "place)."
            + "".join(
                f" {hint}"
                for kind, hint in runner.leak_hints.items()
                if any(leak.startswith(kind) for leak in leaks)
            )
        )
        failed = item.stash.get(_failed_key, False)
        if config.getini("bridges_leaks") == "fail" and not failed:
            problems.append(text)
        else:
            warnings.warn(LeakWarning(text), stacklevel=1)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def hub(_bridges_runner: TestRunner) -> Hub:
    """The running hub of this test (a test on the hub only)."""
    return _bridges_runner.hub


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Any:
    """Run async fixtures of a test on the hub on that test's loop.

    The fixture function is swapped for a synchronous one for the duration of
    the setup (so pytest caches, finalizes and reports it as usual), the way
    pytest-asyncio and AnyIO do it.  This wrapper runs first, so a fixture of a
    test on the hub is never handed to another plugin.
    """
    runner = _active
    if runner is None or async_flavor(fixturedef.func) is None:
        return (yield)
    if fixturedef.scope != "function":
        pytest.fail(
            f"bridges: the async fixture {fixturedef.argname!r} has scope "
            f"{fixturedef.scope!r}, but each test on the hub runs on its own hub and loop, "
            "which end with the test. Make it function-scoped, or, for shared data, a "
            "synchronous fixture that computes it with bridges.run(...).",
            pytrace=False,
        )
    original = fixturedef.func
    fixturedef.func = _synchronized(_resolve_fixture_function(fixturedef, request), runner, request)
    try:
        return (yield)
    finally:
        fixturedef.func = original


def _resolve_fixture_function(fixturedef: Any, request: Any) -> Callable[..., Any]:
    # pytest's own binding of a fixture method to the test's instance (private;
    # checked on pytest 7.4-9.2, used the same way by pytest-asyncio).
    from _pytest.fixtures import resolve_fixture_function

    return resolve_fixture_function(fixturedef, request)  # type: ignore[no-any-return]


def _synchronized(func: Callable[..., Any], runner: TestRunner, request: Any) -> Callable[..., Any]:
    name = request.fixturename
    if inspect.isasyncgenfunction(func):

        def asyncgen_fixture(**kwargs: Any) -> Any:
            __tracebackhide__ = True
            agen = func(**kwargs)
            value = _run(runner, agen.__anext__, f"fixture {name!r} (setup)")

            def finish() -> None:
                __tracebackhide__ = True
                _run(runner, lambda: _finish_asyncgen(agen, name), f"fixture {name!r} (teardown)")

            request.addfinalizer(finish)
            return value

        return asyncgen_fixture

    def async_fixture(**kwargs: Any) -> Any:
        __tracebackhide__ = True
        return _run(runner, lambda: func(**kwargs), f"fixture {name!r}")

    return async_fixture


async def _finish_asyncgen(agen: Any, name: str) -> None:
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return
    await agen.aclose()
    raise ValueError(f"the async generator fixture {name!r} yielded twice; yield only once.")


def _run(runner: TestRunner, job: Callable[[], Any], what: str) -> Any:
    try:
        return runner.run(job, what=what)
    except TestTimeoutError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


# -- running the test --------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Optional[bool]:
    if _options_key not in pyfuncitem.stash:
        return None
    runner: TestRunner = pyfuncitem.funcargs[RUNNER]  # type: ignore[assignment]
    func = pyfuncitem.obj
    kwargs = {name: pyfuncitem.funcargs[name] for name in _test_argnames(pyfuncitem)}
    job = _test_job(func, kwargs, runner)
    try:
        _run(runner, job, pyfuncitem.name)
    except BaseException:
        errors = runner.take_errors()
        if errors:
            pyfuncitem.add_report_section(
                "call", "bridges: errors nobody handled", format_errors(errors)
            )
        raise
    errors = runner.take_errors()
    if errors:
        pytest.fail(_unhandled_message(errors, pyfuncitem.name), pytrace=False)
    return True


def _test_job(func: Callable[..., Any], kwargs: dict[str, Any], runner: TestRunner) -> Any:
    if async_flavor(func) is None:
        for adapter in runner.hub.adapters:
            job = adapter.wrap_plain_test(func, kwargs)
            if job is not None:
                return job
    return lambda: func(**kwargs)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Fail a trial test for errors nobody handled, as pytest_pyfunc_call does for the others.

    pytest runs unittest-style cases without pytest_pyfunc_call, so the check
    happens here, right after the call.
    """
    outcome = yield
    runner = _active
    if (
        runner is not None
        and _options_key in item.stash
        and _test_case_owner(getattr(item, "cls", None)) is not None
    ):
        errors = runner.take_errors()
        if errors:
            pytest.fail(_unhandled_message(errors, item.name), pytrace=False)
    return outcome


def _unhandled_message(errors: list[dict[str, Any]], name: str) -> str:
    if all(isinstance(error.get("exception"), SlowCallbackError) for error in errors):
        return (
            f"bridges: {name} held its loop past bridges_slow_callback {len(errors)} time(s), "
            "and bridges_slow = fail makes that a failure. Move the blocking work off the loop, "
            "or raise the threshold for this test with "
            f"@pytest.mark.bridges(slow_callback=...):\n\n{format_errors(errors)}"
        )
    return (
        f"bridges: {len(errors)} error(s) nobody handled were reported while {name} ran, so "
        "it fails even though its own code passed. Await the task, add an errback to the "
        f"Deferred, or handle the error where it is raised:\n\n{format_errors(errors)}"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed and _options_key in item.stash:
        item.stash[_failed_key] = True
    return report
