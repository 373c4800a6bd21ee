# How an event-channel upcall reaches a riscv64 vCPU (micropv's ABI, docs/riscv64.md; upstream
# Xen RISC-V stubs vcpu_mark_events_pending). HVM_PARAM_CALLBACK_IRQ names the line:
#   seip  (2 << 56) | 9  supervisor external interrupt, level: held asserted while
#                        upcall_pending = 1 and re-evaluated at every entry into the guest,
#                        like Xen/Arm's PPI 31 (vcpu_update_evtchn_irq). The default.
#   ssip  (2 << 56) | 1  supervisor software interrupt, edge: raised on the 0->1 change of
#                        upcall_pending (vcpu_mark_events_pending); the guest clears sip.SSIP.
#   0                    no upcall (events stay pending; pollers still wake).
# Either way the line goes through Xen's pending / pending-mask tracking (irqs_riscv.py).
from micropv.runtime.abi import hvm as H
from micropv.runtime.abi import sbi as B
from micropv.runtime.abi import xen as X

from .errors import XenError
from .irqs_riscv import IRQ_VS_EXT, IRQ_VS_SOFT

SEIP = "seip"
SSIP = "ssip"
VIA_SEIP = (H.HVM_PARAM_CALLBACK_TYPE_SIP << 56) | B.IRQ_S_EXT
VIA_SSIP = (H.HVM_PARAM_CALLBACK_TYPE_SIP << 56) | B.IRQ_S_SOFT
_VIAS = {VIA_SEIP: SEIP, VIA_SSIP: SSIP, 0: None}
_EXT = 1 << IRQ_VS_EXT


def via_method(value):
    """The method a HVM_PARAM_CALLBACK_IRQ value selects; XenError(EINVAL) if none."""
    if value not in _VIAS:
        raise XenError(X.EINVAL, f"riscv64 callback via {value:#x}: expected "
                                 f"{VIA_SEIP:#x} (seip), {VIA_SSIP:#x} (ssip) or 0")  # fmt: skip
    return _VIAS[value]


class RiscvUpcallDelivery:
    def __init__(self, xv):
        self.xv = xv
        self.xen = xv.xen
        self.cpu = xv.cpu
        self.irqs = xv.cpu.irqs
        self.irqs.kick = xv.kick
        # Xen presets the parameter, as Xen/Arm's toolstack does for PPI 31; guests may read
        # it (HVMOP_get_param) or set another via.
        self.xen.hvm_params.setdefault(H.HVM_PARAM_CALLBACK_IRQ, VIA_SEIP)
        self.method = None
        self.set_method(via_method(self.xen.hvm_params[H.HVM_PARAM_CALLBACK_IRQ]))

    @staticmethod
    def set_callback_via(xen, value):
        """HVM_PARAM_CALLBACK_IRQ on riscv64: switch every vCPU's line (an invalid value
        raises before anything changes)."""
        method = via_method(value)
        xen.machine.trace.event("callback_via", -1, type=value >> 56, value=value)
        for xv in xen.vcpus:
            xv.delivery.set_method(method)

    def set_method(self, method):
        old, self.method = self.method, method
        if old == SEIP and method != SEIP:
            self.irqs.unset_interrupt(IRQ_VS_EXT)  # the level line drops
        self.cpu.level = self._level if method == SEIP else None
        buf, base = self.xv.vcpu_info()
        if method is not None and old != method and buf[base] & 1:
            self.assert_evtchn_irq()  # already pending: raise it on the new line

    def assert_evtchn_irq(self):
        """arch_evtchn_inject: upcall_pending just went 0 -> 1."""
        if self.method == SEIP:
            self.irqs.set_interrupt(IRQ_VS_EXT)
        elif self.method == SSIP:
            self.irqs.set_interrupt(IRQ_VS_SOFT)

    def _level(self):
        """vcpu_update_evtchn_irq, at every entry: the external line follows upcall_pending.
        A guest that leaves upcall_pending set takes the upcall again at once."""
        buf, base = self.xv._vi
        irqs = self.irqs
        if buf[base] & 1:
            if not irqs.pending & _EXT:
                irqs.set_interrupt(IRQ_VS_EXT)
        elif irqs.pending & _EXT:
            irqs.unset_interrupt(IRQ_VS_EXT)
