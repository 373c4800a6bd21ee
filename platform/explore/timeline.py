# The two-column counterexample timeline (race-explorer.md §3.4): the guest's vCPU steps on the
# left, host events on the right; the choice point, virtual time and IF on every row; the
# shared words each row changed, before -> after; stretches that touch no event state folded
# into one line; the monitor's line saying why at the top. Built from a detail run (every
# point snapshotted), so it costs one extra run of the failing schedule.
from micropv.runtime.abi import event_channel as EC

from .conflict import shared_words
from .record import (
    HAL,
    IDLE,
    INSN,
    P_ADDR,
    P_IF,
    P_KIND,
    P_OP,
    P_SIZE,
    P_SNAP,
    P_ST,
    P_TLEN,
    label_str,
)

GUEST_W = 52
_EVTCHNOPS = {getattr(EC, n): n for n in dir(EC) if n.startswith("EVTCHNOP_")}
_SCHEDOPS = {0: "yield", 1: "block", 2: "shutdown", 3: "poll", 4: "remote_shutdown",
             5: "shutdown_code", 6: "watchdog"}  # fmt: skip
_GUEST_TRACE = {"hypercall", "inject", "handler_start", "hlt", "wake", "block", "eoi", "ucall"}
_HOST_TRACE = {"set_pending", "timer_fire", "backend_send", "upcall_pending", "poll_timeout"}


def word_name(word):
    if isinstance(word, tuple):
        return f"{'pending' if word[0] == 'P' else 'mask'}[{word[1]}]"
    return {"SEL": "sel", "UP": "upcall_pending", "IRR": "IRR", "ISR": "ISR",
            "TIME": "time"}.get(word, str(word))  # fmt: skip


def _fmt(word, v):
    if isinstance(word, tuple) or word == "SEL":
        return hex(v)
    return str(v)


def diff(a, b):
    """'pending[0] 0x4->0x0, upcall_pending 1->0' for the words that changed from a to b."""
    if not a or not b:
        return ""
    out = []
    for key in b:
        if key in ("t", "IF"):
            continue
        if a.get(key) != b.get(key):
            out.append(f"{word_name(key)} {_fmt(key, a.get(key, 0))}->{_fmt(key, b[key])}")
    return ", ".join(out)


def _hypercall_text(f):
    name = f.get("name", "?")
    op = f.get("op")
    if name == "event_channel_op" and op in _EVTCHNOPS:
        res = f.get("result")
        return _EVTCHNOPS[op] + (f" -> {res}" if res else "")
    if name == "sched_op" and op in _SCHEDOPS:
        slept = f.get("slept") or 0
        return f"SCHEDOP_{_SCHEDOPS[op]}" + (f" (slept {slept} ns)" if slept else "")
    if name == "set_timer_op":
        args = f.get("args") or (0,)
        return f"set_timer_op({args[0]})"
    return name


def _trace_text(ev, rec):
    what, f = ev[2], ev[3]
    if what == "hypercall":
        return _hypercall_text(f)
    if what == "inject":
        return f"interrupt: vector {f.get('vector'):#x} delivered"
    if what == "handler_start":
        return "upcall entry"
    if what == "hlt":
        return "hlt: the vCPU sleeps"
    if what == "wake":
        return "wakes"
    if what == "block":
        return f"blocks in {f.get('what')}"
    if what == "eoi":
        return f"EOI (vector {f.get('vector')})"
    if what == "ucall":
        return f"ucall {f.get('kind')}"
    if what == "note":
        n, v = f.get("what"), f.get("value")
        if n == "handler":
            return f"handler({v}) runs"
        if n == "wait":
            return f"wait opens, deadline {v} ns"
        if n == "woke":
            return "wait ends"
        return None
    if what == "set_pending":
        return f"pending[{f['port']}] " + ("already set: COALESCED" if f.get("coalesced")
                                           else "set")  # fmt: skip
    if what == "timer_fire":
        return "timer fires"
    if what == "backend_send":
        return f"dom0 sends on port {f.get('port')}"
    if what == "upcall_pending":
        return "upcall_pending 0->1"
    if what == "poll_timeout":
        return "poll timeout"
    return None


def _op_text(rec, j):
    p = rec.points[j]
    kind = p[P_KIND]
    lay = rec.layout
    if kind == HAL:
        if p[P_OP] == "run":
            stub = None
            for q in rec.points[j + 1 : j + 3]:
                if q[P_KIND] == INSN and q[P_ADDR] in lay["stubs"]:
                    stub = lay["stubs"][q[P_ADDR]]
            return f"run {stub}" if stub else "run"
        words = shared_words(lay, p[P_ADDR], p[P_SIZE])
        where = ", ".join(word_name(w) for w in dict.fromkeys(words)) or f"{p[P_ADDR]:#x}"
        return f"{p[P_OP]} {where}"
    if kind == IDLE:
        return "idle: nothing to run"
    addr = p[P_ADDR]
    if addr == lay.get("return_point"):
        return "back to Python"
    text = lay.get("insn_text", {}).get(addr, f"insn at {addr:#x}")
    stub = _stub_of(lay, addr)
    return f"{text} ({stub})" if stub and stub != text else text


