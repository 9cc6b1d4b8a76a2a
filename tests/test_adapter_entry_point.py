"""A third-party adapter, installed as a distribution, is found through the entry point group.

tests/adapter_pkg is a package of its own (chime, a toy callback framework,
and its adapter, registered in its pyproject.toml under "bridges.adapters").
The fixture installs it the way an installer lays it out -- the modules plus a
``.dist-info`` directory with its entry points -- on a fresh ``sys.path``
entry, so that ``importlib.metadata`` discovers it as it would after ``pip
install``; nothing in bridges' registry is patched.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from _pytest_plugin_helpers import run_inner

import bridges
from bridges import _adapter

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(60)

PACKAGE = Path(__file__).parent / "adapter_pkg"
ENTRY_POINTS = """\
[bridges.adapters]
chime = bridges_chime:ChimeAdapter
"""


def _install(site: Path, entry_points: str = ENTRY_POINTS) -> None:
    for module in ("chime.py", "bridges_chime.py"):
        shutil.copy(PACKAGE / module, site / module)
    dist_info = site / "bridges_chime-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: bridges-chime\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


def _forget() -> None:
    _adapter.forget_entry_points()
    _adapter._loaded.pop("chime", None)
    for module in ("chime", "bridges_chime"):
        sys.modules.pop(module, None)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """bridges-chime installed on a sys.path entry of its own."""
    _install(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    _forget()
    yield tmp_path
    _forget()


def test_the_fixture_installs_the_entry_points_the_package_declares() -> None:
    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))
    points = declared["project"]["entry-points"]["bridges.adapters"]
    assert points == {"chime": "bridges_chime:ChimeAdapter"}
    assert ENTRY_POINTS.splitlines()[1] == "chime = bridges_chime:ChimeAdapter"


def test_without_the_distribution_the_framework_is_unknown() -> None:
    _forget()
    with pytest.raises(bridges.UnknownFrameworkError, match="'chime'"):
        bridges.Hub(frameworks=["chime"])


@pytest.mark.usefixtures("site")
def test_an_installed_adapter_is_listed_among_the_registered_ones() -> None:
    assert ("chime", "bridges_chime:ChimeAdapter") in [
        (entry.name, entry.target) for entry in _adapter.entries()
    ]


@pytest.mark.usefixtures("site")
def test_run_attaches_an_installed_adapter_and_awaits_its_primitive() -> None:
    async def main() -> tuple[Any, tuple[str, ...]]:
        import chime

        rung = await bridges.awaitable(chime.after(0.01, "ding"))
        return rung, bridges.current_hub().frameworks

    assert bridges.run(main, frameworks=["chime"]) == ("ding", ("chime",))


@pytest.mark.usefixtures("site")
def test_auto_attaches_an_installed_adapter_that_is_available() -> None:
    async def main() -> bool:
        return "chime" in bridges.current_hub().frameworks

    assert bridges.run(main) is True


@pytest.mark.usefixtures("site")
def test_an_installed_adapter_undoes_its_patch_when_the_hub_stops() -> None:
    import chime

    async def main() -> bool:
        return chime.scheduler is not None

    assert bridges.run(main, frameworks=["chime"]) is True
    assert chime.scheduler is None
    with pytest.raises(chime.NotRunningError):
        chime.after(0, "late")


@pytest.mark.usefixtures("site")
def test_current_finds_the_installed_adapter_on_the_running_hub() -> None:
    import bridges_chime

    async def main() -> bool:
        adapter = bridges_chime.ChimeAdapter.current()
        return adapter.hub is bridges.current_hub()

    assert bridges.run(main, frameworks=["chime"]) is True

    async def without() -> None:
        bridges_chime.ChimeAdapter.current()

    with pytest.raises(bridges.NotAttachedError, match="chime is not attached"):
        bridges.run(without, frameworks=None)


def test_an_entry_point_that_is_not_an_adapter_is_refused_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(tmp_path, "[bridges.adapters]\nchime = chime:Bell\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _forget()
    try:
        with pytest.raises(bridges.UsageError, match=r"'chime' points to 'chime:Bell'"):
            bridges.Hub(frameworks=["chime"])
    finally:
        _forget()


def test_the_plugin_runs_tests_on_an_installed_adapter_and_reports_its_leaks(
    site: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = run_inner(
        pytester,
        """
        import pytest
        import bridges
        import chime

        @pytest.mark.bridges(frameworks=["chime"])
        async def test_awaits_a_bell():
            assert await bridges.awaitable(chime.after(0, 1)) == 1

        @pytest.mark.bridges(frameworks=["chime"])
        @chime.test
        def test_of_chimes_own_flavor():
            return chime.after(0, 2)

        @pytest.mark.bridges(frameworks=["chime"])
        async def test_leaves_a_timer():
            chime.after(60, "never")
        """,
        "-W",
        "always",
    )
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(["*test_leaves_a_timer left 1 thing(s) alive*", "*chime timer*"])


def test_the_hub_still_runs_plain_asyncio_when_the_entry_point_group_is_empty() -> None:
    _forget()

    async def main() -> str:
        await asyncio.sleep(0)
        return "plain"

    assert bridges.run(main, frameworks=None) == "plain"
