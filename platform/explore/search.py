# Searching placements of host events (race-explorer.md §2.3, §3.2):
#   exhaustive  iterative deepening on k (the number of injected events: 1, then 2, ...), one
#               placement per conflict segment; the first counterexample has the fewest events
#   pct         for k >= 3: each run draws its k placements uniformly among the conflicting
#               steps (the segment ends) of the run without events -- PCT's change points with
#               one vCPU, counted over conflicting steps only (taPCT, SKI)
#   random      Hypothesis draws the k placements up front (uniform over enabled points) and
#               shrinks a failure; ddmin and canonical placement follow
# Sharding (--shard i/S, or pytest-xdist over parametrised shard ids): shard i explores the
# first-event segments whose rank is i mod S, with their whole subtrees (exhaustive), or the
# runs whose number is i mod S (pct, random: seeded per shard).
import json
import random
import time
from dataclasses import dataclass, field

from . import events as E
from . import monitors
from .conflict import enabled_count, segments, width
from .record import P_ST, P_W, Placement, execute
from .schedule import Schedule, display_path, file_hash, runtime_hash

BUDGET_SLACK_NS = 50_000_000


class ExploreError(Exception):
    """A usage problem (bad events, missing Hypothesis, ...), reported without a traceback."""


@dataclass
class Finding:
    violation: monitors.Violation
    placements: list
    record: object
    how: str

    @property
    def k(self):
        return len(self.placements)


@dataclass
class Report:
    mode: str
    kinds: list
    max_events: int
    runs: int = 0  # runs executed, the event-free one included
    levels: dict = field(default_factory=dict)  # k -> runs made at that k
    space: dict = field(default_factory=dict)  # k -> runs the pruned search of level k takes
    plain: dict = field(default_factory=dict)  # k -> placements without pruning (counted)
    found_at: int = 0  # the run (1-based, the event-free one included) that found it
    finding: Finding | None = None
    elapsed: float = 0.0
    base: object = None
    schedule: str = ""
    notes: list = field(default_factory=list)

    @property
    def plain_total(self):
        """1 + the plain placements of every level counted (None: not counted)."""
        if not self.plain:
            return None
        return 1 + sum(self.plain.values())

    @property
    def space_total(self):
        """1 + the pruned search's runs over the levels whose plain size is counted."""
        if not self.plain:
            return None
        return 1 + sum(self.space[k] for k in self.plain if k in self.space)


