"""A library that installs Twisted's default reactor before the hub starts.

``python foreign_reactor.py klein``: klein's import imports the reactor;
``python foreign_reactor.py crochet``: ``crochet.setup()`` runs it in a thread.
"""

from __future__ import annotations

import json
import os
import sys

if sys.argv[1] == "klein":
    import klein  # noqa: F401 - imports twisted.internet.reactor
else:
    import crochet

    crochet.setup()

import bridges
from bridges import twisted as bt


async def main() -> None:
    pass


if __name__ == "__main__":
    try:
        bridges.run(main, frameworks=["twisted"])
    except bt.ForeignReactorError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
    os._exit(0)  # crochet's reactor thread would keep the process alive
