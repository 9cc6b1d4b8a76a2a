"""CI runs every env of tox.ini's matrix, each version axis in rotation (scripts/ci_envs.py)."""

from __future__ import annotations

import configparser
import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _ci_envs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_envs", ROOT / "scripts" / "ci_envs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tox() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    return config


def _expand(pattern: str) -> list[str]:
    match = re.search(r"\{([^}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [name for part in match.group(1).split(",") for name in _expand(head + part + tail)]


def env_list() -> list[str]:
    lines = _tox()["tox"]["env_list"].split()
    return [env for line in lines for env in _expand(line)]


def test_every_env_of_the_matrix_runs_in_ci() -> None:
    ci = _ci_envs()
    axis_factors = {factor for axis in ci.AXES.values() for factor in axis}
    never = []
    for env in env_list():
        rotated = env.startswith(f"{ci.AXIS_PYTHON}-") and env.split("-", 1)[1] in axis_factors
        if not (env in ci.ALWAYS or env in ci.PYTHONS or env in ci.COVERED or rotated):
            never.append(env)
    assert not never, f"tox.ini's env_list has envs CI never runs: {never} (see ci_envs.py)"


def test_every_axis_member_is_a_factor_tox_ini_pins() -> None:
    deps = _tox()["testenv"]["deps"]
    pinned = set(re.findall(r"^\s*(\w+):", deps, flags=re.MULTILINE))
    ci = _ci_envs()
    missing = [factor for axis in ci.AXES.values() for factor in axis if factor not in pinned]
    assert not missing, f"ci_envs.py rotates factors tox.ini does not define: {missing}"


def test_consecutive_commits_run_every_member_of_every_axis() -> None:
    ci = _ci_envs()
    longest = max(len(ci.PYTHONS), *(len(axis) for axis in ci.AXES.values()))
    ran = {env for count in range(100, 100 + longest) for env in ci.choose(count)[0]}
    factors_ran = {factor for env in ran for factor in env.split("-")}
    for axis in [ci.PYTHONS, *ci.AXES.values()]:
        assert set(axis) <= factors_ran | ran, f"some of {axis} never ran in {longest} commits"


def test_a_commit_runs_the_same_envs_every_time() -> None:
    ci = _ci_envs()
    assert ci.choose(57) == ci.choose(57)
    assert ci.choose(57)[0] != ci.choose(58)[0]
