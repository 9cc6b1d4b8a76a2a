"""crochet.setup() before bridges.run: crochet runs Twisted's default reactor in its thread."""

from __future__ import annotations

import json
import os

import crochet

import bridges
from bridges import twisted as bt

crochet.setup()


async def main() -> None:
    pass


if __name__ == "__main__":
    try:
        bridges.run(main, frameworks=["twisted"])
    except bt.ForeignReactorError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
    os._exit(0)  # crochet's reactor thread would keep the process alive
