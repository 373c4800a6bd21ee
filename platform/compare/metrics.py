# Metrics of one finished run, read from its trace (and the machine's state at the end), never
# from what the guest says about itself: which sends reached a handler and how fast, which
# were lost, and what the machine paid for them. Definitions: docs/compare.md.
from bisect import bisect_right

from micropv.runtime.abi import event_channel as E
from micropv.runtime.abi import xen as X

APIC_EOI_OFFSET = 0xB0  # an MMIO write there is an EOI, counted on its own
# What starts an event on its way to the guest: the backend's send, a vCPU timer expiring.
SEND_KINDS = ("backend_send", "timer_fire")


class Send:
    __slots__ = ("index", "time", "port", "coalesced")

    def __init__(self, index, time, port, coalesced):
        self.index = index
        self.time = time
        self.port = port
        self.coalesced = coalesced


def sends(events):
    """Every send that reached one of the guest's ports. A send event is followed at once by
    the set_pending it caused (Xen's set_pending runs inside the send); a send that set
    nothing (a channel not bound yet, a VIRQ nobody bound) never reached the guest."""
    out = []
    for i in range(len(events) - 1):
        if events[i][2] in SEND_KINDS:
            nxt = events[i + 1]
            if nxt[2] == "set_pending" and nxt[1] == -1:
                f = nxt[3]
                out.append(Send(i, events[i][0], f["port"], f["coalesced"]))
    return out


def handler_starts(events, what="handler"):
    """port -> ([trace index], [ns]) of every time the guest's runtime noted `what` for it."""
    out = {}
    for i, (ns, _, kind, f) in enumerate(events):
        if kind == "note" and f["what"] == what:
            indices, times = out.setdefault(f["value"], ([], []))
            indices.append(i)
            times.append(ns)
    return out


def upcalls(events):
    """(upcalls, spurious): the runtime notes `upcall` at the top of every upcall, inside the
    handler span the vCPU traced (x86 IDT entry, riscv64 stvec entry alike); an upcall whose
    handler dispatched no port (no `dispatch` note before handler_end) was spurious."""
    total = spurious = 0
    stack = []  # per open handler: [is an upcall, dispatched something]
    for _, _, kind, f in events:
        if kind == "handler_start":
            stack.append([False, False])
        elif kind == "note" and f["what"] == "upcall":
            total += 1
            if stack:
                stack[-1][0] = True
        elif kind == "note" and f["what"] == "dispatch" and stack:
            stack[-1][1] = True
        elif kind == "handler_end" and stack:
            was_upcall, dispatched = stack.pop()
            spurious += was_upcall and not dispatched
    return total, spurious


def percentile(ordered, p):
    """Nearest-rank percentile of a sorted list (an element of it, so integers stay
    integers); None for an empty list."""
    if not ordered:
        return None
    rank = -(-p * len(ordered) // 100)  # ceil(p/100 * n)
    return ordered[max(rank, 1) - 1]


def _per(n, d):
    return round(n / d, 3) if d else None


def measure(machine, result):
    """The metrics of a run made with trace=True: a dict (the row's numbers) and the sorted
    send-to-handler latencies (for the CDF plot)."""
    events = result.trace.events
    dom = machine.hypervisor.domain
    all_sends = sends(events)
    starts = handler_starts(events)
    latencies = []
    lost = withheld = 0
    for s in all_sends:
        indices, times = starts.get(s.port, ((), ()))
        k = bisect_right(indices, s.index)  # the first handler run after the send
        if k < len(indices):
            latencies.append(times[k] - s.time)
        elif dom.is_masked(s.port):
            withheld += 1  # the guest left the port masked: it chose not to take it
        else:
            lost += 1  # unmasked, and the guest waited to the end: the event is gone
    latencies.sort()
    count = {}
    for _, _, kind, f in events:
        count[kind] = count.get(kind, 0) + 1
    hypercalls = [f for _, _, kind, f in events if kind == "hypercall"]
    mmio = [f for _, _, kind, f in events if kind == "mmio"]
    unmask_op = (X.HYPERVISOR_event_channel_op, E.EVTCHNOP_unmask)
    unmask_hcs = sum(1 for f in hypercalls if (f["nr"], f["op"]) == unmask_op)
    unmasks = sum(1 for _, _, kind, f in events if kind == "note" and f["what"] == "unmask")
    n_upcalls, n_spurious = upcalls(events)
    delivered = len(latencies)
    exits = {
        "hypercall": len(hypercalls),
        "hlt": count.get("hlt", 0),
        "eoi": count.get("eoi", 0),
        "mmio": sum(1 for f in mmio if not (f["write"] and f["offset"] == APIC_EOI_OFFSET)),
    }
    row = {
        "sent": len(all_sends),
        "delivered": delivered,
        "coalesced": sum(1 for s in all_sends if s.coalesced),
        "lost": lost,
        "withheld": withheld,
        "upcalls": n_upcalls,
        "spurious": n_spurious,
        "eois": exits["eoi"],
        "unmasks": unmasks,
        "unmask_hypercalls": unmask_hcs,
        "hypercalls": exits["hypercall"],
        "hlts": exits["hlt"],
        "mmio": exits["mmio"],
    }
    row["hypercalls_per_event"] = _per(exits["hypercall"], delivered)
    row["hlts_per_event"] = _per(exits["hlt"], delivered)
    row["eois_per_event"] = _per(exits["eoi"], delivered)
    row["mmio_per_event"] = _per(exits["mmio"], delivered)
    row["hypercalls_per_unmask"] = _per(unmask_hcs, unmasks)
    row["latency_p50_ns"] = percentile(latencies, 50)
    row["latency_p99_ns"] = percentile(latencies, 99)
    row["latency_max_ns"] = latencies[-1] if latencies else None
    return row, latencies
