"""klein imported before the hub starts: its import installs Twisted's default reactor."""

from __future__ import annotations

import json

import klein  # noqa: F401 - imports twisted.internet.reactor

import bridges
from bridges import twisted as bt


async def main() -> None:
    pass


if __name__ == "__main__":
    try:
        bridges.run(main, frameworks=["twisted"])
    except bt.ForeignReactorError as exc:
        print(json.dumps({"error": str(exc)}))
