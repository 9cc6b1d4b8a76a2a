"""Old names stay for one release: each still works and warns, naming the new one."""

from __future__ import annotations

import importlib

import pytest

import bridges

RENAMED = [
    ("bridges.twisted", "ReactorRunError", "HubOwnsLoopError"),
    ("bridges.twisted", "ReactorNotBoundError", "NotAttachedError"),
    ("bridges.tornado", "IOLoopOwnedByHubError", "HubOwnsLoopError"),
    ("bridges.tornado", "TornadoNotAttachedError", "NotAttachedError"),
    ("bridges.gevent", "BlockingCallError", "HubOwnsLoopError"),
    ("bridges.gevent", "gevent_hub", "get_hub"),
    ("bridges.asyncore", "BlockingLoopError", "HubOwnsLoopError"),
]


@pytest.mark.parametrize(("module", "old", "new"), RENAMED, ids=lambda x: str(x))
def test_an_old_name_is_the_new_object_and_warns_naming_it(module: str, old: str, new: str) -> None:
    package = importlib.import_module(module)
    with pytest.warns(
        DeprecationWarning, match=rf"{module}\.{old} is deprecated; use {module}\.{new}"
    ):
        value = getattr(package, old)
    assert value is getattr(package, new)


def test_the_new_error_names_belong_to_the_shared_families() -> None:
    from bridges import asyncore as bac
    from bridges import gevent as bg
    from bridges import tornado as btn
    from bridges import twisted as bt

    for package in (bt, btn, bg, bac):
        assert issubclass(package.HubOwnsLoopError, bridges.HubOwnsLoopError)
        assert issubclass(package.NotAttachedError, bridges.NotAttachedError)
    assert issubclass(bridges.NotAttachedError, bridges.HubNotRunningError)


def test_bt_reactor_still_gives_the_running_hubs_reactor_and_warns() -> None:
    from bridges import twisted as bt

    async def main() -> bool:
        with pytest.warns(DeprecationWarning, match=r"use bridges\.twisted\.get_reactor\(\)"):
            reactor = bt.reactor
        return reactor is bt.get_reactor()

    assert bridges.run(main, frameworks=["twisted"]) is True


def test_hub_state_still_maps_framework_names_and_warns() -> None:
    async def main() -> bool:
        hub = bridges.current_hub()
        with pytest.warns(DeprecationWarning, match=r"hub\.adapter\(name\)"):
            state = hub.state
        return state["tornado"] is hub.adapter("tornado")

    assert bridges.run(main, frameworks=["tornado"]) is True


def test_btn_ioloop_keeps_working_without_a_warning() -> None:
    from bridges import tornado as btn

    async def main() -> bool:
        return btn.ioloop() is btn.get_ioloop()

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert bridges.run(main, frameworks=["tornado"]) is True


def test_the_old_gevent_loop_path_still_names_the_loop_class_and_warns() -> None:
    import sys

    sys.modules.pop("bridges._gevent_loop", None)
    with pytest.warns(DeprecationWarning, match=r"bridges\.gevent\.AsyncioLoop"):
        old = importlib.import_module("bridges._gevent_loop")
    from bridges import gevent as bg

    assert old.AsyncioLoop is bg.AsyncioLoop
