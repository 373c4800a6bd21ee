# The checks every explored run gets, read from its record and trace (race-explorer.md §2.2):
#   lost-wakeup  after the last send on a port the guest waits on (bound with a handler and
#                unmasked at the end), its handler runs before the guest blocks for good or
#                the run ends
#   deadline     a wait the runtime declared (HAL.note "wait" / "woke", from block_until) does
#                not stay blocked past its deadline, nor wake long after it
#   hlt-if0      no hlt with interrupts disabled (Xen takes the vCPU down)
#   handler-if1  event handlers run with interrupts off (handlers = irq)
#   eoi          with the lapic method every upcall gets exactly one EOI
#   guest        a failed guest check, a guest exception, a fault, a non-zero exit status,
#                and a run that blocks for good (or exhausts its budget) where the run
#                without injected events did not
from bisect import bisect_right
from dataclasses import dataclass

from .record import HAL, P_ADDR, P_KIND, P_RW, P_SIZE, P_TLEN, label_str

LATE_NS = 1_000_000  # a wake more than 1 ms of virtual time after its deadline is a miss
ORDER = ("lost-wakeup", "deadline", "hlt-if0", "handler-if1", "eoi", "guest-check",
         "guest-error", "fault", "exit-status", "stuck", "budget")  # fmt: skip


@dataclass
class Violation:
    kind: str
    message: str  # one line: what went wrong
    why: str = ""  # one line: why (the wakeup was lost, the wait stayed blocked, ...)
    point: int | None = None  # where, as a point index of the run

    def __str__(self):
        return f"{self.kind}: {self.message}"


def point_of(rec, trace_index):
    """The point whose step contains trace event trace_index (an injected event's own host
    work belongs to the point it was placed at)."""
    for _, pk, status, span in rec.fired:
        if status == "fired" and span and span[0] is not None and span[0] <= trace_index < span[1]:
            return pk
    tl = [p[P_TLEN] for p in rec.points]
    k = bisect_right(tl, trace_index) - 1
    return max(k, 0) if rec.points else None


def where(rec, k):
    return label_str(rec.label(k)) if k is not None and rec.points else "the start"


def _guest_writes(rec, word, after_point, before=None):
    """Point indices in (after_point, before) whose HAL op writes shared word `word`."""
    from .conflict import shared_words

    out = []
    for k in range(after_point + 1, len(rec.points) if before is None else before):
        p = rec.points[k]
        if p[P_KIND] == HAL and "w" in p[P_RW] and word in shared_words(rec.layout, p[P_ADDR],
                                                                          p[P_SIZE]):  # fmt: skip
            out.append(k)
    return out


def _send_source(rec, ti):
    """Who made the set_pending at trace index ti: an injected event, the timer, a backend."""
    for k, _, status, span in rec.fired:
        if status == "fired" and span and span[0] is not None and span[0] <= ti < span[1]:
            return f"injected {rec.placements[k]}"
    for ev in reversed(rec.trace[max(0, ti - 3) : ti]):
        if ev[2] == "timer_fire":
            return "timer expiry"
        if ev[2] == "backend_send":
            return f"backend send on port {ev[3].get('port')}"
    return "a send"


def _ended(rec):
    out = rec.outcome
    if out.kind == "deadlock":
        return "vCPU0 then blocked for good (nothing armed, no event left)"
    return f"the run then ended ({out.message})"


def stranded(rec):
    """An event left pending, unmasked, for a port with a handler, when the vCPU goes to
    sleep -- with nothing that will deliver it: its selector bit clear, upcall_pending clear,
    or (per-vCPU LAPIC vector) upcall_pending set but no vector in the LAPIC. Only an
    unrelated event on the same selector word can still rescue it, by luck."""
    vec = rec.layout.get("upcall_vector")
    for k, ports, sel, up, irr, isr, _ in rec.idles:
        for port, (pending, masked) in sorted(ports.items()):
            if not pending or masked:
                continue
            w = port >> 6
            if not (sel >> w) & 1:
                why = (f"pending[{port}]=1 but selector bit {w} is clear: the send found the "
                       "port masked, so Xen raised nothing, and the guest's unmask"
                       f"{_last_mask_write(rec, port, k)} cleared the mask without re-raising "
                       "the pending event")  # fmt: skip
            elif not up:
                why = (f"pending[{port}]=1 and its selector bit set, but upcall_pending=0: "
                       "no upcall will come")  # fmt: skip
            elif vec and not irr and not isr:
                ups = _guest_writes(rec, "UP", 0, k)
                by = f"; the guest set it itself at {where(rec, ups[-1])}" if ups else ""
                why = (f"pending[{port}]=1 and upcall_pending=1{by}, but no upcall vector is "
                       "in the LAPIC: Xen raises the per-vCPU vector only on its own 0->1 "
                       "change of upcall_pending, so nothing will deliver it")  # fmt: skip
            else:
                continue
            msg = (f"port {port}: an event is stranded as vCPU0 goes to sleep at "
                   f"{where(rec, k)}: nothing will deliver it")  # fmt: skip
            return [Violation("lost-wakeup", msg, why, k)]
    return []