class Explorer:
    def __init__(self, target, kinds=None, max_events=2, stub_points=True, prune=True,
                 shard=(0, 1), jsonl=None, progress=None):  # fmt: skip
        from micropv import boards

        self.target = target
        arch = boards.get(target.board).arch
        if arch != "x86_64":
            raise ExploreError(f"board {target.board}: guest runs are explored on x86_64 boards "
                               f"only so far ({arch}: see docs/explore.md, host-internal races)")  # fmt: skip
        self.kinds = list(kinds) if kinds is not None else self.default_kinds()
        if not self.kinds:
            raise ExploreError("no host events to place: the guest's backend() binds no "
                               "port and --events is empty")  # fmt: skip
        self.max_events = max_events
        self.stub_points = stub_points
        self.prune = prune
        self.shard = shard
        self.jsonl = jsonl
        self.progress = progress
        self.runs = 0
        self.base = None
        self.base_kind = None
        self._hash = None

    # Runs ---------------------------------------------------------------------------------------
    def default_kinds(self):
        """Every port the guest's backend() offers on dom0, plus the vCPU timer."""
        from micropv import boards

        from ..machine import Machine

        backend = getattr(self.target.module, "backend", None)
        if backend is None:
            return [E.Timer()]
        m = Machine(boards.get(self.target.board))
        backend(m, dict(self.target.args))
        return E.default_kinds(m)

    def execute(self, placements, detail=False):
        rec = execute(self.target, self.kinds, placements, stub_points=self.stub_points,
                      detail=detail, skip_plain=self.prune)  # fmt: skip
        found = monitors.check(rec, self.base_kind)
        self.runs += 1
        if self.jsonl is not None:
            self.jsonl.write(json.dumps({
                "ev": [str(p) for p in placements],
                "outcome": rec.outcome.kind, "status": rec.status,
                "violations": [v.kind for v in found],
            }) + "\n")  # fmt: skip
        if self.progress is not None and self.runs % 200 == 0:
            self.progress(f"  ... {self.runs} runs")
        return rec, found

    def run_base(self):
        if self.target.budget_ns is None:
            # A virtual-time budget for every run, from a first run without one: injected
            # events add handler runs, not milliseconds, so twice that plus 50 ms leaves
            # room (a 10 ms poll timeout, say) and still ends a guest spinning for an event
            # that was lost. Replays compute the same budget.
            probe = execute(self.target, self.kinds, [], stub_points=False)
            self.target.budget_ns = 2 * probe.virtual_ns + BUDGET_SLACK_NS
        rec, found = self.execute([])
        self.base = rec
        self.base_kind = rec.outcome.kind if rec.outcome.kind in ("deadlock", "budget") else None
        if self.base_kind is not None:
            found = monitors.check(rec, self.base_kind)
        return rec, found

    def schedule(self, placements):
        t = self.target
        if self._hash is None:
            self._hash = (file_hash(t.guest), runtime_hash())
        return Schedule(display_path(t.guest), self._hash[0], self._hash[1], t.board,
                        t.resolved_options(), dict(t.args), t.seed, list(placements))  # fmt: skip

    def _owned(self, rank):
        i, s = self.shard
        return rank % s == i

    # Exhaustive -----------------------------------------------------------------------------------
    def _children(self, placed, rec):
        """The placements one more event can take after `placed` in rec: one per segment,
        where the event is enabled. Yields (kind index, start, end)."""
        lo = rec.index(placed[-1].label) if placed else 0
        for ki, kind in enumerate(self.kinds):
            for s, e in segments(rec, ki, kind, lo, self.prune):
                if rec.points[e][P_ST][ki] & E.ENABLED:
                    yield ki, s, e

    def exhaustive(self, want=None, max_k=None):
        """Iterative deepening on k, up to max_k (default: max_events). A counterexample at k
        stops the search, but level k is still run to its end when k < max_k, so that the
        size of the k+1 search, with and without pruning, can be reported. want: only
        violations of this kind count."""
        t0 = time.perf_counter()
        top = self.max_events if max_k is None else max_k
        rep = Report("exhaustive" if self.prune else "plain", self.kinds, top)
        base, found = self.run_base()
        rep.base = base
        if found:
            rep.finding = Finding(found[0], [], base, "the run without injected events")
            return self._done(rep, t0)
        nodes = [([], base)]
        for k in range(1, top + 1):
            work = []
            for placed, rec in nodes:
                for ki, s, e in self._children(placed, rec):
                    if k == 1 and not self._owned(len(work)):
                        work.append(None)
                        continue
                    work.append((placed + [Placement(self.kinds[ki], rec.label(e))], ki, s, e))
            work = [w for w in work if w is not None]
            rep.space[k] = len(work)
            rep.levels[k] = 0
            nxt = []
            for child, ki, s, e in work:
                crec, found = self.execute(child)
                rep.levels[k] += 1
                if want is not None:
                    found = [v for v in found if v.kind == want]
                if found and rep.finding is None:
                    rep.finding = Finding(found[0], child, crec, f"exhaustive, k={k}")
                    rep.found_at = self.runs
                    if k == top:
                        break
                nxt.append((child, crec, ki, s, e))
            if k == 1:
                rep.plain[1] = sum(width(self.base, s, e) for _, _, s, e in work)
                if top >= 2 and len(nxt) == len(work):
                    rep.plain[2] = self._plain2(nxt)
            if rep.finding is not None:
                if k < top:  # the next level's size, counted but not run
                    rep.space[k + 1] = sum(1 for child, crec, *_ in nxt
                                           for _ in self._children(child, crec))  # fmt: skip
                break
            nodes = [(child, crec) for child, crec, *_ in nxt]
        return self._done(rep, t0)

    def _plain2(self, firsts):
        """Placements of two events a plain (unpruned) enumeration would try, counted from the
        level-1 runs: equivalent placements share their segment's run, so after a first event
        at q in segment [s, e] the second one's choices are the points in [q, e) of the run
        without it plus the points from e on in the segment's run."""
        base = self.base
        kinds = self.kinds
        total = 0
        for child, crec, ki, s, e in firsts:
            seg = base.points[s : e + 1]
            n = sum(p[P_W] for p in seg)  # choice points in the segment; e is the last one
            for kj, kind2 in enumerate(kinds):
                after = enabled_count(crec, kj, crec.index(child[-1].label))
                inside = 0
                if not (kind2.moves_time and kinds[ki] == kind2):  # else: not armed after
                    # a first event at the x-th point of the segment, a second one at a point
                    # from x up to (not including) e: x-th.. of the expanded positions
                    flags = [bool(p[P_ST][kj] & E.ENABLED) for p in seg for _ in range(p[P_W])]
                    run = 0
                    for x in range(n - 2, -1, -1):
                        run += flags[x]
                        inside += run
                total += inside + n * after
        return total

    # PCT ------------------------------------------------------------------------------------------
    def pct(self, runs, depth=None, seed=0):
        """runs random schedules of `depth` events (default: max_events), each event at a
        conflicting step of the event-free run, drawn uniformly."""
        from .minimise import minimise

        t0 = time.perf_counter()
        depth = depth or self.max_events
        rep = Report("pct", self.kinds, depth)
        base, found = self.run_base()
        rep.base = base
        if found:
            rep.finding = Finding(found[0], [], base, "the run without injected events")
            return self._done(rep, t0)
        cands = []
        for ki, kind in enumerate(self.kinds):
            for s, e in segments(base, ki, kind, 0, True):
                st = base.points[e][P_ST][ki]
                if st & E.ENABLED:
                    cands.append((e, ki))
        rep.notes.append(f"{len(cands)} conflicting placements (segment ends) of "
                         f"{len(base.points)} points")  # fmt: skip
        if not cands:
            return self._done(rep, t0)
        rng = random.Random(seed * 7919 + self.shard[0])
        rep.levels[depth] = 0
        for r in range(runs):
            if not self._owned(r):
                continue
            picks = sorted(rng.sample(cands, min(depth, len(cands))))
            placements = [Placement(self.kinds[ki], base.label(e)) for e, ki in picks]
            rec, found = self.execute(placements)
            rep.levels[depth] += 1
            if found:
                finding = Finding(found[0], placements, rec, f"pct, run {r}")
                rep.finding = minimise(self, finding)
                return self._done(rep, t0)
        return self._done(rep, t0)

    # Random (Hypothesis) --------------------------------------------------------------------------
    def random(self, runs, seed=0):
        try:
            import hypothesis
            from hypothesis import HealthCheck, Phase, given, settings
            from hypothesis import strategies as st
        except ImportError:
            raise ExploreError("--mode random needs Hypothesis (a test extra): "
                               "pip install 'micropv[test]'") from None  # fmt: skip
        from .minimise import minimise

        t0 = time.perf_counter()
        rep = Report("random", self.kinds, self.max_events)
        base, found = self.run_base()
        rep.base = base
        if found:
            rep.finding = Finding(found[0], [], base, "the run without injected events")
            return self._done(rep, t0)
        enabled = {ki: [j for j, p in enumerate(base.points) if p[P_ST][ki] & E.ENABLED]
                   for ki in range(len(self.kinds))}  # fmt: skip
        usable = [ki for ki in enabled if enabled[ki]]
        if not usable:
            return self._done(rep, t0)
        one = st.sampled_from(usable).flatmap(
            lambda ki: st.tuples(st.just(ki), st.integers(0, len(enabled[ki]) - 1))
        )
        found_runs = []
        rep.levels[self.max_events] = 0

        @settings(max_examples=runs, database=None, deadline=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink),
                  report_multiple_bugs=False)  # fmt: skip
        @hypothesis.seed(seed * 7919 + self.shard[0])
        @given(st.lists(one, min_size=1, max_size=self.max_events))
        def prop(draws):
            picks = sorted((enabled[ki][x], ki) for ki, x in draws)
            placements = [Placement(self.kinds[ki], base.label(j)) for j, ki in picks]
            rec, found = self.execute(placements)
            rep.levels[self.max_events] += 1
            if found:
                found_runs.append(Finding(found[0], placements, rec, "random (Hypothesis)"))
                raise AssertionError(str(found[0]))

        try:
            prop()
        except AssertionError:
            pass
        except Exception as e:  # Hypothesis' own errors (Flaky, ...): keep what was found
            rep.notes.append(f"Hypothesis stopped: {type(e).__name__}: {e}")
        if found_runs:
            rep.finding = minimise(self, found_runs[-1])
        return self._done(rep, t0)

    # -----------------------------------------------------------------------------------------------
    def replay(self, placements):
        rec, found = self.execute(placements)
        return rec, found

    def _done(self, rep, t0):
        rep.runs = self.runs
        rep.elapsed = time.perf_counter() - t0
        if rep.finding is not None:
            rep.schedule = self.schedule(rep.finding.placements).format()
        return rep
