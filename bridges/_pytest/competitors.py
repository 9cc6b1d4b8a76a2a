"""The pytest plugins that run async tests their own way: one table for the plugin and the doctor.

The plugin warns at start-up when one of them is active and fails the tests
it would fight over; ``python -m bridges doctor`` lists the installed ones
with the same advice.
"""

from __future__ import annotations

from .._adapter import CompetingPlugin

__all__ = ["KNOWN", "advice"]

KNOWN: tuple[CompetingPlugin, ...] = (
    CompetingPlugin(
        "pytest-twisted",
        "pytest_twisted",
        "twisted",
        "it installs its own Twisted reactor when pytest starts, so the hub cannot attach "
        "Twisted, and it runs inlineCallbacks tests itself",
        "twisted",
    ),
    CompetingPlugin(
        "pytest-tornasync",
        "pytest_tornasync.plugin",
        "tornado",
        "it runs every `async def` test on its own IOLoop, without the hub's checks, before "
        "bridges can",
        "async",
    ),
    CompetingPlugin(
        "pytest-tornado",
        "pytest_tornado.plugin",
        "tornado",
        "it runs coroutine tests on its own IOLoop, without the hub's checks",
        "async",
    ),
    CompetingPlugin(
        "pytest-asyncio",
        "pytest_asyncio.plugin",
        "asyncio",
        "it runs tests marked asyncio (and, in its auto mode, every `async def` test); the hub "
        "runs tests marked bridges",
        "",
    ),
    CompetingPlugin(
        "anyio",
        "anyio.pytest_plugin",
        "anyio",
        "its plugin runs tests marked anyio; the hub runs tests marked bridges",
        "",
    ),
)
"""Each competitor; ``takes=""`` marks one that coexists with the hub."""


def advice(plugin: CompetingPlugin, registered_as: str | None = None) -> str:
    """What to do about ``plugin`` (``registered_as``: its name in this pytest session)."""
    if not plugin.takes:
        return f"coexists: {plugin.why}"
    name = registered_as or plugin.option
    return (
        f"{plugin.why}. Run pytest with -p no:{name} (or uninstall {plugin.project}); "
        "the bridges plugin runs those tests on the hub (see docs/pytest.md for the "
        "migration table)"
    )