def _last_mask_write(rec, port, before):
    writes = _guest_writes(rec, ("M", port >> 6), 0, before)
    return f" at {where(rec, writes[-1])}" if writes else ""


def lost_wakeups(rec):
    out = stranded(rec)
    if out:
        return out
    final = rec.final
    bind = rec.bind_marks
    handled = {}
    for ti, what, value, _ in rec.notes:
        if what in ("handler", "dispatch"):
            handled[value] = ti
    last_send = {}
    for ti, ev in enumerate(rec.trace):
        if ev[2] == "set_pending" and not any(a <= ti < b for a, b in bind):
            last_send[ev[3]["port"]] = ti
    for port in sorted(rec.handlers):
        if not final["bound"].get(port) or final["masked"].get(port):
            continue
        ti = last_send.get(port)
        if ti is None or handled.get(port, -1) > ti:
            continue
        k = point_of(rec, ti)
        ev = rec.trace[ti]
        src = _send_source(rec, ti)
        msg = (f"port {port}: the last send ({src}, at {where(rec, k)}) was never handled; "
               f"{_ended(rec)}")  # fmt: skip
        out.append(Violation("lost-wakeup", msg, _why_lost(rec, port, ti, k, ev), k))
    return out


def _why_lost(rec, port, ti, k, ev):
    lay = rec.layout
    w = port >> 6
    snap = rec.final["snapshot"]
    pending = bool(rec.final["pending"].get(port))
    sel = bool((snap.get("SEL", 0) >> w) & 1)
    up = snap.get("UP", 0)
    coalesced = ev[3].get("coalesced")
    # Was the port masked when the send arrived? The Xen stub traces no mask, so look at the
    # last guest write of its mask word before the send.
    if coalesced:
        clears = _guest_writes(rec, ("P", w), k)
        if clears and not pending:
            return (f"the send found pending[{port}] still set (the event being handled), so "
                    f"Xen coalesced it; the guest then cleared the bit at "
                    f"{where(rec, clears[0])}, after its handler: the second event is gone")  # fmt: skip
        return (
            f"the send coalesced (pending[{port}] was already set) and no handler ran afterwards"
        )
    vec = lay.get("upcall_vector")
    if pending and up and vec and not snap.get("IRR") and not snap.get("ISR"):
        ups = _guest_writes(rec, "UP", k)
        by = f", the guest set it itself at {where(rec, ups[-1])}" if ups else ""
        return (
            f"pending[{port}]=1 and upcall_pending=1{by}, but no upcall vector is in the "
            "LAPIC: Xen raises the per-vCPU vector only on its own 0->1 change of "
            "upcall_pending, so nothing will ever deliver it"
        )
    if pending and not sel:
        unmasks = _guest_writes(rec, ("M", w), k)
        at = f" at {where(rec, unmasks[0])}" if unmasks else ""
        return (
            f"pending[{port}]=1 but selector bit {w} is clear: the send found the port "
            f"masked, so Xen raised nothing, and the guest's unmask{at} cleared the mask "
            "without re-raising the pending event"
        )
    if pending:
        return (
            f"pending[{port}]=1, selector bit {w}={int(sel)}, upcall_pending={up}: "
            "nothing delivered the upcall"
        )
    return f"pending[{port}] was cleared without its handler running"


