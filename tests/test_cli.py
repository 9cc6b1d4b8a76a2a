"""``python -m bridges doctor`` and ``python -m bridges bench``, run for real in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridges._bench import README_END, README_START

ROOT = Path(__file__).resolve().parent.parent


def bridges_command(
    *args: str, cwd: Path = ROOT, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridges", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
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
    from bridges._pytest.competitors import KNOWN, advice

    tornasync = next(plugin for plugin in KNOWN if plugin.project == "pytest-tornasync")
    assert "-p no:tornado " in advice(tornasync)
    assert "no:tornasync" not in advice(tornasync)


STUB = """
import json, sys
rows = [{{
    "benchmark": {name!r}, "case": "stub case", "unit": "µs", "higher_is_better": False,
    "ours": 2.0, "baseline": 1.0, "baseline_name": "native", "ratio": 0.5, "ratio_min": 0.4,
    "ratio_max": 0.6, "target": "cost <= 2x native", "meets_target": True, "target_ratio": 0.5,
}}]
with open(sys.argv[sys.argv.index("--report") + 1], "w") as out:
    json.dump(rows, out)
"""


def checkout_with_benchmarks(root: Path, *names: str) -> Path:
    """A source tree whose benchmarks/ holds small real scripts that report one row each."""
    (root / "benchmarks").mkdir(parents=True)
    for name in names:
        (root / "benchmarks" / f"bench_{name}.py").write_text(STUB.format(name=name))
    (root / "docs").mkdir()
    section = f"{README_START}\nold table\n{README_END}\n"
    (root / "docs" / "benchmarks.md").write_text(f"# Benchmarks\n\nTargets...\n{section}")
    (root / "docs" / "benchmarks.png").write_bytes(b"old chart")
    (root / "README.md").write_text(f"# Project\n{section}")
    return root


def without_matplotlib(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import matplotlib`` fails, as where it is not installed."""
    shadow = tmp_path / "no-matplotlib" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    return dict(os.environ, PYTHONPATH=str(shadow.parent))


def test_bench_only_runs_the_named_benchmark_not_those_containing_its_name(tmp_path: Path) -> None:
    root = checkout_with_benchmarks(tmp_path / "src", "core", "asyncore")
    done = bridges_command("bench", "--only", "core", "--no-chart", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "== bench_core.py" in done.stdout
    assert "bench_asyncore" not in done.stdout
    rows = json.loads((root / "bench-results" / "benchmarks.json").read_text())
    assert list(rows) == ["core"]


def test_bench_only_keeps_the_other_rows_under_the_run_that_measured_them(tmp_path: Path) -> None:
    root = checkout_with_benchmarks(tmp_path / "src", "core", "other")
    out = root / "bench-results"
    out.mkdir()
    earlier = {"other": {"measured_on": "1 core, an old CPU; Python 3.9.0; 2020-01-01", "rows": []}}
    earlier["other"]["rows"] = [dict(json.loads(json.dumps(_stub_row("other"))))]
    (out / "benchmarks.json").write_text(json.dumps(earlier))
    done = bridges_command("bench", "--only", "core", "--no-chart", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    table = (out / "benchmarks.md").read_text()
    assert "- other: measured on 1 core, an old CPU; Python 3.9.0; 2020-01-01" in table
    assert "- core: measured on " in table
    assert "Measured on:" not in table  # no single header over rows of two runs
    assert "| other | stub case |" in table
    assert "| core | stub case |" in table


def _stub_row(name: str) -> dict[str, object]:
    return {
        "benchmark": name,
        "case": "stub case",
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


def test_bench_without_matplotlib_fails_before_measuring_and_leaves_the_report_alone(
    tmp_path: Path,
) -> None:
    root = checkout_with_benchmarks(tmp_path / "src", "core")
    done = bridges_command("bench", "--readme", cwd=root, env=without_matplotlib(tmp_path))
    assert done.returncode == 2
    assert "pip install 'tulip-bridges[bench]'" in done.stderr
    assert "== bench_core.py" not in done.stdout
    assert (root / "docs" / "benchmarks.png").read_bytes() == b"old chart"
    assert "old table" in (root / "README.md").read_text()


def test_bench_by_default_writes_outside_the_tracked_docs(tmp_path: Path) -> None:
    root = checkout_with_benchmarks(tmp_path / "src", "core")
    before = {path: path.read_bytes() for path in (root / "docs").iterdir()}
    done = bridges_command("bench", "--no-chart", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {path: path.read_bytes() for path in (root / "docs").iterdir()} == before
    assert "| core | stub case |" in (root / "bench-results" / "benchmarks.md").read_text()


@pytest.mark.timeout(150)
def test_bench_readme_publishes_table_and_chart_from_one_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the chart needs matplotlib")
    root = checkout_with_benchmarks(tmp_path / "src", "core", "other")
    done = bridges_command("bench", "--readme", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    docs_table = (root / "docs" / "benchmarks.md").read_text()
    readme = (root / "README.md").read_text()
    assert docs_table.startswith("# Benchmarks\n\nTargets...")  # the prose is kept
    for text in (docs_table, readme):
        assert "old table" not in text
        assert "| core | stub case |" in text
        assert "| other | stub case |" in text
    assert (root / "docs" / "benchmarks.png").read_bytes().startswith(b"\x89PNG")
    published = json.loads((root / "docs" / "benchmarks.json").read_text())
    assert published == json.loads((root / "bench-results" / "benchmarks.json").read_text())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--readme", "--only", "core"], "--readme publishes one full run"),
        (["--readme", "--quick"], "--readme publishes one full run"),
        (["--only", "cor"], "no benchmark named cor; the benchmarks are: core"),
    ],
)
def test_bench_refuses_what_it_cannot_do_honestly(
    tmp_path: Path, args: list[str], said: str
) -> None:
    root = checkout_with_benchmarks(tmp_path / "src", "core")
    done = bridges_command("bench", *args, cwd=root)
    assert done.returncode == 2
    assert said in done.stderr
    assert "old table" in (root / "README.md").read_text()


@pytest.mark.timeout(150)
def test_bench_runs_a_real_benchmark_and_reports_its_rows(tmp_path: Path) -> None:
    done = bridges_command(
        "bench", "--quick", "--only", "core", "--no-chart", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    core = json.loads((tmp_path / "benchmarks.json").read_text())["core"]["rows"]
    assert {row["benchmark"] for row in core} == {"core"}
    assert all(row["ours"] > 0 and row["baseline"] > 0 for row in core)
    assert (
        "| core | await Tulip-era generator, stdlib loop |"
        in (tmp_path / "benchmarks.md").read_text()
    )


def test_bench_outside_a_source_checkout_says_where_to_run_it(tmp_path: Path) -> None:
    done = bridges_command("bench", "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert "run this from a source checkout" in done.stderr


def test_the_readme_section_between_the_markers_is_replaced(tmp_path: Path) -> None:
    from bridges._bench import update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold table\n{README_END}\noutro\n")
    update_readme(readme, "# Benchmark report\n\n| new | table |\n")
    assert readme.read_text() == f"intro\n{README_START}\n| new | table |\n{README_END}\noutro\n"
