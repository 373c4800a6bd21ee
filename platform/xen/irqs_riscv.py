# Xen's RISC-V tracking of pending vCPU interrupts (xen/arch/riscv/domain.c, from the
# "tracking of pending vCPU interrupts" series, modelled on KVM RISC-V): a lock-free
# multi-producer / single-consumer scheme over two bitmaps.
#   irqs_pending       the interrupts currently pending for the vCPU
#   irqs_pending_mask  which bits of irqs_pending changed since the consumer last looked
# Producers (timers, event channels, IPIs) write irqs_pending first and the mask bit second;
# the consumer -- the vCPU itself, just before it enters the guest -- takes the mask with
# xchg and copies only those bits into hvip. Because of the order, a consumer that sees a
# mask bit also sees its pending bit; the reverse order can lose an interrupt (see
# tests/platform/test_riscv64_tracking.py). Each step is its own method so a race explorer
# can interleave producers and the consumer at any point; set_interrupt() and consume() run
# the steps in Xen's order.
# Bit numbers are hvip's (VS level): the guest sees bit n of hvip as bit n-1 of its sip.
from micropv.runtime.abi import sbi as B

IRQ_VS_SOFT = B.IRQ_VS_SOFT  # 2
IRQ_VS_TIMER = B.IRQ_VS_TIMER  # 6
IRQ_VS_EXT = B.IRQ_VS_EXT  # 10
ACCEPTED = (1 << IRQ_VS_SOFT) | (1 << IRQ_VS_TIMER) | (1 << IRQ_VS_EXT)
EINVAL = 22

PENDING_FIRST = "pending-first"  # Xen's order
MASK_FIRST = "mask-first"  # the broken reversed order, kept for tests
ORDERS = (PENDING_FIRST, MASK_FIRST)


class VcpuIrqs:
    __slots__ = ("pending", "mask", "hvip", "order", "kick", "between")

    def __init__(self, order=PENDING_FIRST, kick=None):
        if order not in ORDERS:
            raise ValueError(f"unknown producer order {order!r}")
        self.pending = 0  # irqs_pending
        self.mask = 0  # irqs_pending_mask
        self.hvip = 0  # v->arch.hvip: the value last given to the guest
        self.order = order
        self.kick = kick  # fn(): vcpu_kick
        # fn(irq), run between a producer's two stores: where a race explorer (or a test)
        # lets the consumer in.
        self.between = None

    # Producer steps -----------------------------------------------------------------------
    def mark_pending(self, irq):
        """test_and_set_bit(irq, irqs_pending); True if it was clear."""
        bit = 1 << irq
        was = self.pending & bit
        self.pending |= bit
        return not was

    def mark_changed(self, irq):
        """test_and_set_bit(irq, irqs_pending_mask); True if it was clear."""
        bit = 1 << irq
        was = self.mask & bit
        self.mask |= bit
        return not was

    def clear_pending(self, irq):
        self.pending &= ~(1 << irq)

    # Producers ------------------------------------------------------------------------------
    def set_interrupt(self, irq):
        """vcpu_set_interrupt: pending bit, (wmb), mask bit; kick if either was clear.
        Returns 0, or -EINVAL for anything but the VS software, timer, external bits."""
        if not (ACCEPTED >> irq) & 1:
            return -EINVAL
        if self.order == PENDING_FIRST:
            kick = self.mark_pending(irq)
            if self.between is not None:
                self.between(irq)
            kick = self.mark_changed(irq) or kick
        else:
            kick = self.mark_changed(irq)
            if self.between is not None:
                self.between(irq)
            kick = self.mark_pending(irq) or kick
        if kick and self.kick is not None:
            self.kick()
        return 0

    def unset_interrupt(self, irq):
        """vcpu_unset_interrupt: clear the pending bit, (wmb), set the mask bit; no kick."""
        if not (ACCEPTED >> irq) & 1:
            return -EINVAL
        if self.order == PENDING_FIRST:
            self.clear_pending(irq)
            self.mark_changed(irq)
        else:
            self.mark_changed(irq)
            self.clear_pending(irq)
        return 0

    # Consumer steps (the vCPU, just before it enters the guest) ------------------------------
    def sync(self, guest_hvip):
        """vcpu_sync_interrupts: the guest may have written sip.SSIP (an alias of hvip.VSSIP).
        If it differs from what we gave it and no producer has a change queued for that bit,
        take the guest's value as the pending state."""
        bit = 1 << IRQ_VS_SOFT
        if (self.hvip ^ guest_hvip) & bit and self.mark_changed(IRQ_VS_SOFT):
            self.pending = (self.pending & ~bit) | (guest_hvip & bit)

    def take(self):
        """xchg(irqs_pending_mask, 0)."""
        mask = self.mask
        self.mask = 0
        return mask

    def apply(self, mask):
        """vcpu_flush_interrupts' update: only the bits that changed, from irqs_pending.
        Returns the new hvip, which the caller writes to the CPU."""
        self.hvip = (self.hvip & ~mask) | (self.pending & mask)
        return self.hvip

    def consume(self, guest_hvip):
        """sync, then flush. Returns the new hvip, or None when nothing changed."""
        self.sync(guest_hvip)
        if not self.mask:
            return None
        return self.apply(self.take())

    def visible(self):
        """What the guest would see after the next flush (the guest's own SSIP writes since
        the last sync aside)."""
        return (self.hvip & ~self.mask) | (self.pending & self.mask)
