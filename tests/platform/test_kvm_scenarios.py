# KVM's xen_shinfo_test (tools/testing/selftests/kvm/x86/xen_shinfo_test.c), scenarios 1, 6, 7,
# 10, 13, 14, 16, 17, 18, 20 and 21 of reference/xen-abi.md §16.1, as a Python guest with the
# host side done at each sync point -- rt.sync(stage) in the guest, machine.on_sync on the
# host, as KVM's test does with ucalls. One run goes through every stage in KVM's order (the
# stages build on each other's state); each scenario is then a test of what that stage saw.
#
# Adapted set-up (what KVM's host does before the run, done here the Xen way):
# - vcpu_info for vCPU 0 moves to shared_info + 0x40 with VCPUOP_register_vcpu_info. Xen (not
#   KVM) then marks every selector bit and upcall_pending: one upcall is expected at sti.
# - The global callback vector 0x10 (HVM_PARAM_CALLBACK_IRQ type vector); the guest handler
#   only clears upcall_pending and pending_sel (no EOI) and reports the IRQ. The host checks
#   that every IRQ was expected, as KVM's does.
# - Ports are what the stub hands out. KVM's port 15 (TEST1) is the local end L of a loopback
#   interdomain channel whose other end U is KVM's "send-port 127": EVTCHNOP_send(U) lands on
#   L. Port 66 (TEST2) is an interdomain channel B with the backend (domain 0); "the host
#   fires port 66" is a backend send. Port 13 is whatever VIRQ_TIMER is bound to (T). "The
#   host fires port 15" (an eventfd route in KVM) is Xen's set_pending on L.
# - Host timers: machine.hypervisor.vcpus[0].set_singleshot(t), read back through .singleshot.
# - There is no runstate area; "state_entry_time" is the guest's monotonic clock.
# - Scenario 17's timeout: KVM reads sched_poll.timeout as relative, Xen as absolute system
#   time, and the stub is Xen. The KVM value (100 ms) is then already past and the poll returns
#   at once; the test also polls with an absolute deadline 100 ms ahead, which must be waited.
import pytest
from micropv.platform.emu.stop import EXIT_GUEST_ERROR, Outcome
from micropv.platform.launch import run_guest
from micropv.runtime.abi import hvm as H
from micropv.runtime.abi import vcpu as V
from micropv.runtime.abi import xen as X
from micropv.runtime.evtchn import EventChannels, pack
from micropv.runtime.upcall import Upcall

MS = 1_000_000
US = 1_000
VECTOR = 0x10  # KVM's test uses 0x10 for the global upcall vector
VCPU_INFO_OFFSET = 0x40  # shared_info + 0x40: outside vCPU 0's default slot
SOON = 10 * US  # "at once": a few hypercalls and an injection, in virtual time

# Sync stages: KVM's scenario numbers; SETUP/PORTS before them, SAW_IRQ and REPORT are messages.
SETUP, PORTS = 100, 101
SAW_IRQ, REPORT = 200, 201
SCENARIOS = (1, 6, 7, 10, 13, 14, 16, 17, 18, 20, 21)


class Stage:
    def __init__(self, time_ns):
        self.time = time_ns
        self.irqs = []  # virtual times of the guest's SAW_IRQ reports in this stage
        self.reports = []  # values the guest reported
        self.host = {}  # what the host saw or did


