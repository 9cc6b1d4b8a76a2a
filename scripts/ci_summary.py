"""Print one line per tox env from tox's ``--result-json``: its outcome and its test counts.

``.ci/run`` calls it after ``tox run``.  The counts come from each env's pytest
summary line; the peers' conformance counts from the lines the conformance tests
print.  The last line is the total, in pytest's words ("N passed, N failed").
Exits 1 when an env that must pass failed (``pre`` may fail: tox.ini marks it
``ignore_outcome``).

Usage: ``python scripts/ci_summary.py RESULT_JSON [ENV_THAT_MAY_FAIL ...]``
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

SUMMARY = re.compile(r"^=+ (?P<counts>.+?) in [\d.]+s(?: \([^)]*\))? =+\s*$", re.MULTILINE)
COUNT = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?|deselected)")
CONFORMANCE = re.compile(
    r"^(?:Twisted reactor conformance|gevent conformance|eventlet conformance).*$", re.MULTILINE
)
KINDS = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def counts_of(output: str) -> Counter[str]:
    """The counts of the last pytest summary line in ``output`` (empty when pytest never ended)."""
    found = SUMMARY.findall(output)
    counted: Counter[str] = Counter()
    if found:
        for number, kind in COUNT.findall(found[-1]):
            counted["error" if kind == "errors" else kind] += int(number)
    return counted


def summarise(result: dict[str, Any], may_fail: set[str]) -> tuple[list[str], bool]:
    ran = {
        env: journal
        for env, journal in result.get("testenvs", {}).items()
        if not env.startswith(".") and "result" in journal  # not the package envs, nor unrun ones
    }
    width = max([len("tox env"), *map(len, ran)])
    lines = [f"{'tox env':<{width}} {'outcome':<16} {'minutes':>7}  " + "  ".join(KINDS)]
    total: Counter[str] = Counter()
    conformance: list[str] = []
    ok = True
    for env, journal in ran.items():
        executed = journal.get("test", [])
        commands = [c for c in executed if c.get("run_id", "").startswith("commands[")]
        output = "".join(str(c.get("output", "")) + str(c.get("err", "")) for c in commands)
        counted = counts_of(output)
        failed = not journal["result"].get("success") or not commands or not counted
        outcome = "ok" if not failed else ("failed (allowed)" if env in may_fail else "FAILED")
        ok = ok and (not failed or env in may_fail)
        minutes = float(journal["result"].get("duration", 0)) / 60
        lines.append(
            f"{env:<{width}} {outcome:<16} {minutes:>7.1f}  "
            + "  ".join(f"{counted[kind]:>{len(kind)}}" for kind in KINDS)
        )
        conformance += [f"{env}: {line}" for line in CONFORMANCE.findall(output)]
        if env not in may_fail:
            total.update(counted)
    lines += ["", *conformance, ""]
    lines.append(f"expected failures (strict xfail) in all: {total['xfailed']}")
    lines.append(
        f"total: {total['passed']} passed, {total['failed'] + total['error']} failed, "
        f"{total['skipped']} skipped"
    )
    return lines, ok


def main(argv: list[str]) -> int:
    result = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    lines, ok = summarise(result, set(argv[1:]))
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
