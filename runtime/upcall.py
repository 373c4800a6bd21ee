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
UPCALL_VECTOR = 0x20  # x86: what Solo5 and Mini-OS use
HANDLERS_IRQ = "irq"  # handlers run in the top half, interrupts off (Mini-OS, Solo5)
HANDLERS_DEFERRED = "deferred"  # the top half queues; a bottom half runs them with IRQs on


class Upcall:
    def __init__(self, rt, method=CALLBACK_VECTOR, handlers=HANDLERS_IRQ):
        if method not in rt.arch.callbacks:
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
        self.eoi_in_entry = False

    def setup(self):
        """Register the upcall with Xen and the CPU; how depends on the architecture and the
        method (runtime/arch/*: setup_upcall)."""
        self.rt.arch.setup_upcall(self)

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
    def entry(self, vector):
        """The top half: the CPU's interrupt entry calls this with interrupts off."""
        self.upcalls += 1
        self.rt.hal.note("upcall", vector)  # for the host's trace, on every architecture
        if self.eoi_in_entry:
            self.eois += 1  # written by the entry code (see the arch's setup_upcall)
        if not self.handle():
            self.spurious += 1

    def handle(self):
        """One demux pass; returns the number of ports served."""
        return self.rt.events.demux(self._dispatch)

    def _dispatch(self, port):
        # For the host's trace: the top half picked this port (an upcall without any is
        # spurious, even when the handler itself is deferred to the bottom half).
        self.rt.hal.note("dispatch", port)
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
