# Xen's RISC-V pending / pending-mask tracking (platform/xen/irqs_riscv.py, reference/xen-abi.md
# §15.8): the producer's order (pending bit, then mask bit) is what keeps a consumer that runs
# in between from losing an interrupt. Each test scripts an interleaving of the producer's and
# the consumer's steps; the last one does it on a running machine.
import itertools
from pathlib import Path

import pytest
from micropv.platform.launch import run_guest
from micropv.platform.xen.irqs_riscv import (
    IRQ_VS_EXT,
    IRQ_VS_SOFT,
    IRQ_VS_TIMER,
    MASK_FIRST,
    PENDING_FIRST,
    VcpuIrqs,
)

PINGPONG = Path(__file__).resolve().parents[2] / "examples" / "pingpong.py"
EXT = 1 << IRQ_VS_EXT


def producer_steps(irqs, irq, kicks):
    """vcpu_set_interrupt as two separately schedulable steps, in the tracking's order."""
    def pending():
        if irqs.mark_pending(irq):
            kicks.append("pending")

    def mask():
        if irqs.mark_changed(irq):
            kicks.append("mask")

    return [pending, mask] if irqs.order == PENDING_FIRST else [mask, pending]


def consumer_steps(irqs, hw):
    """The vCPU's entry: sync (the guest wrote nothing), xchg the mask, apply it to hvip."""
    taken = []

    def sync():
        irqs.sync(hw["hvip"])

    def take():
        taken.append(irqs.take())

    def apply():
        hw["hvip"] = irqs.apply(taken.pop())

    return [sync, take, apply]


def interleavings(a, b):
    """Every merge of step lists a and b that keeps each list's own order."""
    n = len(a) + len(b)
    for where in itertools.combinations(range(n), len(a)):
        ai, bi, out = iter(a), iter(b), []
        for i in range(n):
            out.append(next(ai) if i in where else next(bi))
        yield out


def run_interleaving(order, schedule):
    """Run one schedule (a list of 'p'/'c' picks), then let the vCPU enter the guest once more
    (a later, undisturbed consumer pass). True when the guest ends up seeing the interrupt."""
    irqs = VcpuIrqs(order)
    hw = {"hvip": 0}
    kicks = []
    steps = {"p": producer_steps(irqs, IRQ_VS_EXT, kicks), "c": consumer_steps(irqs, hw)}
    for pick in schedule:
        steps[pick].pop(0)()
    hw["hvip"] = irqs.consume(hw["hvip"]) or hw["hvip"]  # the next entry into the guest
    return bool(hw["hvip"] & EXT), kicks


def all_schedules():
    return list(interleavings(["p", "p"], ["c", "c", "c"]))


def test_shipped_order_never_loses_an_interrupt():
    for schedule in all_schedules():
        seen, kicks = run_interleaving(PENDING_FIRST, schedule)
        assert seen, schedule
        assert kicks, schedule  # and the vCPU was kicked to notice


def test_reversed_order_loses_one_when_the_consumer_runs_between_the_stores():
    lost = [s for s in all_schedules() if not run_interleaving(MASK_FIRST, s)[0]]
    # The mask bit is set, the consumer takes it (xchg) and applies the still-clear pending
    # bit, then the pending bit lands with no mask bit left to announce it: nobody will ever
    # flush it. Exactly the schedules with the mask store before the take and the pending
    # store after the apply.
    assert lost == [["p", "c", "c", "c", "p"], ["c", "p", "c", "c", "p"]]


def test_the_lost_interrupt_is_stuck_in_irqs_pending():
    irqs = VcpuIrqs(MASK_FIRST)
    irqs.mark_changed(IRQ_VS_EXT)  # the reversed producer's first store
    assert irqs.consume(0) == 0  # the vCPU enters the guest between the two stores
    irqs.mark_pending(IRQ_VS_EXT)  # the second store
    assert irqs.pending == EXT and irqs.mask == 0
    assert irqs.consume(0) is None  # every later entry: nothing changed, nothing flushed
    assert irqs.visible() == 0


