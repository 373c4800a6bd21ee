# Minimising a counterexample found by random or PCT search (race-explorer.md §3.1): ddmin over
# its events (Zeller & Hildebrandt) while the same check still fails, then move each event to
# its conflict segment's representative -- the last equivalent placement, right before the
# step it races with -- so two reports of one bug print the same schedule string.
from . import events as E
from .conflict import segments
from .monitors import covers
from .record import P_ST, Placement
from .search import Finding


def ddmin(items, fails):
    """A 1-minimal sublist of items (order kept) for which fails(sublist) holds."""
    items = list(items)
    n = 2
    while len(items) >= 2:
        size = -(-len(items) // n)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        for i, chunk in enumerate(chunks):
            if fails(chunk):
                items, n = chunk, 2
                break
            rest = [x for j, c in enumerate(chunks) if j != i for x in c]
            if n > 2 and fails(rest):
                items, n = rest, max(n - 1, 2)
                break
        else:
            if n >= len(items):
                break
            n = min(2 * n, len(items))
    return items


def canonical(explorer, placements, kind):
    """Move each event, in order, to its segment's representative in the run without it,
    keeping the move when the same check still fails. Returns the new placements."""
    placements = list(placements)
    for i in range(len(placements)):
        without = placements[:i] + placements[i + 1 :]
        rec, _ = explorer.execute(without)
        at = rec.index(placements[i].label)
        if at is None:
            continue
        lo = rec.index(placements[i - 1].label) if i else 0
        if lo is None or lo > at:
            continue
        kinds = explorer.kinds
        ki = kinds.index(placements[i].kind)
        for s, e in segments(rec, ki, kinds[ki], lo, True):
            if s <= at <= e:
                break
        else:
            continue
        label = rec.label(e)
        if label == placements[i].label or not rec.points[e][P_ST][ki] & E.ENABLED:
            continue
        if i + 1 < len(placements) and label > placements[i + 1].label:
            continue
        moved = placements[:i] + [Placement(placements[i].kind, label)] + placements[i + 1 :]
        _, found = explorer.execute(moved)
        if covers(found, kind):
            placements = moved
    return placements


def minimise(explorer, finding):
    """ddmin, then canonical placements; re-runs the result for its record. Labels count
    every HAL boundary, handlers' included, so dropping an early event shifts the points the
    later ones meant: ddmin then keeps both. For that case a few events more: when two or
    three remain, the exhaustive search for fewer (k = 1, then 2) settles it, as iterative
    deepening would have."""
    kind = finding.violation.kind
    n0 = len(finding.placements)

    def fails(sub):
        _, found = explorer.execute(sub)
        return covers(found, kind)

    small = ddmin(finding.placements, fails) if n0 > 1 else finding.placements
    how = finding.how
    if 1 < len(small) <= 3:
        from .search import Explorer

        sub = Explorer(explorer.target, explorer.kinds, max_events=len(small) - 1,
                       stub_points=explorer.stub_points, prune=True)  # fmt: skip
        rep = sub.exhaustive(want=kind)
        explorer.runs += sub.runs
        if rep.finding is not None:
            small = rep.finding.placements
            how += f", then exhaustive k <= {len(small)}"
    small = canonical(explorer, small, kind)
    rec, found = explorer.execute(small)
    match = [v for v in found if v.kind == kind]
    if not match:  # cannot happen for deterministic runs; keep the original then
        return finding
    if len(small) < n0:
        how += f": {n0} -> {len(small)} events"
    return Finding(match[0], small, rec, how)
