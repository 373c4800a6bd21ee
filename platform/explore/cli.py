# `micropv explore GUEST ...`: search placements of host events for a counterexample, or replay
# one. Exit status 1 when a counterexample is found (printed with a line starting `schedule:`),
# 0 when clean, 2 on a usage error.
#
# A guest file may carry its own defaults for the explorer:
#   EXPLORE = {"args": {"n": 5}, "events": "send:1,timer", "max_events": 2}
import os
import sys

from .. import launch
from .events import parse_events
from .record import Target
from .schedule import Schedule, display_path, file_hash, runtime_hash
from .search import ExploreError, Explorer

EXHAUSTIVE_MAX_K = 2  # beyond this the exhaustive mode goes on with PCT


def add_parser(sub):
    e = sub.add_parser("explore", help="place host events at every interrupt window and look "
                       "for lost wakeups")  # fmt: skip
    e.add_argument("guest", nargs="?", help="a Python guest file (not needed with --replay)")
    e.add_argument("--board", default=None, help="board name (default pvh-x86_64)")
    e.add_argument(
        "--callback",
        choices=("vector", "lapic", "gsi", "intx"),
        help="upcall method (default: the guest's OPTIONS, else vector)",
    )
    e.add_argument(
        "--unmask",
        choices=("hypercall-if-pending", "always-hypercall", "software-resend"),
        help="unmask algorithm",
    )
    e.add_argument("--handlers", choices=("irq", "deferred"), help="handler policy")
    e.add_argument("--clear", choices=("first", "after"), help="when the demux clears pending")
    e.add_argument(
        "--arg",
        action="append",
        metavar="KEY=VALUE",
        help="a value for the guest and its backend (over the guest's EXPLORE args)",
    )
    e.add_argument("--seed", type=int, default=0, help="the guest's seed; also seeds pct/random")
    e.add_argument("--events", metavar="LIST",
                   help="host events to place: send:PORT (a dom0 port the guest's backend() "
                        "set up) and timer, comma-separated (default: every backend port, and "
                        "the timer)")  # fmt: skip
    e.add_argument(
        "--max-events",
        type=int,
        default=None,
        metavar="K",
        help="at most K injected events per run (default 2)",
    )
    e.add_argument(
        "--mode",
        choices=("exhaustive", "pct", "random"),
        default="exhaustive",
        help="exhaustive placement with pruning (default), PCT, or Hypothesis",
    )
    e.add_argument(
        "--runs",
        type=int,
        default=500,
        metavar="N",
        help="runs for --mode pct/random (default 500)",
    )
    e.add_argument(
        "--shard",
        default="0/1",
        metavar="i/S",
        help="explore shard i of S (first-event segments i mod S)",
    )
    e.add_argument("--jsonl", metavar="F", help="write one JSON line per run, and a summary")
    e.add_argument("--replay", metavar="SCHEDULE", help="replay a schedule string and check it")
    e.add_argument(
        "--no-prune",
        action="store_true",
        help="try every placement (the plain enumeration; slow, a cross-check)",
    )
    e.add_argument(
        "--no-stub-points",
        action="store_true",
        help="place events at HAL boundaries only, not inside the runtime's stubs",
    )
    e.add_argument("--quiet", action="store_true", help="no timeline")
    e.set_defaults(fn=main)
    return e


def _parse_shard(text):
    try:
        i, s = (int(x) for x in text.split("/"))
    except ValueError:
        raise ExploreError(f"--shard takes i/S, not {text!r}") from None
    if s < 1 or not 0 <= i < s:
        raise ExploreError(f"--shard {text}: need 0 <= i < S")
    return i, s


def make_target(guest, board=None, options=None, args=None, seed=0):
    """A Target with the guest file's EXPLORE defaults under the caller's values."""
    t = Target(guest, board=board or "pvh-x86_64", options=dict(options or {}), seed=seed)
    cfg = getattr(t.module, "EXPLORE", {}) or {}
    merged = dict(cfg.get("args", {}))
    merged.update(args or {})
    t.args = merged
    return t, cfg


def print_finding(report_or_rec, finding, schedule, out, quiet=False, explorer=None):
    v = finding.violation
    n = finding.k
    out(f"counterexample with {n} injected event{'s' if n != 1 else ''} ({finding.how}):")
    out(f"  {v.kind}: {v.message}")
    if v.why:
        out(f"  why: {v.why}")
    out(f"schedule: {schedule}")
    out(f"replay:   micropv explore --replay '{schedule}'")
    out(f"          pytest --micropv-replay='{schedule}'")
    if not quiet and explorer is not None:
        from . import timeline

        rec, _ = explorer.execute(finding.placements, detail=True)
        out("")
        for line in timeline.build(rec, None):
            out("  " + line)


def _summary(rep, out):
    if rep.mode != "exhaustive":
        what = {"pct": "PCT", "random": "Hypothesis, shrinking included",
                "plain": "every placement, no pruning"}[rep.mode]  # fmt: skip
        out(f"runs: {rep.runs} ({what}); {rep.elapsed:.1f} s")
        return
    for k in sorted(set(rep.levels) | set(rep.space)):
        made = rep.levels.get(k, 0)
        space = rep.space.get(k)
        plain = rep.plain.get(k)
        line = f"  k={k}: {made} runs"
        if space is not None and space != made:
            line += f" (a full search: {space})"
        if plain is not None and space:
            line += f"; without pruning {plain} placements: {plain / space:.1f}x more"
        out(line)
    line = f"runs: {rep.runs} with pruning"
    if rep.found_at:
        line += f" (the counterexample at run {rep.found_at})"
    if rep.plain_total is not None:
        full = rep.space_total
        line += (f"; a full search k <= {max(rep.plain)}: {full} runs with pruning, "
                 f"{rep.plain_total} without ({rep.plain_total / full:.1f}x)")  # fmt: skip
    out(line + f"; {rep.elapsed:.1f} s")


