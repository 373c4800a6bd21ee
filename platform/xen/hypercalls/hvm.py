# hvm_op(op, arg). Ref: xen/arch/x86/hvm/hvm.c do_hvm_op, hvmop_set_param, hvm_set_callback_via;
# xen/arch/x86/hvm/irq.c for what each callback type does on a PVH domain.
from micropv.runtime.abi import hvm as H
from micropv.runtime.abi import xen as X

from ..errors import XenError


def _param_arg(xen, arg):
    raw = xen.copy_from_guest(arg, H.PARAM_SIZE)
    domid = int.from_bytes(raw[0:2], "little")
    index = int.from_bytes(raw[4:8], "little")
    value = int.from_bytes(raw[8:16], "little")
    if domid not in (X.DOMID_SELF, xen.machine.domid):
        raise XenError(X.ESRCH if domid not in xen.domains else X.EPERM, f"domid {domid:#x}")
    if index >= H.HVM_NR_PARAMS:
        raise XenError(X.EINVAL, f"HVM param {index}")
    return index, value


def hvm_op(xen, vcpu, op, arg):
    op &= 0xFFFFFFFFFFFFFFFF
    if op == H.HVMOP_set_param:
        index, value = _param_arg(xen, arg)
        if index == H.HVM_PARAM_ALTP2M:
            raise XenError(X.EEXIST, "altp2m")
        if index not in H.GUEST_SETTABLE_PARAMS:
            raise XenError(X.EPERM, f"a guest may not set HVM param {index}")
        if index == H.HVM_PARAM_CALLBACK_IRQ:
            xen.set_callback_via(value)  # first: a via riscv64 refuses is not stored
        xen.hvm_params[index] = value
        return 0
    if op == H.HVMOP_get_param:
        index, _ = _param_arg(xen, arg)
        xen.copy_to_guest(arg + H.PARAM_value, xen.hvm_params.get(index, 0).to_bytes(8, "little"))
        return 0
    if op == H.HVMOP_set_evtchn_upcall_vector:
        if xen.board.arch != "x86_64":
            raise XenError(X.ENOSYS, "HVMOP_set_evtchn_upcall_vector is x86-only")
        raw = xen.copy_from_guest(arg, H.EVTCHN_UPCALL_VECTOR_SIZE)
        target = int.from_bytes(raw[0:4], "little")
        vector = raw[4]
        if vector < 0x10:
            raise XenError(X.EINVAL, f"upcall vector {vector:#x} < 0x10")
        if target >= len(xen.vcpus):
            raise XenError(X.ENOENT, f"no vCPU {target}")
        xv = xen.vcpus[target]
        xv.upcall_vector = vector
        xen.machine.trace.event("upcall_vector", vcpu.id, target=target, vector=vector)
        xv.assert_evtchn_irq()  # Xen asserts at once: the guest sees one spurious upcall
        return 0
    if op == H.HVMOP_get_time:
        xen.copy_to_guest(arg + H.GET_TIME_now, xen.machine.clock.now.to_bytes(8, "little"))
        return 0
    raise XenError(X.ENOSYS, f"HVMOP {op}")