def _stub_of(lay, addr):
    """The runtime stub (or IDT entry code) an instruction belongs to."""
    best = None
    for start, name in lay["stubs"].items():
        if start <= addr < start + 16 and (best is None or start > best[0]):
            best = (start, name)
    if best is not None:
        return best[1]
    if addr in lay.get("bridges", ()) or any(b - 64 < addr <= b + 40 for b in lay["bridges"]):
        return "interrupt entry"
    return None


def build(rec, violation, schedule=None, context=3):
    """The timeline as a list of lines."""
    pts = rec.points
    lines = []
    if violation is not None:
        lines.append(f"{violation.kind}: {violation.message}")
        if violation.why:
            lines.append(f"why: {violation.why}")
    fired_at = {}
    owned = set()  # trace indices of the injected events' own host work
    for k, pk, status, span in rec.fired:
        if status == "fired":
            fired_at.setdefault(pk, []).append(k)
            if span and span[0] is not None:
                owned.update(range(span[0], span[1]))
    snaps = {pk: (before, after) for pk, before, after in rec.snaps}
    first = next((j for j, p in enumerate(pts) if any(s & 1 for s in p[P_ST])), 0)
    start = max(first - context, 0)
    header = f"{'point':<10} {'t(us)':>9} {'IF':<4} | {'vCPU0':<{GUEST_W}} | host"
    lines.append(header)
    lines.append("-" * len(header))
    if start:
        lines.append(f"{'':<10} {'':>9} {'':<4} | ... {start} steps: boot and set-up, no host event "
                     "possible yet")  # fmt: skip
    quiet = 0

    def flush():
        nonlocal quiet
        if quiet:
            lines.append(f"{'':<10} {'':>9} {'':<4} | ... {quiet} steps touching no event state")
            quiet = 0

    for j in range(start, len(pts)):
        p = pts[j]
        nxt = pts[j + 1] if j + 1 < len(pts) else None
        host = []
        for k in fired_at.get(j, ()):
            b, a = snaps.get(j, (None, None))
            d = diff(b, a)
            _, _, _, span = rec.fired[k]
            what = [_trace_text(ev, rec) for ev in rec.trace[span[0] : span[1]]] if (
                span and span[0] is not None) else []  # fmt: skip
            what = [w for w in what if w and not w.startswith("dom0 sends")]
            text = f"{rec.placements[k].kind.name} injected"
            if what:
                text += ": " + "; ".join(what)
            host.append(text + (f" [{d}]" if d else ""))
        guest = []
        t_hi = nxt[P_TLEN] if nxt is not None else len(rec.trace)
        host_changes = False
        for ti in range(p[P_TLEN], t_hi):
            if ti in owned:
                continue
            ev = rec.trace[ti]
            text = _trace_text(ev, rec)
            if text is None:
                continue
            if ev[2] in _HOST_TRACE:
                host.append(text)
                host_changes = True
            else:
                guest.append(text)
        if nxt is not None:
            after = snaps[j + 1][0] if j + 1 in snaps else nxt[P_SNAP]  # before its events
            changed = diff(p[P_SNAP], after)
        else:
            changed = ""
        reads_shared = (
            p[P_KIND] == HAL
            and p[P_OP] != "run"
            and any(w != "TIME" for w in shared_words(rec.layout, p[P_ADDR], p[P_SIZE]))
        )
        if_change = nxt is not None and nxt[P_IF] != p[P_IF]
        interesting = host or guest or changed or reads_shared or if_change or nxt is None
        if not interesting:
            quiet += 1
            continue
        flush()
        op = _op_text(rec, j)
        left = op
        if guest:
            left += ": " + "; ".join(guest)
        if changed and not host_changes:
            left += f" [{changed}]"
        elif changed:
            host.append(f"[{changed}]")
        t = (p[P_SNAP] or {}).get("t", 0) / 1000
        flag = f"{p[P_IF]}" + (f"->{nxt[P_IF]}" if if_change else "")
        right = "; ".join(host)
        lines.append(f"{label_str(rec.label(j)):<10} {t:>9.3f} {flag:<4} | "
                     f"{left:<{GUEST_W}} | {right}".rstrip())  # fmt: skip
    flush()
    lines.append(f"end: {rec.outcome.message} at {rec.virtual_ns / 1000:.3f} us")
    return lines
