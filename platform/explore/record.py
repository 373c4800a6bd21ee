# One run of a schedule, recorded for the explorer: every choice point (where a host event may
# land), the events fired there, and enough about each step between two points to tell which
# host events it conflicts with.
#
# Choice points, in execution order, labelled bN or bN.i:
#   bN    HAL boundary N of the Python guest (a memory access or a run of guest code), before
#         anything is delivered there; an event that lands here is delivered at once if IF=1
#   bN.i  the i-th point inside step N: an instruction boundary inside the runtime's stubs
#         (a UC_HOOK_CODE over the stub area, explorer runs only), or the moment the vCPU goes
#         idle (hlt with IF=1, SCHEDOP_block/poll). At an instruction boundary delivery
#         follows the architecture: IF=1 and not in the STI shadow (never between `sti` and
#         `hlt`); events landing while idle wake the vCPU as a real send would.
#
# Everything is observed from outside: the HAL's boundary hook (address, size, read/write),
# the trace (hypercalls, set_pending, injections, EOIs, timers, halts), and a few instance
# wrappers installed on this machine only (clock.tsc counts time reads, XenVCPU.deschedule
# marks idle points, GuestDomain.bind_interdomain marks the pending bit Xen sets on a fresh
# port, HAL.note sees the runtime's notes with RFLAGS.IF). Nothing here changes a normal run.
import os
from dataclasses import dataclass, field
from types import SimpleNamespace

from unicorn import UC_HOOK_CODE
from unicorn import x86_const as UX

from ..clock import Timer as ClockTimer
from ..emu.stop import Stop

HAL, INSN, IDLE = 0, 1, 2
KIND_NAMES = ("hal", "insn", "idle")
_RFLAGS = UX.UC_X86_REG_RFLAGS
_RIP = UX.UC_X86_REG_RIP
_STI = 0xFB
_CLASS_CACHE = {}  # (address, bytes) -> instruction class (conflict.classify_instruction)

# Point tuple fields.
P_N, P_I, P_KIND, P_IF, P_TLEN, P_TSC, P_OP, P_ADDR, P_SIZE, P_RW, P_ST, P_SNAP = range(12)


def label_str(label):
    n, i = label
    return f"b{n}" if i == 0 else f"b{n}.{i}"


def parse_label(text):
    if not text.startswith("b"):
        raise ValueError(f"bad boundary {text!r} (bN or bN.i)")
    n, _, i = text[1:].partition(".")
    return (int(n), int(i) if i else 0)


@dataclass
class Placement:
    kind: object  # an events.EventKind
    label: tuple  # (N, i)

    def __str__(self):
        return f"{self.kind.name}@{label_str(self.label)}"


@dataclass
class RunRecord:
    placements: list
    points: list
    # (placement index, point index or None, "fired" | "disabled" | "not reached", the trace
    # index range its host work occupies)
    fired: list
    outcome: object
    status: int
    console: str
    virtual_ns: int
    trace: list
    notes: list  # (trace index, what, value, IF)
    bind_marks: list  # (trace index from, to) of bind_interdomain calls
    handlers: dict  # guest port -> handler, at the end of the run
    final: dict  # end-of-run state: words, timer, ...
    layout: dict  # shared-word addresses, stub names, return point, bridges
    options: dict
    snaps: list = field(default_factory=list)  # detail runs: (point index, before, after)
    _index: dict = None

    def index(self, label):
        """Point index of label, or None if this run never reached it."""
        if self._index is None:
            self._index = {(p[P_N], p[P_I]): k for k, p in enumerate(self.points)}
        return self._index.get(label)

    def label(self, k):
        p = self.points[k]
        return (p[P_N], p[P_I])


