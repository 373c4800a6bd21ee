# How Xen makes an event-channel upcall pending on an x86 HVM/PVH vCPU: the per-vCPU LAPIC
# vector, the global callback vector, or (inert on PVH) a GSI / PCI INTx line.
# Ref: xen/arch/x86/hvm/irq.c (hvm_assert_evtchn_irq, hvm_vcpu_has_pending_irq),
# xen/arch/x86/hvm/vlapic.c.
from micropv.runtime.abi import hvm as H


class CallbackVectorSource:
    """HVM_PARAM_CALLBACK_IRQ type vector as the vCPU's interrupt source: level-like. Xen's
    hvm_vcpu_has_pending_irq() injects the vector on every VM entry while upcall_pending is
    1 -- no LAPIC, no EOI -- so the guest must clear upcall_pending or it fires again."""

    def __init__(self, xv):
        self.xv = xv
        self.xen = xv.xen

    def pending(self):
        xen = self.xen
        if xen.callback_type != H.HVM_PARAM_CALLBACK_TYPE_VECTOR:
            return None
        buf, base = self.xv._vi
        return xen.callback_vector if buf[base] & 1 else None

    def acknowledge(self, vector):
        self.xv.upcalls += 1


class X86UpcallDelivery:
    def __init__(self, xv):
        self.xv = xv
        self.xen = xv.xen
        cpu = xv.cpu
        self.lapic = cpu.lapic
        cpu.irq_sources.insert(0, CallbackVectorSource(xv))
        self.lapic.on_enable = self._lapic_enabled

    def assert_evtchn_irq(self):
        """hvm_assert_evtchn_irq, in Xen's order of precedence."""
        xv = self.xv
        if xv.upcall_vector:
            # Edge, through IRR; needs EOI. Only into an enabled vLAPIC: enabling it later
            # re-asserts (see _lapic_enabled), as Xen does since its 2022-11 vlapic fix.
            if self.lapic.enabled:
                self.lapic.set_irq(xv.upcall_vector)
            xv.kick()
        elif self.xen.callback_type == H.HVM_PARAM_CALLBACK_TYPE_VECTOR:
            xv.kick()  # injected at VM entry while upcall_pending stays 1
        # GSI / PCI INTx: a PVH domain has no vIOAPIC or vPIC, so nothing happens.

    def _lapic_enabled(self):
        """The guest software-enabled its vLAPIC: raise an upcall that is already pending
        (xen/arch/x86/hvm/vlapic.c, SVR write)."""
        xv = self.xv
        buf, base = xv._vi
        if xv.upcall_vector and buf[base] & 1:
            self.lapic.set_irq(xv.upcall_vector)
