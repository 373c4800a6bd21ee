# Host operations written as steps (race-explorer.md §2.5): each actor is a generator that
# yields just before each access to a shared word (the yielded value names it), the way loom
# treats atomics; the explorer runs every interleaving of the actors' steps -- optionally
# bounded in preemptions -- and checks an invariant once all of them have finished. The
# spaces are tiny (a producer's two stores against a consumer's flush: a handful of
# interleavings), so the search is exhaustive and a stateless replay per interleaving.
#
# First user: Xen's RISC-V pending / pending-mask tracking (platform/xen/irqs_riscv.py,
# reference/xen-abi.md §15.8), vcpu_set_interrupt on another pCPU against the vCPU's flush
# before it enters the guest. With the shipped order (pending bit, then mask bit) every
# interleaving keeps the interrupt; with the reversed order one interleaving loses it.
#
# Seam for guest runs on sbi-riscv64: the same generators can be stepped at the recorder's
# choice points (a timer expiry on "another pCPU" interleaved with the flush at VM entry) once
# the riscv64 vCPU exposes choice points the way record.py hooks x86's (its HAL boundary hook
# already exists; VcpuIrqs.between is where a consumer step can be let in).
from dataclasses import dataclass


@dataclass
class StepResult:
    runs: int  # interleavings run to the end
    failing: list | None  # [(actor, step)] of the first interleaving the check rejected
    message: str = ""

    @property
    def schedule(self):
        """The failing interleaving as one line: 'sw=producer:irqs_pending_mask,...'."""
        return "sw=" + ",".join(f"{a}:{s}" for a, s in self.failing or ())


def _replay(make, prefix):
    """Run the actors along prefix (actor names, one per step). Returns (live, state, steps,
    preemptions): live maps each unfinished actor to its next step's name."""
    actors, state = make()
    gens, live = {}, {}
    for name, factory in actors.items():
        gen = factory()
        try:
            live[name] = next(gen)  # up to its first shared access
            gens[name] = gen
        except StopIteration:
            pass
    steps = []
    preemptions = 0
    for k, name in enumerate(prefix):
        if k and prefix[k - 1] != name and prefix[k - 1] in live:
            preemptions += 1  # switched away from an actor that could go on
        steps.append((name, live.pop(name)))
        try:
            live[name] = next(gens[name])
        except StopIteration:
            pass
    return live, state, steps, preemptions


def explore(make, check, max_preemptions=None):
    """make() -> ({name: () -> generator}, state); check(state) -> '' or what went wrong.
    Depth-first over every interleaving; returns the first failing one, if any."""
    runs = 0
    stack = [[]]
    while stack:
        prefix = stack.pop()
        live, state, steps, preemptions = _replay(make, prefix)
        if not live:
            runs += 1
            msg = check(state)
            if msg:
                return StepResult(runs, steps, msg)
            continue
        for name in sorted(live, reverse=True):
            switch = bool(prefix) and prefix[-1] != name and prefix[-1] in live
            if max_preemptions is not None and preemptions + switch > max_preemptions:
                continue
            stack.append(prefix + [name])
    return StepResult(runs, None)


# Xen's RISC-V interrupt tracking -----------------------------------------------------------------
def riscv_producer(irqs, irq):
    """vcpu_set_interrupt in irqs.order, one step per shared-word access (kick left out)."""
    from ..xen.irqs_riscv import PENDING_FIRST

    if irqs.order == PENDING_FIRST:
        yield "irqs_pending"
        irqs.mark_pending(irq)
        yield "irqs_pending_mask"
        irqs.mark_changed(irq)
    else:
        yield "irqs_pending_mask"
        irqs.mark_changed(irq)
        yield "irqs_pending"
        irqs.mark_pending(irq)


def riscv_consumer(irqs, hw):
    """vcpu_flush_interrupts before entering the guest: xchg the mask, then apply it."""
    yield "xchg irqs_pending_mask"
    taken = irqs.take()
    yield "hvip"
    hw["hvip"] = irqs.apply(taken)


def riscv_tracking(order, irq=None, max_preemptions=None):
    """A timer expiry's vcpu_set_interrupt against one flush, producer order `order`
    (irqs_riscv.PENDING_FIRST or MASK_FIRST). The check, once both are done: the interrupt
    is in hvip, or still queued for the next flush (its mask bit set)."""
    from ..xen.irqs_riscv import IRQ_VS_TIMER, VcpuIrqs

    irq = IRQ_VS_TIMER if irq is None else irq

    def make():
        irqs = VcpuIrqs(order)
        hw = {"hvip": 0}
        actors = {"producer": lambda: riscv_producer(irqs, irq),
                  "consumer": lambda: riscv_consumer(irqs, hw)}  # fmt: skip
        return actors, (irqs, hw)

    def check(state):
        irqs, hw = state
        bit = 1 << irq
        if irqs.pending & bit and not hw["hvip"] & bit and not irqs.mask & bit:
            return (f"irqs_pending has bit {irq}, but hvip does not and irqs_pending_mask is "
                    "clear: no later flush copies it, so the guest's wfi never wakes")  # fmt: skip
        return ""

    return explore(make, check, max_preemptions)
