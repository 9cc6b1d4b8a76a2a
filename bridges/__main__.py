"""python -m bridges demo | doctor | bench | report: try, check, measure, chart the hub."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridges", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the mixed-framework demo service on 127.0.0.1")
    demo.add_argument(
        "--port", type=int, default=8080, help="first port to serve on (default 8080)"
    )
    demo.add_argument(
        "--self-test",
        action="store_true",
        help="send real requests to every endpoint, print a report, exit 0 or 1",
    )
    commands.add_parser("doctor", help="report versions, what attaches, and known conflicts")
    bench = commands.add_parser(
        "bench",
        help="run the benchmarks in benchmarks/ and write a report (default to bench-results/)",
    )
    bench.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    bench.add_argument(
        "--only",
        type=lambda value: [name.strip() for name in value.split(",") if name.strip()],
        default=[],
        metavar="NAME[,NAME]",
        help="run only these benchmarks (core is benchmarks/bench_core.py); keep the other "
        "rows of the last report, each under the machine and date it was measured on",
    )
    bench.add_argument(
        "--out", help="where to write the report (default bench-results/, not tracked by git)"
    )
    bench.add_argument(
        "--no-chart", action="store_true", help="write the table only (no matplotlib needed)"
    )
    bench.add_argument(
        "--readme",
        action="store_true",
        help="publish one full run: the table into README.md and docs/benchmarks.md, "
        "the chart to docs/benchmarks.png",
    )

    report = commands.add_parser(
        "report", help="draw a stats dump (bridges.metrics.dump_every) as a PNG chart"
    )
    report.add_argument("dump", help="the JSON-lines file dump_every wrote")
    report.add_argument("-o", "--output", default="loop-share.png", help="the PNG to write")
    report.add_argument("--title", help="the chart's title")
    report.add_argument(
        "--window",
        type=int,
        default=4,
        help="each point averages this many sampling intervals (default 4; 1: raw)",
    )

    args = parser.parse_args(argv)
    if args.command == "report":
        from pathlib import Path

        from ._report import report as draw

        return draw(Path(args.dump), Path(args.output), title=args.title, window=args.window)
    if args.command == "doctor":
        from ._doctor import doctor

        return doctor()
    if args.command == "bench":
        from pathlib import Path

        from ._bench import bench as run_bench

        return run_bench(
            Path.cwd(),
            Path(args.out) if args.out else None,
            quick=args.quick,
            only=args.only,
            readme=args.readme,
            chart=not args.no_chart,
        )
    from ._demo_needs import missing_message

    missing = missing_message()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    from ._demo import demo as run_demo

    return run_demo(port=args.port, self_test=args.self_test)


if __name__ == "__main__":
    sys.exit(main())
