"""Fail when a file of the repository names a machine path or a file the repository does not hold.

Users cannot follow a command written with one machine's virtualenv path, or a
pointer to design notes that were never published.  Scanned: every file
under the root except version-control, virtualenv, cache and build folders.
Reported: absolute home, workspace and virtualenv paths; the names of the
project's private notes; relative Markdown links to files that do not exist.

Usage: ``python scripts/check_references.py [ROOT]`` (default: this checkout); exit 1 on a finding.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from pathlib import Path
from typing import Iterator

from stage_checkout import NOT_SOURCE

TEXT_SUFFIXES = {
    ".py",
    ".md",
    ".rst",
    ".txt",
    ".toml",
    ".ini",
    ".cfg",
    ".json",
    ".yml",
    ".yaml",
    ".sh",
    ".tac",
    "",
}

FORBIDDEN = [
    (re.compile(r"(?<![\w.~])/(?:work|root|home|Users)/"), "a machine path"),
    (re.compile(r"(?<![\w.~-])/[\w./-]*/(?:\.?venv|\.ci-venv)/bin/"), "a virtualenv's path"),
    (re.compile(r"\b(?:DESIGN|BENCHMARKING)\.md\b"), "private notes not in the repository"),
    (re.compile(r"\.\./shared\b"), "a folder outside the repository"),
]
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\((?!https?:|mailto:|#)([^)\s#]+)(?:#[^)]*)?\)")


def files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in NOT_SOURCE):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            yield path


def findings(root: Path) -> Iterator[str]:
    for path in files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        where = path.relative_to(root)
        for number, line in enumerate(text.splitlines(), 1):
            for pattern, what in FORBIDDEN:
                match = pattern.search(line)
                if match:
                    yield f"{where}:{number}: {what}: {match.group(0)!r} in {line.strip()[:120]!r}"
                    break
            if path.suffix == ".md":
                for target in MARKDOWN_LINK.findall(line):
                    if not (path.parent / target).exists():
                        yield f"{where}:{number}: a link to a file that does not exist: {target}"


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent
    found = list(findings(root))
    for line in found:
        print(line)
    if found:
        print(
            f"\n{len(found)} reference(s) a user cannot follow: write `python ...` instead of a "
            "machine's path, and put what users need into docs/ instead of naming a file "
            "that is not in the repository."
        )
        return 1
    print(f"no machine path and no reference to a missing file under {root.name or root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