class Host:
    """The host side: an action at each stage (KVM's `case TEST_...:`), IRQ bookkeeping."""

    def __init__(self, machine, bport):
        self.m = machine
        self.xen = machine.hypervisor
        self.lay = self.xen.layout
        self.bport = bport
        self.expected = False
        self.stage = None
        self.log = {}
        self.ports = None
        self.error = None

    # Shared memory, as KVM's host pokes it --------------------------------------------------
    def vi(self, off, size=1):
        buf, base = self.xen.vcpus[0].vcpu_info()
        return int.from_bytes(buf[base + off : base + off + size], "little")

    def set_vi8(self, off, v):
        buf, base = self.xen.vcpus[0].vcpu_info()
        buf[base + off] = v

    def pending_word(self, v=None):
        if v is not None:
            self.xen.shared_info.set64(self.lay.evtchn_pending, v)
        return self.xen.shared_info.u64(self.lay.evtchn_pending)

    def mask_word(self, v=None):
        if v is not None:
            self.xen.shared_info.set64(self.lay.evtchn_mask, v)
        return self.xen.shared_info.u64(self.lay.evtchn_mask)

    def fail(self, text):
        if self.error is None:
            self.error = f"stage {self.stage}: {text}"
            self.m.finish(Outcome("check", EXIT_GUEST_ERROR, "host: " + self.error))

    def check(self, cond, text):
        if not cond:
            self.fail(text)

    # ucall dispatch ---------------------------------------------------------------------------
    def on_sync(self, m, msg):
        if msg.a == SAW_IRQ:
            self.check(self.expected, f"unexpected IRQ (vector {msg.b:#x})")
            self.expected = False
            self.log[self.stage].irqs.append(msg.time_ns)
            return
        if msg.a == REPORT:
            self.log[self.stage].reports.append(msg.b)
            return
        if self.expected:
            self.fail("an expected IRQ was not seen")
        self.stage = msg.a
        self.log[msg.a] = Stage(msg.time_ns)
        getattr(self, f"stage_{msg.a}", lambda value: None)(msg.b)

    # Host actions -----------------------------------------------------------------------------
    def stage_100(self, value):  # SETUP: vcpu_info was just registered
        lay = self.lay
        h = self.log[SETUP].host
        h["gpa"] = self.xen.vcpus[0].vcpu_info_gpa
        h["upcall_pending"] = self.vi(lay.upcall_pending)
        h["pending_sel"] = self.vi(lay.pending_sel, 8)

    def stage_101(self, value):  # PORTS
        self.ports = {"T": value & 0xFFF, "L": (value >> 12) & 0xFFF,
                      "U": (value >> 24) & 0xFFF, "B": (value >> 36) & 0xFFF}  # fmt: skip
        self.expected = True  # the registration's upcall: interrupts come on next

    def stage_1(self, value):  # direct injection: just set upcall_pending
        self.set_vi8(self.lay.upcall_pending, 1)
        self.expected = True

    def stage_6(self, value):  # masked event: no interrupt allowed
        L = self.ports["L"]
        self.mask_word(1 << L)
        self.xen.domain.set_pending(L)

    def stage_7(self, value):  # unmasked event on TEST2, from the backend
        self.pending_word(0)
        self.mask_word(0)
        self.m.backend.send(self.bport)
        self.expected = True

    def stage_10(self, value):  # the guest sends on U; it must land on L
        self.pending_word(0)
        self.expected = True

    def stage_13(self, value):  # timer setup
        self.pending_word(0)

    def stage_14(self, value):  # timer wait: read the timer back, then expect its upcall
        xv = self.xen.vcpus[0]
        h = self.log[14].host
        h["active"] = xv.singleshot.active
        h["deadline"] = xv.singleshot.deadline
        h["timer_port"] = self.xen.domain.virq_to_port[0][X.VIRQ_TIMER]
        self.expected = True

    def stage_16(self, value):  # poll ready: the timer port pending *and* masked
        T = self.ports["T"]
        h = self.log[16].host
        lay = self.lay
        h["time_new"] = (self.vi(lay.time + V.TIME_INFO_version, 4),
                         self.vi(lay.time + V.TIME_INFO_system_time, 8))  # fmt: skip
        old = lay.vcpu_info(0) + lay.time
        h["time_old"] = (self.xen.shared_info.u32(old + V.TIME_INFO_version),
                         self.xen.shared_info.u64(old + V.TIME_INFO_system_time))  # fmt: skip
        self.pending_word(1 << T)
        self.mask_word(1 << T)

    def stage_17(self, value):  # poll timeout
        self.pending_word(0)

    def stage_18(self, value):  # poll woken by a masked port: arm the timer, T still masked
        t = self.m.clock.now + 100 * MS
        self.xen.vcpus[0].set_singleshot(t)
        self.log[18].host["deadline"] = t

    def stage_20(self, value):  # poll woken by an interrupt
        self.pending_word(0)
        self.mask_word(0)
        xv = self.xen.vcpus[0]
        t = self.m.clock.now + 100 * MS
        xv.set_singleshot(t)
        self.log[20].host.update(deadline=t, readback=xv.singleshot.deadline)
        self.expected = True

    def stage_21(self, value):  # timer in the past
        xv = self.xen.vcpus[0]
        self.log[21].host["was_active"] = xv.singleshot.active
        self.pending_word(0)
        xv.set_singleshot(self.m.clock.now - 100 * MS)
        self.expected = True


