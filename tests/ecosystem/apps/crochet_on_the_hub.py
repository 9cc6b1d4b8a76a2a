"""crochet on the hub: setup() inside bridges.run, wait_for from a worker thread."""

from __future__ import annotations

import asyncio
import json
import threading

import bridges


async def main() -> dict[str, object]:
    import crochet

    crochet.setup()  # a library built on crochet does this; the hub's reactor already runs
    from twisted.internet import reactor, task

    @crochet.wait_for(timeout=10)
    def in_reactor(value: str) -> object:
        return task.deferLater(reactor, 0.01, lambda: f"{value} via the hub's reactor")

    loop = asyncio.get_running_loop()
    results = await asyncio.gather(
        *(loop.run_in_executor(None, in_reactor, f"call {i}") for i in range(5))
    )
    return {"results": results, "reactor": type(reactor).__name__}


if __name__ == "__main__":
    result = bridges.run(main, frameworks=["twisted"])
    result["threads_left"] = sorted(
        t.name for t in threading.enumerate() if t.name == "CrochetReactor"
    )
    print(json.dumps(result))
