# A run's trace as Chrome trace-event JSON, which the Perfetto UI and chrome://tracing open.
# One process (the guest domain), one track per vCPU and one for the host. Timestamps are
# virtual time: ts is in microseconds (the format's unit), ns / 1000, so nothing is rounded.
# The file is a function of the trace alone -- no wall-clock data, sorted keys, events in
# recorded order -- so identical runs give byte-identical files.
import json

from micropv.runtime.abi.xen import HYPERCALL_NAMES

from .clock import COST_HYPERCALL_NS

HOST_TID = 1000  # the track for vcpu -1: the hypervisor's own work, the backend domain
_JS_SAFE = (1 << 53) - 1  # larger integers lose precision in JavaScript viewers
_HEX_FIELDS = frozenset(("rip", "gpa", "addr", "value"))
_CATEGORY = {
    "inject": "irq", "eoi": "irq", "upcall_pending": "irq", "upcall_vector": "irq",
    "callback_via": "irq", "handler": "irq",
    "timer_set": "timer", "timer_stop": "timer", "timer_fire": "timer",
    "poll_timeout": "timer",
    "evtchn_send": "evtchn", "set_pending": "evtchn", "backend_event": "evtchn",
    "hlt": "sched", "wake": "sched", "block": "sched", "halted": "sched", "blocked": "sched",
    "map_shared_info": "setup", "hypercall_page": "setup", "register_vcpu_info": "setup",
    "ucall": "guest", "end": "guest",
}  # fmt: skip


def _ts(ns):
    """Virtual ns -> the format's microseconds: an int when exact, else a float (3 decimals)."""
    return ns // 1000 if ns % 1000 == 0 else ns / 1000


def _value(key, v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        if key in _HEX_FIELDS or not -_JS_SAFE <= v <= _JS_SAFE:
            return hex(v)
        return v
    if isinstance(v, (tuple, list)):
        return [_value(key, x) for x in v]
    return str(v)


def _args(fields):
    return {k: _value(k, v) for k, v in fields.items()}


class _Exporter:
    def __init__(self, pid):
        self.pid = pid
        self.out = []
        self.halted = {}  # tid -> (ns, fields) of the hlt not yet woken
        self.blocked = {}  # tid -> (ns, fields) of the block not yet woken
        self.handlers = {}  # tid -> how many handler B events are open
        self.injected = {}  # tid -> vector injected and not yet seen entering its handler

    def emit(self, ph, name, ns, tid, cat, args=None, **extra):
        ev = {"name": name, "ph": ph, "ts": _ts(ns), "pid": self.pid, "tid": tid, "cat": cat}
        if args:
            ev["args"] = args
        ev.update(extra)
        self.out.append(ev)

    def span(self, name, start, end, tid, args, cat=None):
        self.emit("X", name, start, tid, cat or _CATEGORY[name], args, dur=_ts(end - start))

    def event(self, ns, tid, what, fields):
        if what == "hypercall":
            return self.hypercall(ns, tid, fields)
        if what == "inject":
            self.injected[tid] = fields.get("vector")
        elif what == "handler_start":
            args = _args(fields)
            vector = self.injected.pop(tid, None)
            if vector is not None:
                args["vector"] = vector  # the injection that led straight here
            self.handlers[tid] = self.handlers.get(tid, 0) + 1
            return self.emit("B", "handler", ns, tid, "irq", args)
        elif what == "handler_end":
            if self.handlers.get(tid):
                self.handlers[tid] -= 1
                return self.emit("E", "handler", ns, tid, "irq")
        elif what == "hlt":
            self.injected.pop(tid, None)
            self.halted[tid] = (ns, fields)
            return None
        elif what == "block":
            self.blocked[tid] = (ns, fields)
            return None
        elif what == "wake":
            # A wake with `what` ends a block inside a hypercall; a bare one ends a hlt.
            opened = self.blocked if "what" in fields else self.halted
            if tid in opened:
                start, begun = opened.pop(tid)
                name = "blocked" if opened is self.blocked else "halted"
                return self.span(name, start, ns, tid, _args(begun))
        self.emit("i", what, ns, tid, _CATEGORY.get(what, "xen"), _args(fields), s="t")

    def hypercall(self, end, tid, fields):
        """A complete event over the hypercall's virtual cost (charged at the trap, before
        the handler) plus any time the vCPU slept inside it."""
        self.injected.pop(tid, None)
        nr = fields.get("nr")
        slept = fields.get("slept", 0)
        start = max(0, end - slept - COST_HYPERCALL_NS)
        name = fields.get("name") or HYPERCALL_NAMES.get(nr, f"hypercall_{nr}")
        args = _args(fields)
        args.pop("name", None)
        args["args"] = [hex(a) for a in fields.get("args", ())]
        self.span(name, start, end, tid, args, "hypercall")

    def close(self, last):
        """Spans still open when the run ended (a deadlock in hlt, a budget stop in a
        handler) end at the last recorded time."""
        for tid, (start, fields) in sorted(self.halted.items()):
            self.span("halted", start, last, tid, _args(fields))
        for tid, (start, fields) in sorted(self.blocked.items()):
            self.span("blocked", start, last, tid, _args(fields))
        for tid, depth in sorted(self.handlers.items()):
            for _ in range(depth):
                self.emit("E", "handler", last, tid, "irq")


def _metadata(pid, process, tids):
    def meta(name, tid, args):
        return {"name": name, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": args}

    out = [
        meta("process_name", 0, {"name": process}),
        meta("process_sort_index", 0, {"sort_index": pid}),
    ]
    for tid in tids:
        label = "host" if tid == HOST_TID else f"vCPU{tid}"
        out.append(meta("thread_name", tid, {"name": label}))
        out.append(meta("thread_sort_index", tid, {"sort_index": tid}))
    return out


def to_chrome(trace, machine=None):
    """The trace as a Chrome trace-event document (a dict ready for json.dump)."""
    from micropv import __version__

    pid = getattr(machine, "domid", 1) if machine is not None else 1
    board = getattr(machine, "board", None)
    nvcpus = len(getattr(machine, "vcpus", ()) or ())
    tids = set(range(nvcpus))
    ex = _Exporter(pid)
    last = 0
    for ns, vcpu, what, fields in trace.events:
        tid = HOST_TID if vcpu < 0 else vcpu
        tids.add(tid)
        ex.event(ns, tid, what, fields)
        last = ns
    ex.close(last)
    tids.add(HOST_TID)
    process = f"domU {pid}" + (f" ({board.name})" if board is not None else "")
    other = {"version": __version__, "clock": "virtual", "events": len(trace.events),
             "virtual_ns": last}  # fmt: skip
    if board is not None:
        other.update(board=board.name, arch=board.arch, vcpus=nvcpus)
    return {
        "traceEvents": _metadata(pid, process, sorted(tids)) + ex.out,
        "displayTimeUnit": "ns",
        "otherData": other,
    }


def write_chrome_trace(trace, path, machine=None):
    doc = to_chrome(trace, machine)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(doc, f, sort_keys=True, separators=(",", ":"), allow_nan=False)
        f.write("\n")
