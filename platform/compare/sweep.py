# Running one workload for every combination of callback method and guest policies. Each run
# is a fresh machine, traced, and measured where it ran; only its row and latencies travel
# back. Runs are independent and deterministic, so a process pool changes the wall time and
# nothing else: results are put back in combination order, whatever order they finish in.
import itertools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from micropv import boards

from .metrics import measure

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UNMASKS = ("hypercall-if-pending", "always-hypercall", "software-resend")
HANDLERS = ("irq", "deferred")
CLEARS = ("first", "after")
DEFAULT_BUDGET_NS = 10 * 10**9
STALL_S = 30.0  # as `micropv run`: a guest stuck in pure Python ends instead of hanging
# The columns of a row, in order: the combination, how the run ended, then the metrics.
KEYS = ("workload", "board", "callback", "unmask", "handlers", "clear", "seed")


class UsageError(ValueError):
    """A sweep that cannot be run as asked (the CLI exits 2)."""


def resolve_workload(name):
    """A path to a guest file, or the name of one in examples/ (storm, pingpong, ...)."""
    path = Path(name)
    if path.suffix == ".py" or os.sep in name:
        if not path.is_file():
            raise UsageError(f"no such workload file: {name}")
        return str(path)
    candidate = EXAMPLES / f"{name}.py"
    if not candidate.is_file():
        known = sorted(p.stem for p in EXAMPLES.glob("*.py")) if EXAMPLES.is_dir() else []
        raise UsageError(f"unknown workload {name!r}; known: {', '.join(known) or 'none'}")
    return str(candidate)


def default_callbacks(board):
    """The methods the board delivers with, plus gsi to show what a non-delivering one does."""
    methods = [c for c in board.callbacks if c not in board.inert_callbacks]
    if "gsi" in board.callbacks:
        methods.append("gsi")
    return tuple(methods)


def _choose(given, allowed, what):
    values = tuple(given) if given else ()
    bad = [v for v in values if v not in allowed]
    if bad:
        raise UsageError(f"unknown {what} {', '.join(map(repr, bad))}; "
                         f"choose from {', '.join(allowed)}")  # fmt: skip
    if len(set(values)) != len(values):
        raise UsageError(f"{what} listed twice: {', '.join(values)}")
    return values


def combinations(workload, board="pvh-x86_64", callbacks=None, unmask=None, handlers=None,
                 clear=None, seeds=1, args=None, budget_ns=DEFAULT_BUDGET_NS):  # fmt: skip
    """The runs of a sweep, in the order their rows are reported: one spec dict each."""
    try:
        b = boards.get(board)
    except ValueError as e:
        raise UsageError(str(e)) from None
    path = resolve_workload(workload)
    bad = [c for c in callbacks or () if c not in b.callbacks]
    if bad:
        raise UsageError(f"board {b.name} has no callback method {', '.join(map(repr, bad))}; "
                         f"it has {', '.join(b.callbacks)}")  # fmt: skip
    cbs = _choose(callbacks, b.callbacks, "callback method") or default_callbacks(b)
    ums = _choose(unmask, UNMASKS, "unmask algorithm") or UNMASKS
    hs = _choose(handlers, HANDLERS, "handler policy") or ("irq",)
    cls = _choose(clear, CLEARS, "clear policy") or ("first",)
    if seeds < 1:
        raise UsageError("--seeds must be at least 1")
    name = Path(path).stem
    return [
        {
            "workload": name,
            "path": path,
            "board": b.name,
            "callback": cb,
            "unmask": um,
            "handlers": h,
            "clear": cl,
            "seed": seed,
            "args": dict(args or {}),
            "budget_ns": budget_ns,
        }
        for cb, um, h, cl, seed in itertools.product(cbs, ums, hs, cls, range(seeds))
    ]


def run_one(spec):
    """Run one combination and measure it (in a worker process, or here). Returns
    (row, latencies)."""
    from ..launch import run_guest

    options = {k: spec[k] for k in ("callback", "unmask", "handlers", "clear")}
    t0 = time.perf_counter()
    machine, result = run_guest(spec["path"], board=spec["board"], options=options,
                                args=spec["args"], seed=spec["seed"],
                                budget_ns=spec["budget_ns"], trace=True,
                                stall_s=STALL_S)  # fmt: skip
    wall = time.perf_counter() - t0
    row = {k: spec[k] for k in KEYS}
    row["status"] = result.status
    row["outcome"] = result.outcome.kind
    row["virtual_ns"] = result.virtual_ns
    metrics, latencies = measure(machine, result)
    row.update(metrics)
    row["wall_s"] = round(wall, 3)
    return row, latencies


def label(spec):
    return " ".join(str(spec[k]) for k in ("callback", "unmask", "handlers", "clear")) + (
        f" seed {spec['seed']}"
    )


def run_all(specs, jobs=None, progress=sys.stderr):
    """Run every spec; returns [(row, latencies)] in spec order. With more than one spec and
    more than one core, runs go to a process pool (one Unicorn per process: no shared state).
    A line per finished run goes to `progress` (None: quiet)."""
    jobs = jobs or os.cpu_count() or 1
    results = [None] * len(specs)

    def report(i, done):
        if progress is not None:
            row = results[i][0]
            end = "ok" if row["status"] == 0 else f"{row['outcome']} (status {row['status']})"
            print(f"compare: [{done}/{len(specs)}] {label(specs[i])}: {end}, "
                  f"{row['wall_s']:.2f} s", file=progress, flush=True)  # fmt: skip

    if len(specs) > 1 and jobs > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(specs))) as pool:
            futures = {pool.submit(run_one, spec): i for i, spec in enumerate(specs)}
            for done, fut in enumerate(as_completed(futures), 1):
                i = futures[fut]
                results[i] = fut.result()
                report(i, done)
    else:
        for i, spec in enumerate(specs):
            results[i] = run_one(spec)
            report(i, i + 1)
    return results