class Recorder:
    """Attach to a fresh machine (before the guest boots), run, then call record()."""

    def __init__(self, kinds, placements=(), stub_points=True, detail=False):
        self.kinds = list(kinds)
        self.plan = list(placements)
        for a, b in zip(self.plan, self.plan[1:]):
            if b.label < a.label:
                raise ValueError("schedule events must be in boundary order")
        self.stub_points = stub_points
        self.detail = detail
        self.points = []
        self.fired = [None] * len(self.plan)
        self.notes = []
        self.bind_marks = []
        self.snaps = []
        self.N = -1
        self.i = 0
        self.tsc_reads = 0
        self.rt = None
        self._next = 0  # next plan entry to fire
        self._prev_insn = None
        self.machine = None

    # Setting up ---------------------------------------------------------------------------------
    def attach(self, machine):
        self.machine = m = machine
        if not m.trace.enabled:
            raise ValueError("the explorer needs a machine with trace=True")
        self.trace = m.trace.events
        cpu = m.vcpus[0]
        self.cpu = cpu
        self.fast = cpu.fast
        self.xv = m.hypervisor.vcpus[0]
        lay = m.board.runtime_layout

        make_hal = m.hal

        def hal(vcpu_id=0):
            h = make_hal(vcpu_id)
            if vcpu_id == 0:
                h.boundary_hook = self._hal_point
                note = h.note

                def noted(what, value):
                    rflags = self.fast.read(_RFLAGS)
                    self.notes.append((len(self.trace), what, value, (rflags >> 9) & 1))
                    note(what, value)

                h.note = noted
            return h

        m.hal = hal
        clock = m.clock
        tsc = clock.tsc

        def counted_tsc():
            self.tsc_reads += 1
            return tsc()

        clock.tsc = counted_tsc
        deschedule = self.xv.deschedule

        def idle():
            deschedule()
            self._idle_point()

        self.xv.deschedule = idle
        dom = m.hypervisor.domain
        bind = dom.bind_interdomain

        def bind_interdomain(remote_domid, remote_port):
            start = len(self.trace)
            try:
                return bind(remote_domid, remote_port)
            finally:
                self.bind_marks.append((start, len(self.trace)))

        dom.bind_interdomain = bind_interdomain
        if self.stub_points:
            # Before the first translation (unicorn-notes rule 3); explorer runs only.
            lo = lay["code"]
            cpu.uc.hook_add(UC_HOOK_CODE, self._on_code, None, lo, lo + lay["code_size"] - 1)
        return None

    def wrap_main(self, main):
        def explored_main(rt):
            self.rt = rt
            return main(rt)

        return explored_main

    # Choice points --------------------------------------------------------------------------------
    def _fire_due(self, label, deliver_now):
        """Fire the plan's events at label; returns how many fired. Idle points defer them to
        a zero-delay host timer, so they land while the vCPU sleeps (and wake it)."""
        plan = self.plan
        m = self.machine
        fired = 0
        before = self._snapshot() if self.detail else None
        while self._next < len(plan) and plan[self._next].label == label:
            k = self._next
            self._next += 1
            kind = plan[k].kind
            if not kind.enabled(m):
                self.fired[k] = (k, len(self.points), "disabled", None)
                continue
            if deliver_now:
                t0 = len(self.trace)
                kind.fire(m)
                span = (t0, len(self.trace))
            else:
                span = [None, None]

                def later(kind=kind, span=span):
                    span[0] = len(self.trace)
                    kind.fire(m)
                    span[1] = len(self.trace)

                m.clock.set_timer(ClockTimer(later, "explore"), m.clock.now)
            self.fired[k] = (k, len(self.points), "fired", span)
            fired += 1
        if self.detail and fired:
            self.snaps.append((len(self.points), before, self._snapshot()))
        return fired

    def _record(self, kind, rflags, op, addr, size, rw):
        m = self.machine
        st = tuple(k.state(m) for k in self.kinds)
        snap = self._snapshot() if self.detail else None
        self.points.append((self.N, self.i, kind, (rflags >> 9) & 1, len(self.trace),
                            self.tsc_reads, op, addr, size, rw, st, snap))  # fmt: skip

    def _hal_point(self, hal, op, addr=None, size=0, rw=""):
        self.N += 1
        self.i = 0
        self._prev_insn = None
        plan = self.plan
        if self._next < len(plan) and plan[self._next].label == (self.N, 0):
            self._fire_due((self.N, 0), True)
        self._record(HAL, self.fast.read(_RFLAGS), op, addr, size, rw)
        # vcpu.boundary() runs next: whatever became deliverable is delivered there.

    def _on_code(self, uc, address, size, _):
        if self.machine.outcome is not None:
            return
        self.i += 1
        fired = 0
        plan = self.plan
        if self._next < len(plan) and plan[self._next].label == (self.N, self.i):
            fired = self._fire_due((self.N, self.i), True)
        f = self.fast
        rflags = f.read(_RFLAGS)
        self._record(INSN, rflags, "insn", address, size, "")
        prev = self._prev_insn
        self._prev_insn = address
        if not rflags & 0x200:
            return
        # An instruction boundary with IF=1: the CPU takes a pending interrupt here -- one an
        # event just raised, or one left pending under IF=0 that iretq/popfq now lets in.
        cpu = self.cpu
        if prev is not None and cpu.ram.u8(prev) == _STI:
            return  # the STI shadow: never deliver between `sti` and the next instruction
        if address in cpu._trapped:
            return  # the host emulates this instruction by moving RIP itself
        if not fired and cpu.pending_source() is None:
            return
        target = cpu.deliver_pending(address)
        if target != address:
            f.write(_RIP, target)  # the one PC write a code hook keeps

    def _idle_point(self):
        if self.machine.outcome is not None:
            return
        self.i += 1
        plan = self.plan
        if self._next < len(plan) and plan[self._next].label == (self.N, self.i):
            self._fire_due((self.N, self.i), False)
        self._record(IDLE, self.fast.read(_RFLAGS), "idle", None, 0, "")

    # State snapshots (detail runs: the timeline's before -> after values) -----------------------
    def _snapshot(self):
        m = self.machine
        hv = m.hypervisor
        si = hv.shared_info
        lay = hv.layout
        words = {}
        if si.gfn is not None:
            for g in self._watched_ports():
                w = g >> 6
                words[("P", w)] = si.u64(lay.evtchn_pending + 8 * w)
                words[("M", w)] = si.u64(lay.evtchn_mask + 8 * w)
            buf, base = self.xv.vcpu_info()
            words["UP"] = buf[base + lay.upcall_pending]
            words["SEL"] = int.from_bytes(buf[base + lay.pending_sel : base + lay.pending_sel + 8],
                                          "little")  # fmt: skip
        lapic = self.cpu.lapic
        vec = self.xv.upcall_vector
        if vec:
            words["IRR"] = (lapic.irr >> vec) & 1
            words["ISR"] = (lapic.isr >> vec) & 1
        words["IF"] = (self.fast.read(_RFLAGS) >> 9) & 1
        words["t"] = m.clock.now
        return words

    def _watched_ports(self):
        m = self.machine
        ports = set()
        for k in self.kinds:
            g = k.guest_port(m)
            if g is not None:
                ports.add(g)
        return sorted(ports)

    # The record ---------------------------------------------------------------------------------
    def _insn_classes(self):
        from .conflict import classify_instruction

        ram = self.machine.ram
        out = {}
        for p in self.points:
            if p[P_KIND] == INSN and p[P_ADDR] not in out:
                code = ram.read(p[P_ADDR], 15)
                key = (p[P_ADDR], code)
                cls = _CLASS_CACHE.get(key)
                if cls is None:
                    cls = _CLASS_CACHE[key] = classify_instruction(code, p[P_ADDR])
                out[p[P_ADDR]] = cls
        return out

    def record(self, result, options):
        m = self.machine
        hv = m.hypervisor
        si = hv.shared_info
        lay = hv.layout
        for k in range(len(self.plan)):
            if self.fired[k] is None:
                self.fired[k] = (k, None, "not reached", None)
        handlers = {}
        rt = self.rt
        if rt is not None and rt._events is not None:
            handlers = dict(rt._events.handlers)
        stubs = {}
        hpage = None
        return_point = None
        if rt is not None:
            stubs = {addr: name for name, addr in rt.arch._stubs.items()}
            hpage = rt.arch.hypercall_page
            return_point = rt.arch.return_point
        vi = None
        if si.gfn is not None:
            vi = self.xv.vcpu_info_gpa
            if vi is None:
                vi = si.base + lay.vcpu_info(0)
        layout = {
            "si": si.base if si.gfn is not None else None,
            "pending": lay.evtchn_pending,
            "mask": lay.evtchn_mask,
            "vcpu_info": vi,
            "upcall_pending": lay.upcall_pending,
            "upcall_mask": lay.upcall_mask,
            "pending_sel": lay.pending_sel,
            "time": lay.time,
            "vcpu_info_size": lay.vcpu_info_size,
            "stubs": stubs,
            "hypercall_page": hpage,
            "return_point": return_point,
            "bridges": {a - 1 for a in self.cpu.bridges},
            "upcall_vector": self.xv.upcall_vector,
            "timer_port": hv.domain.virq_to_port[0][0],
            "guest_ports": {k.name: k.guest_port(m) for k in self.kinds},
            "stub_points": self.stub_points,
            "insn_class": self._insn_classes(),
        }
        final = {
            "state": tuple(k.state(m) for k in self.kinds),
            "snapshot": self._snapshot(),
            "masked": {p: hv.domain.is_masked(p) for p in handlers},
            "pending": {p: hv.domain.is_pending(p) for p in handlers},
            "bound": {p: p in hv.domain.channels and hv.domain.channels[p].state not in (0, 1)
                      for p in handlers},  # fmt: skip
            "timer_armed": self.xv.singleshot.active,
            "irr": self.cpu.lapic.irr,
            "isr": self.cpu.lapic.isr,
        }
        return RunRecord(self.plan, self.points, self.fired, result.outcome, result.status,
                         result.console, result.virtual_ns, list(self.trace), self.notes,
                         self.bind_marks, handlers, final, layout, dict(options),
                         self.snaps)  # fmt: skip