def test_kick_on_either_bits_0_to_1_change():
    """Xen's vcpu_set_interrupt kicks when either test_and_set found its bit clear: a pending
    bit set while an unset's mask bit is still queued wakes the vCPU too."""
    kicks = []
    irqs = VcpuIrqs(kick=lambda: kicks.append(1))
    assert irqs.set_interrupt(IRQ_VS_TIMER) == 0 and kicks == [1]
    assert irqs.set_interrupt(IRQ_VS_TIMER) == 0 and kicks == [1]  # nothing changed
    irqs.consume(0)
    irqs.unset_interrupt(IRQ_VS_TIMER)  # no kick; mask bit queued
    assert kicks == [1]
    irqs.set_interrupt(IRQ_VS_TIMER)  # pending 0 -> 1 (mask already set): kick
    assert kicks == [1, 1]


def test_only_vs_software_timer_external_accepted():
    irqs = VcpuIrqs()
    for irq in (0, 1, 3, 5, 9, 11, 12, 13):
        assert irqs.set_interrupt(irq) == -22
        assert irqs.unset_interrupt(irq) == -22
    assert irqs.pending == irqs.mask == 0
    for irq in (IRQ_VS_SOFT, IRQ_VS_TIMER, IRQ_VS_EXT):
        assert irqs.set_interrupt(irq) == 0
    assert irqs.consume(0) == (1 << 2) | (1 << 6) | (1 << 10)


def test_sync_takes_a_guest_written_ssip_unless_a_producer_changed_it():
    soft = 1 << IRQ_VS_SOFT
    irqs = VcpuIrqs()
    assert irqs.consume(soft) == soft  # the guest set SSIP itself: synced, kept
    assert irqs.pending == soft
    assert irqs.consume(0) == 0  # then cleared it: synced, not raised again
    irqs.set_interrupt(IRQ_VS_SOFT)  # a producer's change is queued ...
    assert irqs.consume(0) == soft  # ... and wins over what the guest wrote meanwhile


def test_unknown_order_refused():
    with pytest.raises(ValueError):
        VcpuIrqs("sideways")


# The same race on a machine ------------------------------------------------------------------
@pytest.mark.parametrize("order", (PENDING_FIRST, MASK_FIRST))
def test_reversed_order_loses_the_upcall_on_a_machine(order):
    """pingpong on seip, with the vCPU entering the guest (its consumer pass) between the
    producer's two stores for the first echo. Xen's order delivers every reply; the reversed
    order leaves the first reply pending with no upcall, and the guest reports it."""
    state = {"armed": False, "raced": False}

    def setup(machine):
        cpu = machine.vcpus[0]
        irqs = cpu.irqs
        irqs.order = order

        def between(irq):
            if irq == IRQ_VS_EXT and state["armed"] and not state["raced"]:
                state["raced"] = True
                cpu.flush()  # the vCPU enters the guest between the two stores

        irqs.between = between
        # Open the window when the backend echoes the first ping.
        be = machine.backend
        ((port, echo),) = be.handlers.items()

        def armed_echo(p):
            state["armed"] = True
            echo(p)

        be.handlers[port] = armed_echo

    machine, result = run_guest(PINGPONG, board="sbi-riscv64", options={"callback": "seip"},
                                args={"n": 20}, budget_ns=10**9, setup=setup)  # fmt: skip
    assert state["raced"]
    if order == PENDING_FIRST:
        assert result.status == 0, result.console
        assert result.console.splitlines()[-1] == "round trips: 20"
    else:
        assert result.status == 1
        assert "round 1: the reply is pending but no upcall arrived (callback method seip)" \
            in result.console  # fmt: skip
        assert machine.vcpus[0].irqs.pending & EXT  # stuck: pending, never flushed
