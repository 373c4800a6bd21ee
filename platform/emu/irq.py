# Host-raised interrupt vectors: the simplest interrupt source a vCPU can have. Tests and the
# race explorer use it to place an interrupt at a chosen moment; the callback methods of the
# event-channel work are richer sources with the same two methods.


class HostIRQ:
    """Edge-like: each raise_vector() is delivered exactly once, in raise order."""

    def __init__(self):
        self.queue = []

    def raise_vector(self, vector):
        if not 0x10 <= vector <= 0xFF:
            raise ValueError("vector must be 0x10..0xff")
        self.queue.append(vector)

    def pending(self):
        return self.queue[0] if self.queue else None

    def acknowledge(self, vector):
        self.queue.remove(vector)


def host_irq(vcpu):
    """The vCPU's HostIRQ source, created on first use."""
    for src in vcpu.irq_sources:
        if isinstance(src, HostIRQ):
            return src
    src = HostIRQ()
    vcpu.irq_sources.append(src)
    return src
