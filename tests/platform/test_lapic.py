# The virtual local APIC (platform/emu/lapic.py), as Xen's vlapic presents it: first the model
# on its own (reset state, MSR_APIC_BASE rules, priorities, IRR/ISR/EOI, IPIs, MMIO widths),
# then end to end, a Python guest driving it through real loads, stores, rdmsr and wrmsr on
# the emulated CPU while the host raises vectors with set_irq.
import pytest
from micropv.platform.emu import lapic as L
from micropv.platform.emu.lapic import VLAPIC
from micropv.platform.machine import Machine

from micropv import boards

BOARD = boards.get("pvh-x86_64")
BASE = 0xFEE00000
SVR_ON = 0x100 | 0xFF  # software enable, spurious vector 0xFF


def _apic(vcpu_id=0, enabled=True):
    eois = []
    a = VLAPIC(vcpu_id, bsp=vcpu_id == 0, on_eoi=eois.append)
    if enabled:
        a.mmio_write(L.APIC_SPIV, 4, SVR_ON)
    return a, eois


def _vector_reg(a, block, vector):
    """Bit vector of ISR/TMR/IRR as the guest reads it through the MMIO page."""
    return (a.mmio_read(block + 0x10 * (vector // 32), 4) >> (vector % 32)) & 1


# The model ---------------------------------------------------------------------------------------
def test_reset_state():
    a, _ = _apic(enabled=False)
    assert a.read_base_msr() == BASE | 0x800 | 0x100  # enable, BSP
    assert VLAPIC(1, bsp=False).read_base_msr() == BASE | 0x800
    assert a.mmio_read(L.APIC_ID, 4) == 0
    assert VLAPIC(3, bsp=False).mmio_read(L.APIC_ID, 4) == 6 << 24  # Xen: APIC ID = 2 * vcpu
    assert a.mmio_read(L.APIC_LVR, 4) == 0x00050014
    assert a.mmio_read(L.APIC_SPIV, 4) == 0xFF
    assert a.mmio_read(L.APIC_DFR, 4) == 0xFFFFFFFF
    for reg in (L.APIC_TASKPRI, L.APIC_ARBPRI, L.APIC_PROCPRI, L.APIC_EOI, L.APIC_LDR,
                L.APIC_ESR, L.APIC_ICR, L.APIC_ICR2, L.APIC_TMICT, L.APIC_TMCCT, L.APIC_TDCR,
                0x3F0, 0xFFC):  # fmt: skip
        assert a.mmio_read(reg, 4) == 0, hex(reg)
    for lvt in range(L.APIC_LVTT, L.APIC_LVTERR + 1, 0x10):
        assert a.mmio_read(lvt, 4) == 0x10000, hex(lvt)
    assert a.hw_enabled and not a.sw_enabled and not a.enabled


def test_base_msr_rules():
    a, _ = _apic()
    assert not a.write_base_msr(BASE | 0x800 | 0x400)  # EXTD: no x2APIC here
    assert not a.write_base_msr(BASE | 0x800 | 0x200)  # reserved bit 9
    assert not a.write_base_msr(BASE | 0x800 | 1 << 52)  # above MAXPHYADDR's mask
    assert not a.write_base_msr(0xFED00000 | 0x800)  # moving the window while enabled
    assert a.read_base_msr() == BASE | 0x900  # refused writes change nothing
    assert a.write_base_msr(BASE | 0x900)  # rewriting the same value is fine
    assert a.enabled


def test_hardware_disable_hides_the_page_and_reenable_resets():
    a, _ = _apic()
    a.mmio_write(L.APIC_TASKPRI, 4, 0x20)
    a.set_irq(0x40)
    assert a.write_base_msr(BASE | 0x100)  # clear ENABLE
    assert not a.enabled and a.pending() is None
    assert a.mmio_read(L.APIC_LVR, 4) == 0xFFFFFFFF  # Xen's null handler: all ones
    a.mmio_write(L.APIC_TASKPRI, 4, 0x30)  # dropped
    assert a.write_base_msr(0xFED00000 | 0x100)  # moving it while disabled is allowed (Xen)
    assert a.read_base_msr() == 0xFED00100
    assert not a.write_base_msr(0xFED00000 | 0x900)  # ...but not enabling it there
    assert a.write_base_msr(BASE | 0x900)  # re-enable: vlapic_reset
    assert a.mmio_read(L.APIC_SPIV, 4) == 0xFF  # software-disabled again
    assert a.mmio_read(L.APIC_TASKPRI, 4) == 0 and a.irr == 0
    assert a.hw_enabled and not a.enabled


def test_pending_is_highest_vector_above_ppr_and_acknowledge_moves_it_to_isr():
    a, eois = _apic()
    for v in (0x31, 0x45, 0x40):
        a.set_irq(v)
    assert a.pending() == 0x45
    a.acknowledge(0x45)
    assert _vector_reg(a, L.APIC_ISR, 0x45) and not _vector_reg(a, L.APIC_IRR, 0x45)
    assert a.mmio_read(L.APIC_PROCPRI, 4) == 0x40
    assert a.pending() is None  # 0x40 shares class 4 with the in-service 0x45; 0x31 is lower
    a.set_irq(0x50)
    assert a.pending() == 0x50  # a higher class preempts
    a.acknowledge(0x50)
    a.mmio_write(L.APIC_EOI, 4, 0)  # retires the highest in service: 0x50
    assert eois == [0x50] and a.pending() is None
    a.mmio_write(L.APIC_EOI, 4, 0)
    assert eois == [0x50, 0x45] and a.pending() == 0x40
    a.acknowledge(0x40)
    a.eoi()
    assert a.pending() == 0x31
    a.acknowledge(0x31)
    a.eoi()
    a.eoi()  # nothing in service: legal, reported as None
    assert eois == [0x50, 0x45, 0x40, 0x31, None]
    assert a.isr == a.irr == 0


def test_tpr_gates_by_class():
    a, _ = _apic()
    a.mmio_write(L.APIC_TASKPRI, 4, 0x1_45)  # only the low byte is kept
    assert a.mmio_read(L.APIC_TASKPRI, 4) == 0x45
    assert a.mmio_read(L.APIC_PROCPRI, 4) == 0x45  # TPR class >= ISR class: PPR = TPR
    a.set_irq(0x4F)
    assert a.pending() is None  # class 4 is not above the TPR's class 4
    a.set_irq(0x50)
    assert a.pending() == 0x50
    a.acknowledge(0x50)
    assert a.mmio_read(L.APIC_PROCPRI, 4) == 0x50  # ISR class above TPR: PPR = its class
    a.eoi()
    a.mmio_write(L.APIC_TASKPRI, 4, 0x3F)
    assert a.pending() == 0x4F


def test_disabled_apic_latches_irr_and_delivers_once_enabled():
    a, _ = _apic(enabled=False)
    enables = []
    a.on_enable = lambda: enables.append(a.enabled)
    a.set_irq(0x30)
    assert a.pending() is None and _vector_reg(a, L.APIC_IRR, 0x30)
    a.mmio_write(L.APIC_SPIV, 4, SVR_ON)
    assert a.pending() == 0x30
    assert enables == [True]  # where Xen re-asserts a pending upcall vector
    a.mmio_write(L.APIC_SPIV, 4, 0xFF)  # software disable masks every LVT
    assert a.pending() is None and enables == [True]


def test_illegal_vector_sets_esr_and_is_dropped():
    a, _ = _apic()
    a.set_irq(0x0F)
    assert a.irr == 0 and a.pending() is None
    assert a.mmio_read(L.APIC_ESR, 4) == 0x40  # received illegal vector
    a.mmio_write(L.APIC_ESR, 4, 0)  # Xen ignores ESR writes: the bit stays
    assert a.mmio_read(L.APIC_ESR, 4) == 0x40
    b, _ = _apic()
    b.mmio_write(L.APIC_LVTERR, 4, 0xE0)  # unmasked error LVT
    b.set_irq(3)
    b.set_irq(4)  # the ESR bit is already set: no second error interrupt
    assert b.irr == 1 << 0xE0


def test_icr_self_ipi_and_destinations():
    a, _ = _apic(vcpu_id=1)
    a.mmio_write(L.APIC_ICR, 4, 1 << 18 | 0x41)  # shorthand self, fixed
    assert _vector_reg(a, L.APIC_IRR, 0x41) and a.sent_ipis == []
    assert a.mmio_read(L.APIC_ICR, 4) == 1 << 18 | 0x41
    a.mmio_write(L.APIC_ICR2, 4, 0x02_123456)  # only the destination byte is kept
    assert a.mmio_read(L.APIC_ICR2, 4) == 0x02_000000
    a.mmio_write(L.APIC_ICR, 4, 1 << 12 | 0x42)  # physical, dest 2 = our own ID
    assert _vector_reg(a, L.APIC_IRR, 0x42) and a.sent_ipis == []
    assert a.mmio_read(L.APIC_ICR, 4) == 0x42  # the delivery-status bit reads idle
    a.mmio_write(L.APIC_ICR2, 4, 0x04_000000)
    a.mmio_write(L.APIC_ICR, 4, 0x43)  # another APIC
    assert not _vector_reg(a, L.APIC_IRR, 0x43)
    a.mmio_write(L.APIC_ICR, 4, 3 << 18 | 0x44)  # all but self
    a.mmio_write(L.APIC_ICR, 4, 2 << 18 | 0x45)  # all including self
    a.mmio_write(L.APIC_ICR, 4, 1 << 18 | 0x400 | 2)  # NMI to self: not modelled here
    assert not _vector_reg(a, L.APIC_IRR, 0x44) and _vector_reg(a, L.APIC_IRR, 0x45)
    assert a.sent_ipis == [(0x43, 0x04_000000), (3 << 18 | 0x44, 0x04_000000),
                           (2 << 18 | 0x45, 0x04_000000), (1 << 18 | 0x402, 0x04_000000)]  # fmt: skip
    a.mmio_write(L.APIC_ICR, 4, 1 << 18 | 0x0E)  # fixed vector < 16: send illegal vector
    assert a.mmio_read(L.APIC_ESR, 4) == 0x20 and not a.irr & 0xFFFF


def test_self_ipi_to_a_disabled_apic_is_dropped():
    a, _ = _apic(enabled=False)  # vlapic_accept_irq checks vlapic_enabled, unlike set_irq
    a.mmio_write(L.APIC_ICR, 4, 1 << 18 | 0x41)
    assert a.irr == 0


def test_logical_destination_matches_ldr():
    a, _ = _apic()
    a.mmio_write(L.APIC_LDR, 4, 0x02_FFFFFF)
    assert a.mmio_read(L.APIC_LDR, 4) == 0x02_000000
    a.mmio_write(L.APIC_ICR2, 4, 0x06_000000)
    a.mmio_write(L.APIC_ICR, 4, 0x800 | 0x51)  # flat model: 0x02 & 0x06
    assert _vector_reg(a, L.APIC_IRR, 0x51)
    a.mmio_write(L.APIC_DFR, 4, 0)
    assert a.mmio_read(L.APIC_DFR, 4) == 0x0FFFFFFF  # cluster model
    a.mmio_write(L.APIC_ICR, 4, 0x800 | 0x52)  # cluster 0 members 0x6 vs LDR 0x02: match
    a.mmio_write(L.APIC_ICR2, 4, 0x16_000000)
    a.mmio_write(L.APIC_ICR, 4, 0x800 | 0x53)  # cluster 1: no match
    assert _vector_reg(a, L.APIC_IRR, 0x52) and not _vector_reg(a, L.APIC_IRR, 0x53)
    assert len(a.sent_ipis) == 3  # a logical destination may name other APICs too


def test_mmio_widths_follow_xen():
    a, _ = _apic()
    assert a.mmio_read(L.APIC_LVR, 1) == 0x14
    assert a.mmio_read(L.APIC_LVR + 2, 2) == 0x0005
    assert a.mmio_read(L.APIC_LVR + 4, 4) == 0  # the high half of an 8-byte load
    assert a.mmio_read(L.APIC_LVR + 3, 2) == 0  # straddles the register's 32 bits
    a.mmio_write(L.APIC_TASKPRI, 1, 0x30)
    assert a.mmio_read(L.APIC_TASKPRI, 4) == 0x30
    a.mmio_write(L.APIC_TASKPRI + 4, 4, 0x50)  # outside the register: dropped
    a.mmio_write(L.APIC_IRR, 4, 0xFFFFFFFF)  # read-only
    a.mmio_write(0x3F0, 4, 0x1234)  # no register there
    assert a.mmio_read(L.APIC_TASKPRI, 4) == 0x30 and a.irr == 0
    assert a.mmio_read(0x3F0, 4) == 0


def test_lvt_and_timer_registers_keep_values():
    a, _ = _apic(enabled=False)
    a.mmio_write(L.APIC_LVT0, 4, 0x700)  # ExtINT, unmasked, but software-disabled:
    assert a.mmio_read(L.APIC_LVT0, 4) == 0x10700  # Xen forces the mask
    a.mmio_write(L.APIC_SPIV, 4, SVR_ON)
    a.mmio_write(L.APIC_LVTT, 4, 0xFFFF_FFFF)
    assert a.mmio_read(L.APIC_LVTT, 4) == 0x7_10FF  # masked, mode 11, vector; no TSC-deadline
    a.mmio_write(L.APIC_LVTT, 4, 1 << 17 | 0xEF)  # periodic, unmasked: no interrupt ever comes
    a.mmio_write(L.APIC_TMICT, 4, 1000)
    a.mmio_write(L.APIC_TDCR, 4, 0xF)
    assert a.mmio_read(L.APIC_TMICT, 4) == 1000
    assert a.mmio_read(L.APIC_TMCCT, 4) == 0
    assert a.mmio_read(L.APIC_TDCR, 4) == 0xB
    a.mmio_write(L.APIC_LVTT, 4, 2 << 17 | 0xEF)  # into TSC-deadline mode: TMICT cleared
    assert a.mmio_read(L.APIC_TMICT, 4) == 0
    a.mmio_write(L.APIC_TMICT, 4, 5)  # ignored in TSC-deadline mode
    assert a.regs[L.APIC_TMICT] == 0
    a.mmio_write(L.APIC_SPIV, 4, 0xFF)
    assert a.mmio_read(L.APIC_LVTT, 4) & 0x10000 and a.mmio_read(L.APIC_LVT0, 4) & 0x10000


# End to end: a Python guest on the emulated CPU ----------------------------------------------------
def _run(main):
    m = Machine(BOARD, budget_ns=10**9, trace=True)
    return m, m.run_python(main)


def _enable(rt):
    svr = rt.arch.mmio_read32(BASE + L.APIC_SPIV)
    rt.arch.mmio_write32(BASE + L.APIC_SPIV, svr | SVR_ON)


def _window(rt, n=3):
    """A few HAL calls: interrupt windows."""
    for _ in range(n):
        rt.hal.r32(BOARD.runtime_layout["scratch"])


def _irr(rt, vector):
    return rt.arch.mmio_read32(BASE + L.APIC_IRR + 0x10 * (vector // 32)) >> (vector % 32) & 1


def test_guest_sees_apic_base_msr_and_version():
    seen = {}

    def main(rt):
        seen["base"] = rt.arch.rdmsr(0x1B)
        seen["version"] = rt.arch.mmio_read32(BASE + L.APIC_LVR)
        seen["id"] = rt.arch.mmio_read32(BASE + L.APIC_ID)
        seen["svr"] = rt.arch.mmio_read32(BASE + L.APIC_SPIV)
        _enable(rt)
        seen["svr after"] = rt.arch.mmio_read32(BASE + L.APIC_SPIV)
        rt.arch.wrmsr(0x1B, seen["base"])  # rewriting it unchanged is allowed
        # A 64-bit load is two 32-bit MMIO reads in Unicorn: VERSION, then 0 from +4.
        seen["load64"] = rt.arch.call(rt.arch._emit(b"\x48\x8b\x07\xc3"), (BASE + L.APIC_LVR,))

    m, result = _run(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    base = seen["base"]
    assert base & ~0xFFF == 0xFEE00000 and base & 0x800 and base & 0x100
    assert seen["version"] == 0x00050014
    assert seen["id"] == 0 and seen["svr"] == 0xFF and seen["svr after"] == 0x1FF
    assert seen["load64"] == 0x00050014
    assert m.vcpus[0].lapic.enabled


def test_in_service_vector_blocks_its_class_until_eoi():
    log = []

    def main(rt):
        lapic = rt.hal.machine.vcpus[0].lapic
        _enable(rt)

        def handler(v):
            n = len([e for e in log if e[0] == "handler"])
            log.append(("handler", v, n))
            if n == 1:  # the second delivery raises a third, then EOIs before returning
                lapic.set_irq(0x30)
                rt.arch.mmio_write32(BASE + L.APIC_EOI, 0)
                log.append("eoi in handler, returning")
            elif n == 2:
                rt.arch.mmio_write32(BASE + L.APIC_EOI, 0)

        rt.arch.set_vector(0x30, handler)
        lapic.set_irq(0x30)
        _window(rt)
        log.append("sti")
        rt.arch.sti()
        _window(rt)
        log.append("first handled, no EOI")
        lapic.set_irq(0x30)
        _window(rt)
        log.append(("latched", _irr(rt, 0x30)))
        rt.arch.mmio_write32(BASE + L.APIC_EOI, 0)  # retire the first
        _window(rt)
        log.append("end")

    m, result = _run(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert log == ["sti", ("handler", 0x30, 0), "first handled, no EOI", ("latched", 1),
                   ("handler", 0x30, 1), "eoi in handler, returning", ("handler", 0x30, 2),
                   "end"]  # fmt: skip
    assert m.vcpus[0].lapic.isr == m.vcpus[0].lapic.irr == 0
    assert len(result.trace.of_kind("inject")) == 3


def test_lower_class_waits_for_higher_in_service():
    log = []

    def main(rt):
        lapic = rt.hal.machine.vcpus[0].lapic
        _enable(rt)
        for vec in (0x30, 0x50, 0x60):
            rt.arch.set_vector(vec, log.append)  # no EOI from the handlers
        rt.arch.sti()
        lapic.set_irq(0x50)
        _window(rt)
        lapic.set_irq(0x30)
        _window(rt)
        log.append("0x30 blocked")
        lapic.set_irq(0x60)  # a higher class still gets through
        _window(rt)
        rt.arch.mmio_write32(BASE + L.APIC_EOI, 0)  # retires 0x60; 0x50 still blocks 0x30
        _window(rt)
        log.append("0x60 retired")
        rt.arch.mmio_write32(BASE + L.APIC_EOI, 0)  # retires 0x50
        _window(rt)

    m, result = _run(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert log == [0x50, "0x30 blocked", 0x60, "0x60 retired", 0x30]


def test_tpr_blocks_a_vector_of_its_class():
    log = []

    def main(rt):
        lapic = rt.hal.machine.vcpus[0].lapic
        _enable(rt)
        rt.arch.set_vector(0x30, log.append)
        rt.arch.mmio_write32(BASE + L.APIC_TASKPRI, 0x40)
        rt.arch.sti()
        lapic.set_irq(0x30)
        _window(rt)
        log.append(("blocked by TPR", rt.arch.mmio_read32(BASE + L.APIC_PROCPRI)))
        rt.arch.mmio_write32(BASE + L.APIC_TASKPRI, 0)
        _window(rt)

    _, result = _run(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert log == [("blocked by TPR", 0x40), 0x30]


def test_disabled_apic_latches_then_delivers_when_software_enabled():
    log = []

    def main(rt):
        lapic = rt.hal.machine.vcpus[0].lapic
        rt.arch.set_vector(0x30, log.append)
        rt.arch.sti()
        lapic.set_irq(0x30)
        _window(rt)
        log.append(("latched", _irr(rt, 0x30)))
        _enable(rt)
        _window(rt)

    _, result = _run(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    assert log == [("latched", 1), 0x30]


@pytest.mark.parametrize(
    "value",
    [BASE | 0x900 | 0x400, BASE | 0x900 | 0x2, 0xFED00000 | 0x900],
    ids=["x2apic-enable", "reserved-bit", "moved-base"],
)
def test_bad_apic_base_write_is_gp(value):
    after = []

    def main(rt):
        rt.arch.wrmsr(0x1B, value)
        after.append("still running")

    _, result = _run(main)
    assert (result.status, result.outcome.kind) == (3, "fault")
    assert "#GP" in result.outcome.message and "0x1b" in result.outcome.message
    assert after == []


def test_eoi_trace_events_and_listeners():
    heard = []

    def main(rt):
        m = rt.hal.machine
        vcpu = m.vcpus[0]
        vcpu.eoi_listeners.append(lambda cpu, vec: heard.append((cpu.id, vec)))
        _enable(rt)
        rt.arch.set_vector(0x30, lambda v: rt.arch.mmio_write32(BASE + L.APIC_EOI, 0))
        rt.arch.sti()
        vcpu.lapic.set_irq(0x30)
        _window(rt)
        rt.arch.mmio_write32(BASE + L.APIC_EOI, 0)  # nothing in service

    _, result = _run(main)
    assert (result.status, result.outcome.kind) == (0, "shutdown")
    eois = result.trace.of_kind("eoi")
    assert [(e[1], e[3]) for e in eois] == [(0, {"vector": 0x30}), (0, {"vector": None})]
    assert heard == [(0, 0x30), (0, None)]
