"""``python -m bridges doctor`` and ``python -m bridges bench``, run for real in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bridges_command(
    *args: str, cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridges", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.mark.timeout(150)
def test_doctor_reports_every_framework_and_whether_it_attaches() -> None:
    done = bridges_command("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("asyncore", "gevent", "tornado", "twisted"):
        assert any(
            line.split()[:1] == [name] and line.rstrip().endswith("attaches")
            for line in done.stdout.splitlines()
        ), f"doctor said nothing about {name} attaching:\n{done.stdout}"
    assert "Conflicts:" in done.stdout
    assert "pytest plugins:" in done.stdout


@pytest.mark.timeout(150)
def test_doctor_names_a_reactor_imported_before_the_hub() -> None:
    script = (
        "import twisted.internet.reactor, sys\n"
        "from bridges._doctor import doctor\n"
        "sys.exit(doctor())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert "a Twisted reactor (twisted.internet.epollreactor" in done.stdout
    assert "Do not import twisted.internet.reactor before bridges.run()" in done.stdout
    assert "importing bridges.twisted installs nothing" in done.stdout
    assert "  twisted   " in done.stdout
    assert "does not attach: ForeignReactorError" in done.stdout


@pytest.mark.timeout(150)
def test_importing_bridges_twisted_first_does_not_let_the_hub_attach() -> None:
    """Why the doctor does not advise "import bridges.twisted first": it would not help."""
    script = (
        "import asyncio, bridges, bridges.twisted\n"
        "from twisted.internet import reactor\n"
        "bridges.run(asyncio.sleep, 0, frameworks=['twisted'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "ForeignReactorError" in done.stderr


@pytest.mark.timeout(150)
def test_the_doctors_advice_works_importing_the_reactor_on_the_hub() -> None:
    script = (
        "import asyncio, bridges\n"
        "async def main():\n"
        "    from twisted.internet import reactor, task\n"
        "    d = task.deferLater(reactor, 0, lambda: 'attached')\n"
        "    print(await bridges.awaitable(d))\n"
        "bridges.run(main, frameworks=['twisted'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "attached"


def test_the_doctor_disables_pytest_tornasync_by_its_plugin_name_as_the_plugin_does() -> None:
    """pytest-tornasync's pytest11 entry point is named "tornado": -p no:tornasync does nothing."""
    from bridges._doctor import COMPETING_PYTEST_PLUGINS

    advice = COMPETING_PYTEST_PLUGINS["pytest-tornasync"]
    assert "-p no:tornado" in advice
    assert "no:tornasync" not in advice


@pytest.mark.timeout(150)
def test_bench_writes_the_table_and_keeps_other_benchmarks_rows(tmp_path: Path) -> None:
    kept = {
        "benchmark": "other",
        "case": "measured in an earlier run",
        "unit": "µs",
        "higher_is_better": False,
        "ours": 2.0,
        "baseline": 1.0,
        "baseline_name": "native",
        "ratio": 0.5,
        "ratio_min": 0.4,
        "ratio_max": 0.6,
        "target": "",
        "meets_target": None,
    }
    previous = {"bench_other": [kept]}
    (tmp_path / "benchmarks.json").write_text(json.dumps(previous))
    done = bridges_command("bench", "--quick", "--only", "core", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((tmp_path / "benchmarks.json").read_text())
    assert rows["bench_other"] == previous["bench_other"]
    core = rows["bench_core"]
    assert {row["benchmark"] for row in core} == {"core"}
    assert all(row["ours"] > 0 and row["baseline"] > 0 for row in core)
    table = (tmp_path / "benchmarks.md").read_text()
    assert "| core | await Tulip-era generator, stdlib loop |" in table
    assert "| other | measured in an earlier run |" in table


def test_bench_outside_a_source_checkout_says_where_to_run_it(tmp_path: Path) -> None:
    done = bridges_command("bench", "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert "run this from a source checkout" in done.stderr


def test_the_readme_section_between_the_markers_is_replaced(tmp_path: Path) -> None:
    from bridges._bench import README_END, README_START, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold table\n{README_END}\noutro\n")
    update_readme(readme, "# Benchmark report\n\n| new | table |\n")
    assert readme.read_text() == f"intro\n{README_START}\n| new | table |\n{README_END}\noutro\n"
