"""The contract between the hub and a framework adapter, and the registry that finds adapters.

The hub knows nothing about any framework: it attaches, detaches and asks
:class:`Adapter` objects, and so does the pytest plugin.  AnyIO's
``AsyncBackend`` is the model: one class per framework, whose class-level
methods answer questions that need no hub (is the framework installed? is
this test function one of yours?) and whose instances, one per hub, hold
the framework's state on that hub.

How to write an adapter
-----------------------

Subclass :class:`Adapter` in a module that imports *without* the framework
(import the framework inside ``attach``), and set the class attributes:

``name``
    What users pass in ``frameworks=[...]``; unique.
``requires``
    The framework's top-level module; the adapter is available when it can
    be imported.
``order``
    Attach order (lower first); the stop sequence runs in reverse.  Adapters
    that own the lowest level (raw fds, a greenlet hub) attach first.
``runs_shutdown_work``
    True when the framework runs user code while it stops (Twisted's
    shutdown triggers): its ``detach`` then runs *before* the hub cancels the
    tasks legacy code spawned, since that code may still need them.
``install_hint``
    The command that installs the framework (shown when it is missing).

then implement, on the instance (``self.hub`` is the hub):

``attach()``
    Bind the framework to ``self.hub.loop``; called inside the running loop.
    Register fds and signals through the hub (``hub.add_reader(...,
    owner=...)``), so that a second owner is refused, and route the
    framework's "unhandled error" paths to :meth:`Adapter.report`.  Keep the
    per-hub state in attributes of ``self``.  Every patch applied to the
    framework is applied here and undone in ``detach``: no global effect
    outlives a hub.  May return an awaitable, which the hub awaits.
``detach()``
    Undo ``attach`` completely.  May return an awaitable, which the hub
    awaits with a bounded wait (a stuck detach is reported, not waited for).

and optionally (the defaults do nothing):

``converters()``
    ``{native type: function returning an asyncio future}``, registered
    with :func:`bridges.register` when the adapter is loaded, so that
    ``bridges.awaitable()`` accepts the framework's primitives.
``leak_finders()``
    :class:`LeakFinder` objects for what a test can leave alive in the
    framework (the pytest plugin compares with a snapshot taken at start).
``test_flavor(func)``, ``wrap_plain_test(func, kwargs)``, ``owns_test_case(cls)``,
``prepare_test_case()``, ``adopt_test_case(testcase, runner)``, ``waiting_in(task)``
    How the pytest plugin recognises and runs the framework's kinds of tests
    (see each method).
``competing_plugins``
    pytest plugins that would fight the hub over this framework.
``describe_dispatch(what)``
    The user's function behind one of the framework's dispatches (below).

Attributing dispatches
----------------------

The hub accounts loop time per framework and watches for a dispatch that
holds the loop (docs/observability.md).  At attach, take the framework's
meter from the hub's accounting (None when accounting is off)::

    acct = self.hub.accounting
    self.meter = None if acct is None else acct.meter_for(self.name)

and where the adapter's own dispatch wrapper calls into user code (a
reactor's fd event, a hub pass, a handler call), count the call and time it
when the meter says it is due (most are not: bridges._accounting says why)::

    meter = self.meter
    outer = None
    if meter is not None:
        meter.count = dispatches = meter.count + 1
        if dispatches >= meter.due:
            outer = meter.enter(what)
    try:
        call()
    finally:
        if outer is not None:
            meter.exit(outer)

(``outer = meter.begin(what)`` ... ``meter.end(outer)`` is the same in two
calls, where a few hundred nanoseconds per dispatch do not matter.)

``what`` is whatever is cheapest to hand over (the selectable, the
callback); it is named only when the dispatch turns out slow, by
``describe_dispatch(what)``.  Brackets must nest: code that leaves a
dispatch by switching greenlets ends its bracket first.

Registering
-----------

Built-in adapters are listed in :data:`BUILTIN`.  A third-party package
registers its adapter with an entry point in the ``bridges.adapters`` group,
named after the framework::

    [project.entry-points."bridges.adapters"]
    eventlet = "bridges_eventlet._adapter:EventletAdapter"

after which ``bridges.run(main, frameworks=["eventlet"])`` attaches it and
``"auto"`` includes it when it is available.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import sys
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    ClassVar,
    Iterable,
    Mapping,
    NamedTuple,
    Sequence,
    TypeVar,
    Union,
)

from ._accounting import qualified_name
from ._convert import register
from ._errors import (
    FrameworkNotInstalledError,
    HubNotRunningError,
    NotAttachedError,
    UnknownFrameworkError,
    UsageError,
)

if TYPE_CHECKING:
    from ._hub import Hub

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterEntry",
    "CompetingPlugin",
    "FrameworksArg",
    "LeakFinder",
    "competing_plugins",
    "entries",
    "load",
    "loaded",
    "resolve",
]

ENTRY_POINT_GROUP = "bridges.adapters"
FrameworksArg = Union[str, Iterable[str], None]
A = TypeVar("A", bound="Adapter")


class CompetingPlugin(NamedTuple):
    """A pytest plugin that runs some tests its own way and would fight the hub for them."""

    project: str
    """Its distribution name (what ``pip`` installs)."""
    module: str
    """The module that implements it, as pytest registers it."""
    option: str
    """The name to disable it with: ``pytest -p no:<option>``."""
    why: str
    """What it does that conflicts with the hub."""
    takes: str
    """What it takes from the hub: an adapter's name (that framework, in every
    test that attaches it), ``"async"`` (``async def`` and ``gen.coroutine``
    tests), or ``""`` (nothing: it coexists, and the doctor says so)."""


class LeakFinder(NamedTuple):
    """What a test can leave alive in one framework, found through its public API."""

    kind: str
    """How the objects are called in the leak report ("Twisted delayed call")."""
    find: Callable[[], Iterable[Any]]
    """Returns the objects alive now; a leak is one that was not alive at start."""
    hint: str | None = None
    """How to learn more about such a leak, if the framework can say more."""
    close: Callable[[], None] | None = None
    """Releases what the finder holds (a trace function), when the test ends."""


class Adapter:
    """One framework on the hub.  See the module docstring for how to write one."""

    name: ClassVar[str]
    requires: ClassVar[str]
    order: ClassVar[int] = 50
    runs_shutdown_work: ClassVar[bool] = False
    install_hint: ClassVar[str] = ""
    competing_plugins: ClassVar[tuple[CompetingPlugin, ...]] = ()
    not_attached: ClassVar[type[NotAttachedError]] = NotAttachedError
    """The error :meth:`current` raises: :class:`bridges.NotAttachedError` or a
    subclass that is also the framework's own "not running" error."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    # -- what needs no hub -------------------------------------------------

    @classmethod
    def is_available(cls) -> bool:
        """Whether the framework's package can be imported (without importing it)."""
        return _importable(cls.requires)

    @classmethod
    def converters(cls) -> Mapping[type, Callable[[Any], asyncio.Future[Any]]]:
        """The framework's primitives and their converters to asyncio futures."""
        return {}

    @classmethod
    def current(cls: type[A]) -> A:
        """This adapter on the running hub; :class:`bridges.NotAttachedError` if none."""
        try:
            hub = _running_hub()
        except HubNotRunningError:
            raise cls.not_attached(
                f"{cls.name} is used through bridges, but no bridges hub is running in this "
                f"thread. Run the code inside bridges.run(main, frameworks=[..., {cls.name!r}]) "
                "or `async with bridges.Hub(...)`."
            ) from None
        adapter = hub._by_name.get(cls.name)  # hub.adapter(), one call less on hot paths
        if not isinstance(adapter, cls):
            raise cls.not_attached(
                f"{cls.name} is not attached to the running hub {hub!r}. Ask for it: "
                f"bridges.run(main, frameworks=[..., {cls.name!r}]) or "
                f"bridges.Hub(frameworks=[..., {cls.name!r}])."
            )
        return adapter

    # -- lifecycle -----------------------------------------------------------

    def attach(self) -> Awaitable[None] | None:
        raise NotImplementedError(f"{type(self).__qualname__} does not implement attach()")

    def detach(self) -> Awaitable[None] | None:
        raise NotImplementedError(f"{type(self).__qualname__} does not implement detach()")

    def report(self, exc: BaseException | None, message: str, **context: Any) -> None:
        """Send an error nobody handled in the framework to the hub's error sink, once."""
        self.hub.report(exc, message, **context)

    def describe_dispatch(self, what: Any) -> str:
        """The user's function behind a dispatch that ran ``what``, qualified.

        ``what`` is what this adapter passed to ``hub.accounting.begin``; the
        name appears in ``hub.stats()["slowest"]`` and in slow-callback
        reports (``myapp.proto.Echo.dataReceived``).  Called only for slow
        dispatches, so it may take its time.
        """
        return qualified_name(what)

    # -- the pytest plugin -------------------------------------------------

    def leak_finders(self) -> Sequence[LeakFinder]:
        """What the plugin checks for leaks at the end of each test (made right after start)."""
        return ()

    @classmethod
    def test_flavor(cls, func: Any) -> str | None:
        """The framework's async flavor of a test function ("gen.coroutine"), or None.

        Asked only once the framework's module is imported (a test of that
        flavor imported it), so answering must not import anything.
        """
        return None

    def wrap_plain_test(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """How to run a plain (non-async) test function on this hub, or None for the default.

        Returns a job: a callable whose result the plugin awaits on the hub.
        The first attached adapter that answers wins (gevent runs plain tests
        in a greenlet, so that they may block).
        """
        return None

    @classmethod
    def owns_test_case(cls, case: Any) -> bool:
        """Whether ``case`` is a unittest class of this framework that the hub runs (trial)."""
        return False

    @classmethod
    def prepare_test_case(cls) -> None:
        """Called before pytest instantiates a test case class this adapter owns."""

    def adopt_test_case(self, testcase: Any, runner: Any) -> Callable[[], None] | None:
        """Make ``testcase`` (of a class this adapter owns) run on ``runner``'s hub.

        Returns what undoes it after the test, or None.
        """
        return None

    @classmethod
    def waiting_in(cls, task: asyncio.Task[Any]) -> list[str] | None:
        """Where ``task`` really waits, if it waits inside this framework (a greenlet)."""
        return None


def _running_hub() -> Hub:
    """``bridges.current_hub``, bound on first use (``_hub`` imports this module).

    Adapters call :meth:`Adapter.current` on hot paths (``bg.wait``), so the
    import is not repeated on every call.
    """
    global _running_hub
    from ._hub import current_hub

    _running_hub = current_hub
    return current_hub()


class AdapterEntry(NamedTuple):
    """A registered adapter, before its module is imported."""

    name: str
    target: str
    """``module:Class``."""
    requires: str | None = None
    """For built-ins: the framework's module, so availability needs no import."""
    install_hint: str = ""

    def available(self) -> bool:
        if self.requires is not None:
            return _importable(self.requires)
        try:
            return load(self).is_available()
        except Exception:  # noqa: BLE001 - a broken third-party adapter is not available
            return False


def _builtin(name: str, requires: str) -> AdapterEntry:
    return AdapterEntry(
        name,
        f"bridges.{name}._adapter:{name.capitalize()}Adapter",
        requires,
        f"pip install 'tulip-bridges[{name}]'",
    )


BUILTIN: tuple[AdapterEntry, ...] = (
    # asyncore left the stdlib in 3.12; pyasyncore provides the same module name.
    _builtin("asyncore", "asyncore"),
    _builtin("gevent", "gevent"),
    _builtin("eventlet", "eventlet"),
    _builtin("tornado", "tornado"),
    _builtin("twisted", "twisted"),
)
"""The adapters that ship with bridges."""

_loaded: dict[str, type[Adapter]] = {}
_third_party: list[AdapterEntry] | None = None


def entries() -> list[AdapterEntry]:
    """Every registered adapter: the built-ins, then the ``bridges.adapters`` entry points."""
    global _third_party
    if _third_party is None:
        taken = {entry.name for entry in BUILTIN}
        _third_party = [
            AdapterEntry(point.name, point.value)
            for point in _entry_points()
            if point.name not in taken
        ]
    return [*BUILTIN, *_third_party]


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    points = importlib.metadata.entry_points()
    if hasattr(points, "select"):  # Python 3.10+
        return list(points.select(group=ENTRY_POINT_GROUP))
    return list(points.get(ENTRY_POINT_GROUP, ()))  # type: ignore[attr-defined]


def forget_entry_points() -> None:
    """Read the entry points again on next use (after installing an adapter at run time)."""
    global _third_party
    _third_party = None


def load(entry: AdapterEntry) -> type[Adapter]:
    """Import the adapter class of ``entry``, check its shape and register its converters."""
    cls = _loaded.get(entry.name)
    if cls is not None:
        return cls
    module_name, _, attr = entry.target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise UsageError(
            f"the bridges adapter {entry.name!r} points to {entry.target!r}, which is not a "
            "subclass of bridges.Adapter. An adapter is a class deriving from bridges.Adapter "
            "(see docs/architecture.md)."
        )
    if getattr(cls, "name", None) != entry.name:
        raise UsageError(
            f"the bridges adapter registered as {entry.name!r} ({entry.target}) calls itself "
            f"{getattr(cls, 'name', None)!r}; the entry point's name must be the adapter's name."
        )
    for native, converter in cls.converters().items():
        register(native, converter)
    _loaded[entry.name] = cls
    return cls


def loaded() -> list[type[Adapter]]:
    """The adapter classes whose framework this process has already imported.

    The pytest plugin asks these about test functions: a test of a
    framework's flavor has imported that framework, and asking no others
    imports nothing new.
    """
    found = []
    for entry in entries():
        requires = entry.requires
        if requires is not None and requires not in sys.modules:
            continue
        if requires is None and entry.name not in _loaded:
            continue
        try:
            found.append(load(entry))
        except Exception:  # noqa: BLE001 - an adapter that cannot load has no tests to claim
            continue
    return found


def resolve(frameworks: FrameworksArg) -> list[type[Adapter]]:
    """Turn the user's ``frameworks=`` argument into adapter classes, in attach order.

    ``"auto"`` means every available framework; ``None`` or ``()`` means none
    (plain asyncio).  Naming one that is not installed is an error rather than
    a silent skip: the user asked for it and would otherwise find out much
    later, from a confusing failure.
    """
    if frameworks is None:
        return []
    known = {entry.name: entry for entry in entries()}
    if frameworks == "auto":
        chosen = [entry for entry in known.values() if entry.available()]
    else:
        names = [frameworks] if isinstance(frameworks, str) else list(frameworks)
        for name in names:
            if name not in known:
                listed = ", ".join(repr(n) for n in known)
                raise UnknownFrameworkError(
                    f"bridges has no adapter for the framework {name!r}. "
                    f'Use "auto" or names from: {listed} (third-party adapters register '
                    f"through the {ENTRY_POINT_GROUP!r} entry point group)."
                )
        chosen = [known[name] for name in dict.fromkeys(names)]
        for entry in chosen:
            if entry.requires is None:
                load(entry)  # a broken third-party adapter says why, rather than "not installed"
            if not entry.available():
                hint = entry.install_hint or "install it"
                raise FrameworkNotInstalledError(
                    f"the framework {entry.name!r} was requested, but it is not installed "
                    f"(its adapter {entry.target} is not available). Install it with: {hint}"
                )
    classes = [load(entry) for entry in chosen]
    return sorted(classes, key=lambda cls: cls.order)


def competing_plugins() -> list[CompetingPlugin]:
    """The pytest plugins known to fight the hub: one table, for the plugin and the doctor.

    The built-in table, plus what loaded third-party adapters declare (nothing
    is imported to answer).
    """
    from ._pytest.competitors import KNOWN

    found = list(KNOWN)
    for cls in _loaded.values():
        found.extend(plugin for plugin in cls.competing_plugins if plugin not in found)
    return found


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: the import is blocked
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
