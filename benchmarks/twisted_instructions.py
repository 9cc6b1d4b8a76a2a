"""CPU instructions per echo round trip of bench_twisted.py's servers, C included (valgrind).

Usage::

    python benchmarks/twisted_instructions.py                     # hub, plain asyncio, both loops
    python benchmarks/twisted_instructions.py hub asyncio-uvloop  # some servers
    python benchmarks/twisted_instructions.py --round-trips 4000

Python calls per round trip (bench_twisted_calls.py) miss what a call costs
inside: CPython reads an attribute in a few instructions or in hundreds
depending on whether it could specialise the access.  Valgrind's callgrind
counts every instruction the server process executes, the interpreter and
the kernel's user-side libraries included, the same on a busy machine as on
a quiet one.  Each server of bench_twisted.py (``--child KIND serve``) runs
under callgrind twice, once serving only a warm-up and once the warm-up
plus N round trips of the 50-connection echo (one 64-byte message in flight
each); the difference divided by N is the cost of a round trip.  Under
valgrind the server is the slow side, so every loop pass finds many
connections ready: the figures are for a busy server.  Needs ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import bench_twisted

SERVERS = ["asyncio", "hub", "asyncio-uvloop", "hub-uvloop"]
WARM_UP = 500
CONNECTIONS = 50


def instructions(kind: str, round_trips: int) -> int:
    """Instructions the ``kind`` server executes for the warm-up plus ``round_trips``."""
    with tempfile.TemporaryDirectory() as scratch:
        proc = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={os.path.join(scratch, 'out')}",
                sys.executable,
                bench_twisted.__file__,
                "--child",
                kind,
                "serve",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            bench_twisted.echo_many(port, proc.pid, CONNECTIONS, WARM_UP)
            if round_trips:
                bench_twisted.echo_many(port, proc.pid, CONNECTIONS, round_trips)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=120)
            os.sched_setaffinity(0, bench_twisted.ALL_CPUS)
    found = re.search(r"Collected : (\d+)", err)
    if found is None:
        raise RuntimeError(f"callgrind reported no count for {kind}:\n{err[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("servers", nargs="*", default=SERVERS, help=f"of {SERVERS}")
    parser.add_argument("--round-trips", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    for kind in args.servers:
        per_round_trip = (
            instructions(kind, args.round_trips) - instructions(kind, 0)
        ) / args.round_trips
        print(f"{kind:>15}: {per_round_trip:8,.0f} instructions per round trip", flush=True)


if __name__ == "__main__":
    main()
