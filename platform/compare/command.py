# `micropv compare WORKLOAD ...`: check the request, run the sweep, print and write the rows.
# Bad requests (an unknown workload, a callback the board lacks, --plot without matplotlib)
# stop before anything runs, with exit status 2, as `micropv run` does.
import sys

from . import plot, report, sweep


def _list(value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def add_parser(sub):
    c = sub.add_parser("compare", help="run a workload across callback methods and policies",
                       description="Run WORKLOAD once per combination of callback method and "
                       "guest policies and print one table of metrics measured from each "
                       "run's trace (docs/compare.md).")  # fmt: skip
    c.add_argument("workload", help="storm, pingpong, timer, mixed (examples/), or a path")
    c.add_argument("--board", default="pvh-x86_64", help="board name (default pvh-x86_64)")
    c.add_argument(
        "--callbacks",
        metavar="A,B",
        help="callback methods (default: the board's delivering ones, plus gsi)",
    )
    c.add_argument("--unmask", metavar="X,Y", help="unmask algorithms (default: all three)")
    c.add_argument("--handlers", metavar="irq,deferred", help="handler policies (default irq)")
    c.add_argument("--clear", metavar="first,after", help="clear policies (default first)")
    c.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="run each combination with seeds 0..N-1 (default 1)",
    )
    c.add_argument(
        "--arg",
        action="append",
        metavar="KEY=VALUE",
        help="a value for the workload (rt.config) and its backend; repeatable",
    )
    c.add_argument(
        "--max-virtual-ns",
        type=int,
        default=sweep.DEFAULT_BUDGET_NS,
        metavar="N",
        help="virtual-time budget of each run (default 10 s)",
    )
    c.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes (default: one per core; 1 runs in this process)",
    )
    c.add_argument("--json", metavar="F", help="write the rows as JSON to F")
    c.add_argument("--csv", metavar="F", help="write the rows as CSV to F")
    c.add_argument(
        "--plot",
        metavar="F.png",
        help="draw latency CDFs and exits per event to F.png (needs matplotlib)",
    )
    c.add_argument("--plain", action="store_true", help="a plain-text table even with rich")
    c.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return c


def main(args, out=None):
    from ..launch import parse_args

    out = out or sys.stdout
    try:
        specs = sweep.combinations(
            args.workload, board=args.board, callbacks=_list(args.callbacks),
            unmask=_list(args.unmask), handlers=_list(args.handlers), clear=_list(args.clear),
            seeds=args.seeds, args=parse_args(args.arg), budget_ns=args.max_virtual_ns)  # fmt: skip
    except ValueError as e:
        print(f"micropv compare: {e}", file=sys.stderr)
        return 2
    if args.plot and not plot.available():
        print(f"micropv compare: {plot.MISSING}", file=sys.stderr)
        return 2
    results = sweep.run_all(specs, jobs=args.jobs, progress=None if args.quiet else sys.stderr)
    rows = [row for row, _ in results]
    report.print_table(rows, out, plain=args.plain)
    if args.json:
        report.write_json(rows, args.json)
    if args.csv:
        report.write_csv(rows, args.csv)
    if args.plot:
        plot.write_png(results, args.plot)
    return 0
