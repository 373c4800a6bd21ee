# How a run ends, and that it ends the same way every time: faults, deadlock, the virtual-time
# budget, guest exceptions, bad guest accesses, and determinism of console, trace and time.
import sys

from micropv.platform.clock import COST_HAL_MEM_NS, Timer
from micropv.platform.emu.irq import host_irq
from micropv.platform.machine import Machine

from micropv import boards

BOARD = boards.get("pvh-x86_64")
VEC = 0x40


def test_hlt_with_interrupts_disabled_is_a_fault(micropv_run):
    def main(rt):
        rt.arch.halt()  # IF=0 since boot

    result = micropv_run(main)
    assert (result.status, result.outcome.kind) == (3, "fault")
    assert "halted with interrupts disabled" in result.outcome.message
    report = result.outcome.report
    assert "rflags=" in report and "rip=" in report and "RFLAGS.IF=0" in report
    assert any(line.lstrip().startswith("=>") and line.rstrip().endswith("hlt")
               for line in report.splitlines())  # fmt: skip


def test_except_exception_cannot_swallow_a_machine_stop(micropv_run):
    after = []

    def main(rt):
        try:
            rt.arch.halt()
        except Exception:
            after.append("swallowed")
        after.append("continued")

    result = micropv_run(main)
    assert (result.status, result.outcome.kind) == (3, "fault")
    assert after == []


def test_safe_halt_with_nothing_to_wake_is_deadlock(micropv_run):
    def main(rt):
        rt.arch.safe_halt()

    result = micropv_run(main)
    assert (result.status, result.outcome.kind) == (4, "deadlock")
    assert "nothing that could wake it" in result.outcome.message


def test_budget_ends_a_spinning_guest():
    budget = 1_000_000
    spins = []

    def main(rt):
        while True:
            rt.hal.r32(0x1000)
            spins.append(1)

    result = Machine(BOARD, budget_ns=budget, trace=True).run_python(main)
    assert (result.status, result.outcome.kind) == (5, "budget")
    assert budget < result.virtual_ns <= budget + 1000
    assert 0 < len(spins) <= budget // COST_HAL_MEM_NS  # bounded work: it cannot run on
    assert "rip=" in result.outcome.report
    assert result.trace.events[-1][2:] == ("end", {"kind": "budget", "status": 5})


def test_budget_ends_a_guest_idle_past_it():
    budget = 1_000_000
    m = Machine(BOARD, budget_ns=budget)
    hir = host_irq(m.vcpus[0])

    def main(rt):
        rt.arch.set_vector(VEC, lambda v: None)
        m.clock.set_timer(Timer(lambda: hir.raise_vector(VEC), "t"), 2 * budget)
        rt.arch.safe_halt()

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (5, "budget")
    assert result.virtual_ns == budget


def _busy_guest(m):
    """A guest that computes, takes interrupts raised at set moments (host raise and a host
    timer while halted) and prints from both its main line and its handler."""
    hir = host_irq(m.vcpus[0])
    buf = 0x200000

    def main(rt):
        def handler(v):
            rt.hal.w64(buf + 8, rt.hal.r64(buf + 8) + v)
            rt.console_write("irq %#x at %d\n" % (v, rt.clock_monotonic()))

        rt.arch.set_vector(VEC, handler)
        rt.arch.set_vector(VEC + 1, handler, ist=1)
        rt.arch.sti()
        total = 0
        for i in range(40):
            rt.hal.w32(buf, i * i)
            total += rt.hal.r32(buf)
            if i % 10 == 3:
                hir.raise_vector(VEC)
            if i == 25:
                m.clock.set_timer(Timer(lambda: hir.raise_vector(VEC + 1), "t"),
                                  m.clock.now + 5_000)  # fmt: skip
                rt.arch.safe_halt()
        rt.console_write("total %d irqsum %d now %d\n" % (total, rt.hal.r64(buf + 8),
                                                          rt.clock_monotonic()))  # fmt: skip

    return main


def test_same_guest_runs_identically():
    runs = []
    for _ in range(2):
        m = Machine(BOARD, budget_ns=10**9, trace=True)
        runs.append(m.run_python(_busy_guest(m)))
    a, b = runs
    assert (a.status, a.outcome.kind) == (0, "shutdown")
    assert a.console.count("irq 0x40") == 4 and a.console.count("irq 0x41") == 1
    assert "total 20540 irqsum %d" % (4 * VEC + VEC + 1) in a.console
    assert len(a.trace.of_kind("inject")) == 5
    assert a.console == b.console
    assert a.trace.events == b.trace.events
    assert a.virtual_ns == b.virtual_ns


def test_guest_exception_reports_guest_traceback(micropv_run):
    where = []

    def main(rt):
        where.append(sys._getframe().f_lineno + 1)
        raise ValueError("boom from the guest")

    result = micropv_run(main)
    assert (result.status, result.outcome.kind) == (1, "guest-error")
    assert "ValueError: boom from the guest" in result.outcome.message
    report = result.outcome.report
    assert report.startswith("guest Python traceback")
    assert f'File "{__file__}", line {where[0]}, in main' in report
    assert "ValueError: boom from the guest" in report


def test_guest_access_outside_ram_is_a_fault(micropv_run):
    def main(rt):
        rt.hal.r32(1 << 40)

    result = micropv_run(main)
    assert (result.status, result.outcome.kind) == (3, "fault")
    assert hex(1 << 40) in result.outcome.message


def test_vector_without_a_gate_is_a_triple_fault_at_that_hal_call():
    m = Machine(BOARD, budget_ns=10**9)
    hir = host_irq(m.vcpus[0])
    after = []

    def main(rt):
        rt.arch.sti()
        hir.raise_vector(0x50)  # nothing installed in IDT entry 0x50
        after.append(rt.hal.r32(0x1000))  # delivery fails here: the read must not complete
        after.append("continued")

    result = m.run_python(main)
    assert (result.status, result.outcome.kind) == (3, "fault")
    assert "interrupt 0x50 has no usable gate" in result.outcome.message
    assert "triple fault" in result.outcome.message
    assert after == []