# The guest -------------------------------------------------------------------------------------
def guest(rt):
    hal, lay, si = rt.hal, rt.layout, rt.shared_info
    vi = si.gpa + VCPU_INFO_OFFSET
    saw = [0]

    def report(v):
        rt.sync(REPORT, v)

    def evtchn_handler(vector):  # KVM's: clear upcall_pending and pending_sel, say so
        hal.w8(vi + lay.upcall_pending, 0)
        hal.w64(vi + lay.pending_sel, 0)
        saw[0] += 1
        rt.sync(SAW_IRQ, vector)

    def wait_for_irq():
        # KVM spins with `rep nop`; here: cli, check, `sti; hlt` (no lost wake-up), as long as
        # it takes -- an upcall that never comes ends the run as a deadlock.
        while True:
            rt.arch.cli()
            if saw[0]:
                break
            rt.arch.safe_halt()
        rt.arch.sti()
        saw[0] = 0

    def pending0():
        return hal.r64(si.pending_word(0))

    ev = EventChannels(rt)  # hypercall wrappers only: no mask-all, no runtime upcall
    arg = rt.args.alloc(V.REGISTER_VCPU_INFO_SIZE)
    hal.write(arg, pack(V.REGISTER_VCPU_INFO_SIZE, ((V.REGISTER_VCPU_INFO_mfn, 8, si.gfn),
                                                     (V.REGISTER_VCPU_INFO_offset, 4,
                                                      VCPU_INFO_OFFSET))))  # fmt: skip
    rt.check_eq(rt.hc.vcpu_op(V.VCPUOP_register_vcpu_info, 0, arg), 0, "register_vcpu_info")
    rt.args.free(arg)
    rt.sync(SETUP)
    rt.arch.set_vector(VECTOR, evtchn_handler)
    Upcall(rt).set_param(H.HVM_PARAM_CALLBACK_IRQ,
                         (H.HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | VECTOR)  # fmt: skip
    T = ev.bind_virq(X.VIRQ_TIMER, 0)
    U = ev.alloc_unbound(X.DOMID_SELF)
    L = ev.bind_interdomain(X.DOMID_SELF, U)
    B = ev.bind_interdomain(0, rt.config["backend_port"])
    ev.clear(L)  # both were marked pending when bound (Xen covers sends while unbound)
    ev.clear(B)
    rt.sync(PORTS, T | L << 12 | U << 24 | B << 36)
    rt.arch.sti()
    wait_for_irq()  # the registration's upcall

    # 1. Direct injection: the host sets upcall_pending.
    rt.sync(1)
    wait_for_irq()

    # 6. Masked event: spin until the pending word is non-zero; no interrupt.
    rt.sync(6)
    spins = 0
    while not pending0():
        spins += 1
        rt.check(spins < 1000, "the masked event never became pending")
    report(pending0())
    report(hal.r8(vi + lay.upcall_pending))
    report(hal.r64(vi + lay.pending_sel))
    report(spins)

    # 7. Unmasked event on TEST2 (backend send).
    rt.sync(7)
    wait_for_irq()
    report(pending0())

    # 10. Guest EVTCHNOP_send on U, delivered to L.
    rt.sync(10)
    ev.send(U)
    wait_for_irq()
    report(pending0())

    # 13. Timer setup: 100 ms from now.
    rt.sync(13)
    deadline = rt.clock_monotonic() + 100 * MS
    report(rt.hc.set_timer_op(deadline))
    report(deadline)

    # 14. Timer wait.
    rt.sync(14)
    wait_for_irq()
    report(rt.clock_monotonic())
    report(pending0())

    # 16. Poll ready: T pending and masked; SCHEDOP_poll([T], timeout 0) returns at once.
    rt.sync(16)
    t0 = rt.clock_monotonic()
    report(rt.poll([T], 0))
    report(rt.clock_monotonic() - t0)

    # 17. Poll timeout. KVM's value first (100 ms, absolute on Xen: already past), then an
    # absolute deadline 100 ms ahead.
    rt.sync(17)
    t0 = rt.clock_monotonic()
    report(t0)
    report(rt.poll([T], 100 * MS))
    report(rt.clock_monotonic() - t0)
    deadline = rt.clock_monotonic() + 100 * MS
    report(deadline)
    report(rt.poll([T], deadline))
    report(rt.clock_monotonic())

    # 18. Poll woken by a masked port: the host arms the timer, T stays masked.
    rt.sync(18)
    report(rt.poll([T], 0))
    report(rt.clock_monotonic())
    report(pending0())
    report(hal.r8(vi + lay.upcall_pending))

    # 20. Poll on another port (L), woken by the unmasked timer event, which also upcalls.
    rt.sync(20)
    report(rt.poll([L], 0))
    report(rt.clock_monotonic())
    report(saw[0])  # the upcall ran on the way back from the poll
    wait_for_irq()

    # 21. Timer in the past: upcall at once.
    rt.sync(21)
    wait_for_irq()
    report(rt.clock_monotonic())
    rt.done()


def _backend(machine, args):
    be = machine.backend
    port = be.alloc_unbound(machine.domid)
    host = Host(machine, port)
    machine.on_sync = host.on_sync
    machine.kvm_host = host
    return {"backend_port": port}


@pytest.fixture(scope="module")
def kvm():
    """One run through every stage; (result, host)."""

    class Guest:
        main = staticmethod(guest)
        backend = staticmethod(_backend)
        OPTIONS = {"callback": "vector"}

    machine, result = run_guest(Guest, "pvh-x86_64", budget_ns=10 * 10**9, trace=True)
    return result, machine.kvm_host


def stage(kvm, n):
    result, host = kvm
    assert host.error is None, host.error
    assert n in host.log, f"the run stopped before stage {n}: {result.outcome.message}"
    return host.log[n], host


# Tests -----------------------------------------------------------------------------------------
def test_run_completes_and_every_irq_was_expected(kvm):
    result, host = kvm
    assert host.error is None, host.error
    assert (result.status, result.outcome.kind) == (0, "shutdown"), result.outcome.message
    assert [msg.kind for msg in result.messages][-2:] == ["done", "exit"]
    assert list(host.log) == [SETUP, PORTS, *SCENARIOS]
    injected = [e[3]["vector"] for e in result.trace.of_kind("inject")]
    irqs = sum(len(s.irqs) for s in host.log.values())
    assert injected == [VECTOR] * irqs


def test_setup_vcpu_info_registered_outside_its_slot(kvm):
    s, host = stage(kvm, SETUP)
    assert s.host["gpa"] == (0x140 << 12) + VCPU_INFO_OFFSET
    # Xen marks everything pending on registration (common/domain.c map_vcpu_info) ...
    assert s.host["upcall_pending"] == 1 and s.host["pending_sel"] == (1 << 64) - 1
    # ... so the guest takes exactly one upcall once interrupts are on.
    assert s.irqs == [] and len(host.log[PORTS].irqs) == 1


def test_1_direct_injection(kvm):
    s, _ = stage(kvm, 1)
    assert len(s.irqs) == 1
    assert s.irqs[0] - s.time < SOON


def test_6_masked_event_sets_pending_without_an_interrupt(kvm):
    s, host = stage(kvm, 6)
    L = host.ports["L"]
    pending, upcall_pending, sel, spins = s.reports
    assert pending == 1 << L
    assert (upcall_pending, sel) == (0, 0)  # Xen saw the mask: no selector, no upcall
    assert spins == 0  # the host set it before the guest looked
    assert s.irqs == []


def test_7_unmasked_event_upcalls(kvm):
    s, host = stage(kvm, 7)
    assert len(s.irqs) == 1 and s.irqs[0] - s.time < SOON
    assert s.reports == [1 << host.ports["B"]]


def test_10_guest_send_lands_on_the_local_port(kvm):
    s, host = stage(kvm, 10)
    assert len(s.irqs) == 1 and s.irqs[0] - s.time < SOON
    assert s.reports == [1 << host.ports["L"]]
    result, _ = kvm
    sends = [e for e in result.trace.of_kind("evtchn_send") if e[0] >= s.time]
    assert sends[0][3]["port"] == host.ports["U"]


def test_13_timer_setup(kvm):
    s, _ = stage(kvm, 13)
    rc, deadline = s.reports
    assert rc == 0
    assert deadline - s.time >= 100 * MS
    assert s.irqs == []


def test_14_timer_wait(kvm):
    s, host = stage(kvm, 14)
    _, deadline = host.log[13].reports
    # The host reads the timer back: armed, on the VIRQ_TIMER port, at the guest's deadline.
    assert s.host == {"active": True, "deadline": deadline, "timer_port": host.ports["T"]}
    assert len(s.irqs) == 1
    assert deadline <= s.irqs[0] < deadline + SOON
    woke, pending = s.reports
    assert deadline <= woke < deadline + SOON
    assert pending == 1 << host.ports["T"]


def test_pvclock_follows_the_registered_vcpu_info(kvm):
    """KVM's final check: the vcpu_info copy of the pvclock (shared_info + 0x40 + 0x20) has
    an even, non-zero version and is current; the old slot is no longer written."""
    s, host = stage(kvm, 16)
    version, system_time = s.host["time_new"]
    assert version and version % 2 == 0
    deadline, woke = host.log[13].reports[1], host.log[14].reports[0]
    assert deadline <= system_time <= woke  # refreshed when the timer woke the vCPU
    old_version, old_time = s.host["time_old"]
    assert old_version % 2 == 0 and old_time <= host.log[SETUP].time


def test_16_poll_returns_at_once_for_a_pending_masked_port(kvm):
    s, host = stage(kvm, 16)
    rc, elapsed = s.reports
    assert rc == 0 and elapsed < SOON
    assert s.irqs == []
    result, _ = kvm
    assert not [e for e in result.trace.of_kind("block") if s.time <= e[0] < host.log[17].time]


def test_17_poll_timeout_is_absolute(kvm):
    s, _ = stage(kvm, 17)
    t0, rc1, elapsed1, deadline, rc2, returned = s.reports
    assert t0 > 100 * MS  # KVM's 100 ms, read as absolute system time, is already past
    assert rc1 == 0 and elapsed1 < SOON
    assert rc2 == 0 and deadline <= returned < deadline + SOON
    assert s.irqs == []


def test_18_masked_port_wakes_the_poll_without_an_interrupt(kvm):
    s, host = stage(kvm, 18)
    rc, returned, pending, upcall_pending = s.reports
    deadline = s.host["deadline"]
    assert rc == 0 and deadline <= returned < deadline + SOON
    assert pending == 1 << host.ports["T"]
    assert upcall_pending == 0
    assert s.irqs == []


def test_20_interrupt_ends_a_poll_on_another_port(kvm):
    s, host = stage(kvm, 20)
    assert s.host["readback"] == s.host["deadline"]
    rc, returned, saw = s.reports
    deadline = s.host["deadline"]
    assert rc == 0 and deadline <= returned < deadline + SOON
    assert saw == 1  # delivered on the way out of the poll
    assert len(s.irqs) == 1 and deadline <= s.irqs[0] < deadline + SOON


def test_21_timer_in_the_past_fires_at_once(kvm):
    s, _ = stage(kvm, 21)
    assert s.host["was_active"] is False  # stage 20's timer fired and is gone
    assert len(s.irqs) == 1 and s.irqs[0] - s.time < SOON
