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
import sys
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

# Point tuple fields. P_W: how many choice points the point stands for -- itself and the stub
# instructions just before it that touch nothing (pushes, pops, moves between registers): an
# event there is equivalent to one here, so they are counted, not stored.
P_N, P_I, P_KIND, P_IF, P_TLEN, P_TSC, P_OP, P_ADDR, P_SIZE, P_RW, P_ST, P_SNAP, P_W = range(13)


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
    handlers: tuple  # guest ports with a handler at the end of the run
    final: dict  # end-of-run state: words, timer, ...
    layout: dict  # shared-word addresses, stub names, return point, bridges
    options: dict
    snaps: list = field(default_factory=list)  # detail runs: (point index, before, after)
    safe: set = field(default_factory=set)  # points whose Python step cannot see a handler
    idles: list = field(default_factory=list)  # event state each time the vCPU went idle
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

    def __init__(self, kinds, placements=(), stub_points=True, detail=False, skip_plain=True):
        self.kinds = list(kinds)
        self.skip_plain = skip_plain
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
        self.safe = set()
        self.idles = []
        self._py = None  # (point index, region frame) of the Python step in progress
        self._return_point = None
        self._skipped = 0  # plain stub instructions folded into the next stored point
        self._prov = None  # the last plain instruction's point, until the next one shows it
        # was equivalent (folded) or not (stored)
        self._classes = {}  # instruction address -> class (conflict.classify_instruction)

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
        self._probes = [k.prober(m) for k in self.kinds]
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
            self._return_point = getattr(rt.arch, "return_point", None)
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

    def _record(self, kind, rflags, op, addr, size, rw, provisional=False):
        st = tuple([probe() for probe in self._probes])
        snap = self._snapshot() if self.detail else None
        point = (self.N, self.i, kind, (rflags >> 9) & 1, len(self.trace), self.tsc_reads, op,
                 addr, size, rw, st, snap, 1 + self._skipped)  # fmt: skip
        self._skipped = 0
        if provisional:
            self._prov = point
        else:
            self.points.append(point)

    def _settle(self, rflags):
        """A plain stub instruction is equivalent to the point after it -- unless something
        happened in between (code outside the stub area ran: a hypercall, time was read, IF
        changed): then it is a point of its own after all."""
        prov = self._prov
        if prov is None:
            return
        self._prov = None
        if (len(self.trace) != prov[P_TLEN] or self.tsc_reads != prov[P_TSC]
                or (rflags >> 9) & 1 != prov[P_IF]):  # fmt: skip
            self.points.append(prov)
        else:
            self._skipped += prov[P_W]

    def _python_step(self, opens, interrupts_on):
        """Close the Python step in progress (if any) at this point, and open one here if
        `opens`. A step is safe when one trusted runtime call spans it: the same frame of a
        function that reads no handler-written state between its HAL calls. Only steps with
        interrupts on need it (with IF=0 no handler can run there)."""
        if not interrupts_on:
            self._py = None
            return
        region = _region(sys._getframe(2))
        py = self._py
        if (
            py is not None
            and py[1] is not None
            and py[1] is region
            and py[0] == len(self.points) - 1
        ):
            self.safe.add(py[0])
        self._py = (len(self.points), region) if opens else None

    def _hal_point(self, hal, op, addr=None, size=0, rw=""):
        self.N += 1
        self.i = 0
        self._prev_insn = None
        rflags = self.fast.read(_RFLAGS)
        self._settle(rflags)
        plan = self.plan
        if self._next < len(plan) and plan[self._next].label == (self.N, 0):
            self._fire_due((self.N, 0), True)
        self._python_step(op != "run", rflags & 0x200)
        self._record(HAL, rflags, op, addr, size, rw)
        # vcpu.boundary() runs next: whatever became deliverable is delivered there.

    def _on_code(self, uc, address, size, _):
        if self.machine.outcome is not None:
            return
        self.i += 1
        f = self.fast
        rflags = f.read(_RFLAGS)
        self._settle(rflags)
        fired = 0
        plan = self.plan
        if self._next < len(plan) and plan[self._next].label == (self.N, self.i):
            fired = self._fire_due((self.N, self.i), True)
        cpu = self.cpu
        prev = self._prev_insn
        self._prev_insn = address
        # An instruction boundary with IF=1: the CPU takes a pending interrupt here -- one an
        # event just raised, or one left pending under IF=0 that iretq/popfq now lets in --
        # except in the STI shadow (never between `sti` and the next instruction), and not
        # where the host emulates the instruction by moving RIP itself.
        deliver = (rflags & 0x200 and not (prev is not None and cpu.ram.u8(prev) == _STI)
                   and address not in cpu._trapped
                   and (fired or cpu.pending_source() is not None))  # fmt: skip
        if address == self._return_point:
            self._python_step(True, rflags & 0x200)  # back to Python until the next HAL call
        else:
            cls = self._classes.get(address)
            if cls is None:
                cls = self._classes[address] = _classify(cpu.ram, address)
            if cls == "plain" and not fired and not deliver and self.skip_plain:
                self._record(INSN, rflags, "insn", address, size, "", provisional=True)
                return
            self._py = None
        self._record(INSN, rflags, "insn", address, size, "")
        if deliver:
            target = cpu.deliver_pending(address)
            if target != address:
                f.write(_RIP, target)  # the one PC write a code hook keeps

    def _idle_point(self):
        if self.machine.outcome is not None:
            return
        self.i += 1
        self._py = None
        self._settle(self.fast.read(_RFLAGS))
        plan = self.plan
        if self._next < len(plan) and plan[self._next].label == (self.N, self.i):
            self._fire_due((self.N, self.i), False)
        self._note_idle()
        self._record(IDLE, self.fast.read(_RFLAGS), "idle", None, 0, "")

    def _note_idle(self):
        """The event state of every port with a handler as the vCPU goes to sleep: the
        lost-wakeup check looks for an event left pending that nothing will deliver."""
        rt = self.rt
        if rt is None or rt._events is None:
            return
        hv = self.machine.hypervisor
        dom = hv.domain
        ports = {p: (dom.is_pending(p), dom.is_masked(p)) for p in rt._events.handlers}
        buf, base = self.xv.vcpu_info()
        lay = hv.layout
        sel = int.from_bytes(buf[base + lay.pending_sel : base + lay.pending_sel + 8], "little")
        vec = self.xv.upcall_vector
        lapic = self.cpu.lapic
        self.idles.append((len(self.points), ports, sel, buf[base + lay.upcall_pending],
                           (lapic.irr >> vec) & 1 if vec else 0,
                           (lapic.isr >> vec) & 1 if vec else 0,
                           (self.fast.read(_RFLAGS) >> 9) & 1))  # fmt: skip

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
    def _insn_texts(self):
        """Disassembly of the stored stub instructions, for the timeline (detail runs)."""
        if not self.detail:
            return {}
        from capstone import CS_ARCH_X86, CS_MODE_64, Cs

        md = Cs(CS_ARCH_X86, CS_MODE_64)
        out = {}
        for p in self.points:
            if p[P_KIND] == INSN and p[P_ADDR] not in out:
                code = self.machine.ram.read(p[P_ADDR], 15)
                for _, _, mnemonic, op_str in md.disasm_lite(code, p[P_ADDR], 1):
                    out[p[P_ADDR]] = f"{mnemonic} {op_str}".strip()
        return out

    def _insn_classes(self):
        ram = self.machine.ram
        out = dict(self._classes)
        for p in self.points:
            if p[P_KIND] == INSN and p[P_ADDR] not in out:
                out[p[P_ADDR]] = _classify(ram, p[P_ADDR])
        return out

    def record(self, result, options):
        m = self.machine
        if self._prov is not None:
            self.points.append(self._prov)  # what followed it ended the run
            self._prov = None
        hv = m.hypervisor
        si = hv.shared_info
        lay = hv.layout
        for k in range(len(self.plan)):
            if self.fired[k] is None:
                self.fired[k] = (k, None, "not reached", None)
        handlers = ()
        rt = self.rt
        if rt is not None and rt._events is not None:
            # Port numbers only: the handlers themselves would keep this machine alive.
            handlers = tuple(sorted(rt._events.handlers))
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
            "insn_text": self._insn_texts(),
        }
        final = {
            "state": tuple(probe() for probe in self._probes),
            "snapshot": self._snapshot(),
            "masked": {p: hv.domain.is_masked(p) for p in handlers},
            "pending": {p: hv.domain.is_pending(p) for p in handlers},
            "bound": {
                p: p in hv.domain.channels and hv.domain.channels[p].state not in (0, 1)
                for p in handlers
            },  # fmt: skip
            "timer_armed": self.xv.singleshot.active,
            "irr": self.cpu.lapic.irr,
            "isr": self.cpu.lapic.isr,
        }
        return RunRecord(self.plan, self.points, self.fired, result.outcome, result.status,
                         result.console, result.virtual_ns, list(self.trace), self.notes,
                         self.bind_marks, handlers, final, layout, dict(options),
                         self.snaps, self.safe, self.idles)  # fmt: skip