def replay(schedule_text, out, quiet=False, stub_points=True):
    s = Schedule.parse(schedule_text)
    if not os.path.isfile(s.guest):
        raise ExploreError(f"the schedule's guest {s.guest} is not here (run from the directory "
                           "it was found in)")  # fmt: skip
    if s.guest_hash and file_hash(s.guest) != s.guest_hash:
        out(f"note: {s.guest} changed since this schedule was found ({s.guest_hash} -> "
            f"{file_hash(s.guest)}); replaying anyway")  # fmt: skip
    if s.rt and runtime_hash() != s.rt:
        out(f"note: the runtime changed since this schedule was found ({s.rt} -> "
            f"{runtime_hash()}); replaying anyway")  # fmt: skip
    t = Target(s.guest, board=s.board, options=s.options, args=s.args, seed=s.seed)
    kinds = list(dict.fromkeys(p.kind for p in s.events))
    ex = Explorer(t, kinds=kinds or None, max_events=len(s.events), stub_points=stub_points)
    ex.run_base()
    rec, found = ex.execute(s.events)
    for k, _, status, _ in rec.fired:
        if status != "fired":
            out(f"note: {s.events[k]} was {status} in this run")
    if not found:
        out(f"replay: clean ({rec.outcome.message}); the schedule no longer fails")
        return 0, rec, found
    from .search import Finding

    print_finding(None, Finding(found[0], s.events, rec, "replay"), s.format(), out,
                  quiet=quiet, explorer=ex)  # fmt: skip
    return 1, rec, found


def main(args):
    out = print
    try:
        if args.replay:
            status, _, _ = replay(args.replay, out, quiet=args.quiet,
                                  stub_points=not args.no_stub_points)  # fmt: skip
            return status
        if not args.guest:
            raise ExploreError("give a guest file, or --replay SCHEDULE")
        options = {"callback": args.callback, "unmask": args.unmask, "handlers": args.handlers,
                   "clear": args.clear}  # fmt: skip
        target, cfg = make_target(args.guest, args.board, options, launch.parse_args(args.arg),
                                  args.seed)  # fmt: skip
        spec = args.events or cfg.get("events")
        kinds = parse_events(spec) if spec else None
        max_events = args.max_events or cfg.get("max_events", 2)
        jsonl = open(args.jsonl, "w") if args.jsonl else None
        try:
            ex = Explorer(target, kinds=kinds, max_events=max_events,
                          stub_points=not args.no_stub_points, prune=not args.no_prune,
                          shard=_parse_shard(args.shard), jsonl=jsonl,
                          progress=lambda s: print(s, file=sys.stderr))  # fmt: skip
            opts = target.resolved_options()
            shard = "" if args.shard == "0/1" else f", shard {args.shard}"
            argtext = " ".join(f"{k}={v}" for k, v in sorted(target.args.items()))
            out(f"micropv explore {display_path(args.guest)}"
                + (f" ({argtext})" if argtext else "") + f": {target.board}, callback "
                f"{opts['callback']}, unmask {opts['unmask']}, handlers {opts['handlers']}, "
                f"clear {opts['clear']}")  # fmt: skip
            out(f"  events {', '.join(k.spec for k in ex.kinds)}; {args.mode}, "
                f"k <= {max_events}{shard}")  # fmt: skip
            if args.mode == "exhaustive":
                # Exhaustive up to k = 2; deeper levels by PCT (--runs runs each).
                rep = ex.exhaustive(max_k=min(max_events, EXHAUSTIVE_MAX_K))
                for depth in range(EXHAUSTIVE_MAX_K + 1, max_events + 1):
                    if rep.finding is not None:
                        break
                    _summary(rep, out)
                    out(f"  k={depth}: PCT, {args.runs} runs")
                    rep = ex.pct(args.runs, depth, args.seed)
            elif args.mode == "pct":
                rep = ex.pct(args.runs, max_events, args.seed)
            else:
                rep = ex.random(args.runs, args.seed)
            for note in rep.notes:
                out(f"  {note}")
            if rep.finding is not None:
                _summary(rep, out)
                print_finding(rep, rep.finding, rep.schedule, out, quiet=args.quiet,
                              explorer=ex)  # fmt: skip
                status = 1
            else:
                out(f"clean: no counterexample with up to {max_events} injected events")
                _summary(rep, out)
                status = 0
            if jsonl is not None:
                import json

                jsonl.write(json.dumps({"summary": True, "runs": rep.runs,
                                        "plain": rep.plain_total, "levels": rep.levels,
                                        "schedule": rep.schedule or None,
                                        "elapsed_s": round(rep.elapsed, 3)}) + "\n")  # fmt: skip
            return status
        finally:
            if jsonl is not None:
                jsonl.close()
    except (ExploreError, ValueError, FileNotFoundError, SyntaxError, ImportError) as e:
        print(f"micropv explore: {e}", file=sys.stderr)
        return 2