# Running a target -------------------------------------------------------------------------------
@dataclass
class Target:
    """What a run is made of, apart from the host events: the guest, board, policies, args."""

    guest: str  # path to the guest file
    board: str = "pvh-x86_64"
    options: dict = field(default_factory=dict)  # callback, unmask, handlers, clear
    args: dict = field(default_factory=dict)
    seed: int = 0
    budget_ns: int | None = None
    _module: object = None

    @property
    def module(self):
        if self._module is None:
            from ..machine import load_guest_module

            self._module = load_guest_module(os.fspath(self.guest))
        return self._module

    def resolved_options(self):
        """The guest's OPTIONS under the caller's, over the runtime's defaults."""
        from micropv.runtime.boot import DEFAULT_OPTIONS

        opts = dict(DEFAULT_OPTIONS)
        opts.update(getattr(self.module, "OPTIONS", {}) or {})
        opts.update({k: v for k, v in self.options.items() if v is not None})
        return opts


def execute(target, kinds, placements=(), stub_points=True, detail=False):
    """Run target with placements; return its RunRecord."""
    from ..launch import run_guest

    rec = Recorder(kinds, placements, stub_points=stub_points, detail=detail)
    module = target.module
    guest = SimpleNamespace(main=rec.wrap_main(module.main),
                            OPTIONS=getattr(module, "OPTIONS", None),
                            backend=getattr(module, "backend", None))  # fmt: skip
    opts = target.resolved_options()
    try:
        _, result = run_guest(guest, board=target.board, options=opts, args=target.args,
                              seed=target.seed, budget_ns=target.budget_ns, trace=True,
                              setup=rec.attach)  # fmt: skip
    except Stop:  # pragma: no cover - run_python turns every Stop into an outcome
        raise
    return rec.record(result, opts)