def _classify(ram, address):
    from .conflict import classify_instruction

    code = ram.read(address, 15)
    key = (address, code)
    cls = _CLASS_CACHE.get(key)
    if cls is None:
        cls = _CLASS_CACHE[key] = classify_instruction(code, address)
    return cls


# Trusted runtime calls ----------------------------------------------------------------------------
# Runtime functions whose Python code between two of their HAL calls reads nothing a handler
# writes (only their own locals, the argument stack a handler uses in balanced pairs, and
# guest memory through the HAL). While one of them is on the stack across two HAL calls, an
# interrupt handler taken at the first cannot change what runs before the second: the step is
# Python the explorer need not split. Guest code is never trusted.
_TRUSTED = None


def _trusted_codes():
    global _TRUSTED
    if _TRUSTED is None:
        from micropv.runtime import boot, console, evtchn, hypercall, pvclock, sched, ucall, upcall
        from micropv.runtime.arch import x86_64 as ax

        fns = [pvclock.system_time, pvclock.wallclock_base, console.write, ucall.send,
               sched.shutdown]  # fmt: skip
        rt = boot.Runtime
        fns += [rt.clock_monotonic, rt.clock_wall, rt.console_write, rt.sync, rt.check,
                rt.check_eq, rt.done, rt.exit]  # fmt: skip
        ec = evtchn.EventChannels
        fns += [ec._op, ec.alloc_unbound, ec.bind_interdomain, ec.bind_virq, ec.bind_ipi,
                ec.send, ec.bind_vcpu, ec.status, ec.hypercall_unmask, ec.mask, ec.mask_all,
                ec.is_pending, ec.is_masked, ec.clear]  # fmt: skip
        up = upcall.Upcall
        fns += [up._hvm, up.set_param, up.get_param, up.set_upcall_vector]
        fns += [f for f in vars(hypercall.Hypercalls).values() if callable(f)]
        a = ax.Arch
        fns += [a.call, a.stub, a.cli, a.sti, a.safe_halt, a.halt, a.save_flags_cli,
                a.restore_flags, a.interrupts_enabled, a.cpuid, a.wrmsr, a.rdmsr, a.rdtsc,
                a.mmio_read32, a.mmio_write32, a.ucall, a.hypercall]  # fmt: skip
        _TRUSTED = frozenset(f.__code__ for f in fns if hasattr(f, "__code__"))
    return _TRUSTED


def _region(frame):
    """The outermost trusted runtime frame on the stack, or None."""
    trusted = _trusted_codes()
    found = None
    while frame is not None:
        if frame.f_code in trusted:
            found = frame
        frame = frame.f_back
    return found


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


def execute(target, kinds, placements=(), stub_points=True, detail=False, skip_plain=True):
    """Run target with placements; return its RunRecord. skip_plain=False stores every stub
    instruction as its own point (for cross-checks of the reduction)."""
    from ..launch import run_guest

    rec = Recorder(kinds, placements, stub_points=stub_points, detail=detail,
                   skip_plain=skip_plain)  # fmt: skip
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
