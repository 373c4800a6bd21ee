# The upcall: how Xen's event notification reaches the guest (the callback method), and what
# the guest does when it arrives (the top half, and an optional bottom half).
# Ref: public/hvm/params.h (HVM_PARAM_CALLBACK_IRQ), public/hvm/hvm_op.h
# (HVMOP_set_evtchn_upcall_vector); guest-anchors §1.3, §12.
from .abi import hvm as H
from .abi import xen as X
from .evtchn import pack

CALLBACK_VECTOR = "vector"  # HVM_PARAM_CALLBACK_IRQ type 2: level-like, no EOI
CALLBACK_LAPIC = "lapic"  # HVMOP_set_evtchn_upcall_vector: per-vCPU, edge, needs EOI
CALLBACK_GSI = "gsi"  # HVM_PARAM_CALLBACK_IRQ type 0: inert on PVH
CALLBACK_INTX = "intx"  # HVM_PARAM_CALLBACK_IRQ type 1: inert on PVH
X86_CALLBACKS = (CALLBACK_VECTOR, CALLBACK_LAPIC, CALLBACK_GSI, CALLBACK_INTX)
HANDLERS_IRQ = "irq"  # handlers run in the top half, interrupts off (Mini-OS, Solo5)
HANDLERS_DEFERRED = "deferred"  # the top half queues; a bottom half runs them with IRQs on

UPCALL_VECTOR = 0x20  # what Solo5 and Mini-OS use
LAPIC_BASE = 0xFEE00000
_APIC_SVR = 0xF0
_APIC_EOI = 0xB0
_APIC_BASE_ENABLE = 1 << 11
_MSR_APIC_BASE = 0x1B


class Upcall:
    def __init__(self, rt, method=CALLBACK_VECTOR, handlers=HANDLERS_IRQ):
        if method not in X86_CALLBACKS:
            raise ValueError("unknown callback method %r" % method)
        if handlers not in (HANDLERS_IRQ, HANDLERS_DEFERRED):
            raise ValueError("unknown handler policy %r" % handlers)
        self.rt = rt
        self.method = method
        self.deferred = handlers == HANDLERS_DEFERRED
        self.queue = []  # ports waiting for the bottom half
        self.ready = []  # ports that had events since the last take_ready()
        self.upcalls = 0
        self.spurious = 0
        self.eois = 0

    def setup(self):
        """Register the upcall with Xen. For `lapic` the APIC is enabled first (Linux learned
        that registering before the APIC is up warns), and Xen asserts the vector at once:
        expect one spurious upcall."""
        rt = self.rt
        arch = rt.arch
        if self.method == CALLBACK_VECTOR:
            arch.set_vector(UPCALL_VECTOR, self._entry)
            self.set_param(H.HVM_PARAM_CALLBACK_IRQ,
                           (H.HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | UPCALL_VECTOR)  # fmt: skip
        elif self.method == CALLBACK_LAPIC:
            base = arch.rdmsr(_MSR_APIC_BASE)
            if not base & _APIC_BASE_ENABLE:
                arch.wrmsr(_MSR_APIC_BASE, base | _APIC_BASE_ENABLE)
            svr = arch.mmio_read32(LAPIC_BASE + _APIC_SVR)
            arch.mmio_write32(LAPIC_BASE + _APIC_SVR, svr | 0x100 | 0xFF)
            # The entry code writes EOI first, as Linux does for the per-vCPU vector: the
            # LAPIC latches a new edge in IRR meanwhile, so nothing raised during the demux
            # is lost.
            arch.set_vector(UPCALL_VECTOR, self._entry, eoi=LAPIC_BASE + _APIC_EOI)
            self.set_upcall_vector(rt.vcpu_id, UPCALL_VECTOR)
            # "Trick toolstack to think we are enlightened" (Xen's own guest code): a non-zero
            # CALLBACK_IRQ; GSI 1 does nothing on PVH, the per-vCPU vector wins.
            self.set_param(H.HVM_PARAM_CALLBACK_IRQ, 1)
        elif self.method == CALLBACK_GSI:
            self.set_param(H.HVM_PARAM_CALLBACK_IRQ, 5)  # GSI 5: stored, never raised on PVH
        else:
            self.set_param(H.HVM_PARAM_CALLBACK_IRQ,
                           (H.HVM_PARAM_CALLBACK_TYPE_PCI_INTX << 56) | (3 << 11) | 1)  # fmt: skip

    # HVM ops ----------------------------------------------------------------------------------
    def _hvm(self, name, op, fields, size):
        rt = self.rt
        arg = rt.args.alloc(size)
        try:
            rt.hal.write(arg, pack(size, fields))
            rt.hc.check(name, rt.hc.hvm_op(op, arg))
            return rt.hal.r64(arg + H.PARAM_value) if op == H.HVMOP_get_param else 0
        finally:
            rt.args.free(arg)

    def set_param(self, index, value):
        self._hvm("HVMOP_set_param", H.HVMOP_set_param,
                  ((H.PARAM_domid, 2, X.DOMID_SELF), (H.PARAM_index, 4, index),
                   (H.PARAM_value, 8, value)), H.PARAM_SIZE)  # fmt: skip

    def get_param(self, index):
        return self._hvm("HVMOP_get_param", H.HVMOP_get_param,
                         ((H.PARAM_domid, 2, X.DOMID_SELF), (H.PARAM_index, 4, index)),
                         H.PARAM_SIZE)  # fmt: skip

    def set_upcall_vector(self, vcpu, vector):
        self._hvm("HVMOP_set_evtchn_upcall_vector", H.HVMOP_set_evtchn_upcall_vector,
                  ((H.EVTCHN_UPCALL_VECTOR_vcpu, 4, vcpu),
                   (H.EVTCHN_UPCALL_VECTOR_vector, 1, vector)),
                  H.EVTCHN_UPCALL_VECTOR_SIZE)  # fmt: skip

    # Top half ---------------------------------------------------------------------------------
    def _entry(self, vector):
        self.upcalls += 1
        if self.method == CALLBACK_LAPIC:
            self.eois += 1  # written by the entry code (see setup)
        if not self.handle():
            self.spurious += 1

    def handle(self):
        """One demux pass; returns the number of ports served."""
        return self.rt.events.demux(self._dispatch)

    def _dispatch(self, port):
        self.ready.append(port)
        if self.deferred:
            self.queue.append(port)
            return
        self._run_handler(port)

    def _run_handler(self, port):
        # Notes for the host's trace: when each port's handler ran (latency, lost events).
        fn = self.rt.events.handlers.get(port)
        self.rt.hal.note("handler", port)
        if fn is not None:
            fn(port)

    # Bottom half ------------------------------------------------------------------------------
    def run_deferred(self):
        """Run queued handlers with interrupts enabled (Solo5/Mirage style bottom half)."""
        handlers = self.rt.events.handlers
        n = 0
        while self.queue:
            port = self.queue.pop(0)
            if port in handlers:
                self._run_handler(port)
                n += 1
        return n

    def take_ready(self):
        ready = self.ready
        self.ready = []
        return ready
