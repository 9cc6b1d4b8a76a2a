"""Which tox envs ``.ci/run`` runs: some every time, and each version axis's member by commit count.

The whole matrix (``tox``: every env of tox.ini's env_list) takes well over an
hour on 2 cores; CI's budget is 90 minutes, and a run should leave slack.  So
every run takes the ALWAYS envs, one Python of PYTHONS, and one env that pins
one version of *each* framework axis at once (tox builds it from the factors,
e.g. ``py311-tornado63-twisted2411-gevent2509-anyio411``).  Which member of each
axis runs follows a stable rule: the number of commits on the checked-out
branch (``git rev-list --count HEAD``) modulo the axis's length.  Consecutive
commits walk through every member; any run can be reproduced from its commit.

``CI_ENVS=a,b`` runs exactly those envs; ``CI_ENVS=all`` runs tox.ini's env_list.
Prints the comma-separated list on stdout and what was chosen, and why, on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys

ALWAYS = ["warnings", "all-lowest", "conformance", "ecosystem", "pre"]
"""Newest everything on 3.13 with deprecations as errors; every lower bound on 3.9; the peers'
suites; third-party software on the hub; the frameworks' pre-releases (allowed to fail)."""

PYTHONS = ["py39", "py310", "py311", "py312"]

COVERED = {"py313": "warnings"}
"""Envs of tox.ini's env_list that CI runs under another name: 3.13 with the newest frameworks."""

AXES = {
    "tornado": ["tornado62", "tornado63", "tornado64", "tornado65"],
    "twisted": ["twisted2310", "twisted2411", "twisted2505"],
    "gevent": ["gevent2391", "gevent2411", "gevent2509"],
    "anyio": ["anyio411"],
    "eventlet": ["eventlet0361", "eventlet0413"],
    "gunicorn": ["gunicorn27"],
}
"""Each framework axis as tox.ini factors; the newest versions run in every other env."""

AXIS_PYTHON = "py311"


def choose(commit_count: int) -> tuple[list[str], list[str]]:
    """The envs for this commit, and one line per axis saying which member runs and why."""
    python = PYTHONS[commit_count % len(PYTHONS)]
    factors = [axis[commit_count % len(axis)] for axis in AXES.values()]
    combined = "-".join([AXIS_PYTHON, *factors])
    said = [
        f"every run: {', '.join(ALWAYS)}",
        f"rotation by commit count {commit_count} (count modulo each axis's length):",
        f"  python: {python} of {', '.join(PYTHONS)}",
    ]
    said += [
        f"  {name}: {factor} of {', '.join(axis)}"
        for (name, axis), factor in zip(AXES.items(), factors)
    ]
    said.append(f"  the framework axes run together in {combined}")
    return [*ALWAYS, python, combined], said


def main() -> int:
    requested = os.environ.get("CI_ENVS", "").strip()
    if requested == "all":
        envs, said = ["ALL"], ["CI_ENVS=all: tox.ini's whole env_list"]
    elif requested:
        envs, said = requested.split(","), [f"CI_ENVS={requested}: exactly these"]
    else:
        count = subprocess.run(
            ["git", "rev-list", "--count", "HEAD"], capture_output=True, text=True, check=True
        ).stdout
        envs, said = choose(int(count))
    for line in said:
        print(line, file=sys.stderr)
    print(",".join(envs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
