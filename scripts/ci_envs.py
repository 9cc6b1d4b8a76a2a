"""Which tox envs ``.ci/run`` runs: some every time, one of each rotating group by commit count.

The whole matrix (``tox``, every env in tox.ini) takes well over an hour on 2
cores; CI's budget is 90 minutes, and a run should leave slack.  So every run
takes the ALWAYS envs, plus one member of each ROTATE group chosen by a
stable rule: the number of commits on the checked-out branch
(``git rev-list --count HEAD``) modulo the group's size.  Consecutive commits
walk through every member; any run can be reproduced from its commit.

``CI_ENVS=a,b`` runs exactly those envs; ``CI_ENVS=all`` runs the whole matrix.
Prints the comma-separated list on stdout and what was chosen, and why, on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys

ALWAYS = ["warnings", "all-lowest", "conformance", "pre"]
"""Newest everything on 3.13 with deprecations as errors; every lower bound on 3.9; the peers'
suites; the frameworks' pre-releases (allowed to fail)."""

ROTATE = {
    "python": ["py39", "py310", "py311", "py312", "py311-anyio411"],
    "tornado": ["py311-tornado62", "py311-tornado63", "py311-tornado64", "py311-tornado65"],
    "twisted": ["py311-twisted2310", "py311-twisted2411", "py311-twisted2505"],
    "gevent": ["py311-gevent2391", "py311-gevent2411", "py311-gevent2509"],
}
"""py313 is always run, as ``warnings``."""


def every_env() -> list[str]:
    return [*ALWAYS, *(env for group in ROTATE.values() for env in group)]


def choose(commit_count: int) -> tuple[list[str], list[str]]:
    """The envs for this commit, and one line per group saying which member ran."""
    chosen = list(ALWAYS)
    said = [f"every run: {', '.join(ALWAYS)}"]
    for axis, group in ROTATE.items():
        index = commit_count % len(group)
        chosen.append(group[index])
        others = ", ".join(env for env in group if env != group[index])
        said.append(
            f"{axis} axis: {group[index]} (member {index + 1} of {len(group)}, commit count "
            f"{commit_count}); the others run on other commits: {others}"
        )
    return chosen, said


def main() -> int:
    requested = os.environ.get("CI_ENVS", "").strip()
    if requested == "all":
        envs, said = every_env(), ["CI_ENVS=all: the whole matrix"]
    elif requested:
        envs, said = requested.split(","), [f"CI_ENVS={requested}: exactly these"]
    else:
        count = subprocess.run(
            ["git", "rev-list", "--count", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        envs, said = choose(int(count))
    for line in said:
        print(line, file=sys.stderr)
    print(",".join(envs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