def deadlines(rec):
    out = []
    open_wait = None
    for ti, what, value, _ in rec.notes:
        if what == "wait":
            open_wait = (ti, value)
        elif what == "woke" and open_wait is not None:
            t_woke = rec.trace[ti][0]
            deadline = open_wait[1]
            if deadline and t_woke - deadline > LATE_NS:
                k = point_of(rec, ti)
                out.append(Violation("deadline", f"a wait with deadline {deadline} ns woke only "
                                     f"at {t_woke} ns, at {where(rec, k)}", "", k))  # fmt: skip
            open_wait = None
    if open_wait is not None and open_wait[1] and rec.outcome.kind in ("deadlock", "budget"):
        ti, deadline = open_wait
        k = point_of(rec, ti)
        end = len(rec.points) - 1
        fires = [i for i, ev in enumerate(rec.trace) if ev[2] == "timer_fire" and i > ti]
        tport = rec.layout.get("timer_port")
        handled = [t for t, what, value, _ in rec.notes if what == "handler" and value == tport
                   and t > ti]  # fmt: skip
        why = "no timer was armed for it"
        if fires:
            f = point_of(rec, fires[-1])
            why = f"its timer fired at {where(rec, f)}"
            if handled:
                why += (
                    f" and the handler ran at {where(rec, point_of(rec, handled[-1]))}, "
                    "before the vCPU halted"
                )
            why += "; nothing was armed after that, so nothing will wake it"
        msg = (f"the wait for deadline {deadline} ns (opened at {where(rec, k)}) stays blocked "
               f"for good: {rec.outcome.message} (at {where(rec, end)})")  # fmt: skip
        out.append(Violation("deadline", msg, why, end))
    return out


def handler_if(rec):
    if rec.options.get("handlers", "irq") != "irq":
        return []
    for ti, what, value, flag in rec.notes:
        if what == "handler" and flag:
            k = point_of(rec, ti)
            return [Violation("handler-if1", f"the handler for port {value} ran with "
                              f"interrupts enabled, at {where(rec, k)}", "", k)]  # fmt: skip
    return []


def eois(rec):
    vec = rec.layout.get("upcall_vector")
    if not vec:
        return []
    outstanding = []
    depth = 0
    for ti, ev in enumerate(rec.trace):
        what = ev[2]
        if what == "inject" and ev[3].get("vector") == vec:
            outstanding.append(ti)
        elif what == "eoi":
            v = ev[3].get("vector")
            if v == vec:
                if not outstanding:
                    k = point_of(rec, ti)
                    return [Violation("eoi", f"an EOI at {where(rec, k)} with no upcall "
                                      "outstanding", "", k)]  # fmt: skip
                outstanding.pop(0)
            elif v is None:
                k = point_of(rec, ti)
                return [Violation("eoi", f"an EOI at {where(rec, k)} with nothing in service "
                                  "(a second EOI for one upcall?)", "", k)]  # fmt: skip
        elif what == "handler_start":
            depth += 1
        elif what == "handler_end":
            depth -= 1
    if outstanding and not (depth > 0 and len(outstanding) == 1):
        k = point_of(rec, outstanding[0])
        return [Violation("eoi", f"the upcall delivered at {where(rec, k)} never got an EOI",
                          "", k)]  # fmt: skip
    return []


def guest(rec, baseline_kind):
    out = rec.outcome
    end = len(rec.points) - 1 if rec.points else None
    if out.kind == "check":
        return [Violation("guest-check", out.message, "", end)]
    if out.kind == "guest-error":
        return [Violation("guest-error", out.message, "", end)]
    if out.kind == "fault":
        if "IF=0" in out.message:
            return [Violation("hlt-if0", out.message, "only shutdown may stop a vCPU for good",
                              end)]  # fmt: skip
        return [Violation("fault", out.message, "", end)]
    if out.kind == "shutdown" and rec.status != 0:
        return [Violation("exit-status", f"the guest exited with status {rec.status}", "", end)]
    if out.kind in ("deadlock", "budget", "stall") and out.kind != baseline_kind:
        kind = "stuck" if out.kind == "deadlock" else "budget"
        return [Violation(kind, out.message, "", end)]
    return []


def check(rec, baseline_kind=None):
    """Every violation of the run, most telling first."""
    found = lost_wakeups(rec) + deadlines(rec) + handler_if(rec) + eois(rec)
    found += guest(rec, baseline_kind)
    if any(v.kind in ("lost-wakeup", "deadline") for v in found):
        found = [v for v in found if v.kind not in ("stuck", "budget")]
    found.sort(key=lambda v: ORDER.index(v.kind) if v.kind in ORDER else len(ORDER))
    return found


def covers(found, kind):
    """Does a run's violation list reproduce a failure of this kind?"""
    return any(v.kind == kind for v in found)
