# event_channel_op(cmd, arg). Ref: xen/common/event_channel.c do_event_channel_op.
# OUT fields are written back only when the operation succeeds.
from micropv.runtime.abi import event_channel as E
from micropv.runtime.abi import xen as X

from ..errors import XenError


def _u16(raw, off):
    return int.from_bytes(raw[off : off + 2], "little")


def _u32(raw, off):
    return int.from_bytes(raw[off : off + 4], "little")


def _self_only(xen, domid):
    """Unprivileged callers name only themselves (XSM): another domain is -EPERM, an unknown
    one -ESRCH."""
    if domid in (X.DOMID_SELF, xen.machine.domid):
        return
    raise XenError(X.EPERM if domid in xen.domains else X.ESRCH, f"domid {domid:#x}")


def event_channel_op(xen, vcpu, cmd, arg):
    cmd &= 0xFFFFFFFF
    op = _OPS.get(cmd)
    if op is None:
        raise XenError(X.ENOSYS, f"EVTCHNOP {cmd}")
    size, fn = op
    raw = xen.copy_from_guest(arg, size)
    return fn(xen, vcpu, arg, raw)


def _alloc_unbound(xen, vcpu, arg, raw):
    _self_only(xen, _u16(raw, E.ALLOC_UNBOUND_dom))
    port = xen.domain.alloc_unbound(_u16(raw, E.ALLOC_UNBOUND_remote_dom))
    xen.guest_set32(arg + E.ALLOC_UNBOUND_port, port)
    return 0


def _bind_interdomain(xen, vcpu, arg, raw):
    port = xen.domain.bind_interdomain(_u16(raw, E.BIND_INTERDOMAIN_remote_dom),
                                       _u32(raw, E.BIND_INTERDOMAIN_remote_port))  # fmt: skip
    xen.guest_set32(arg + E.BIND_INTERDOMAIN_local_port, port)
    return 0


def _bind_virq(xen, vcpu, arg, raw):
    port = xen.domain.bind_virq(_u32(raw, E.BIND_VIRQ_virq), _u32(raw, E.BIND_VIRQ_vcpu))
    xen.guest_set32(arg + E.BIND_VIRQ_port, port)
    return 0


def _bind_pirq(xen, vcpu, arg, raw):
    raise XenError(X.EPERM, "a PVH domU has no physical IRQs")


def _bind_ipi(xen, vcpu, arg, raw):
    port = xen.domain.bind_ipi(_u32(raw, E.BIND_IPI_vcpu))
    xen.guest_set32(arg + E.BIND_IPI_port, port)
    return 0


def _close(xen, vcpu, arg, raw):
    return xen.domain.close(_u32(raw, E.PORT_ARG_port))


def _send(xen, vcpu, arg, raw):
    port = _u32(raw, E.PORT_ARG_port)
    xen.machine.trace.event("evtchn_send", vcpu.id, port=port)
    result = xen.domain.send(port)
    xen.machine.console_flush()
    return result


def _status(xen, vcpu, arg, raw):
    _self_only(xen, _u16(raw, E.STATUS_dom))
    status, notify, u = xen.domain.status(_u32(raw, E.STATUS_port))
    xen.guest_set32(arg + E.STATUS_status, status)
    xen.guest_set32(arg + E.STATUS_vcpu, notify)
    out = bytearray(8)
    if "dom" in u:
        out[0:2] = u["dom"].to_bytes(2, "little")
    if "port" in u:
        out[4:8] = u["port"].to_bytes(4, "little")
    if "virq" in u:
        out[0:4] = u["virq"].to_bytes(4, "little")
    xen.copy_to_guest(arg + E.STATUS_u, bytes(out))
    return 0


def _bind_vcpu(xen, vcpu, arg, raw):
    return xen.domain.bind_vcpu(_u32(raw, E.BIND_VCPU_port), _u32(raw, E.BIND_VCPU_vcpu))


def _unmask(xen, vcpu, arg, raw):
    port = _u32(raw, E.PORT_ARG_port)
    if not xen.domain.port_is_valid(port):
        raise XenError(X.EINVAL, f"port {port}")
    xen.domain.unmask(port)
    return 0


def _reset(xen, vcpu, arg, raw):
    _self_only(xen, _u16(raw, E.RESET_dom))
    return xen.domain.reset()


def _fifo(xen, vcpu, arg, raw):
    # The FIFO ABI comes later; guests (Linux) fall back to 2-level when this fails.
    raise XenError(X.ENOSYS, "FIFO event channels are not implemented yet")


_OPS = {
    E.EVTCHNOP_alloc_unbound: (E.ALLOC_UNBOUND_SIZE, _alloc_unbound),
    E.EVTCHNOP_bind_interdomain: (E.BIND_INTERDOMAIN_SIZE, _bind_interdomain),
    E.EVTCHNOP_bind_virq: (E.BIND_VIRQ_SIZE, _bind_virq),
    E.EVTCHNOP_bind_pirq: (E.BIND_PIRQ_SIZE, _bind_pirq),
    E.EVTCHNOP_bind_ipi: (E.BIND_IPI_SIZE, _bind_ipi),
    E.EVTCHNOP_close: (E.PORT_ARG_SIZE, _close),
    E.EVTCHNOP_send: (E.PORT_ARG_SIZE, _send),
    E.EVTCHNOP_status: (E.STATUS_SIZE, _status),
    E.EVTCHNOP_bind_vcpu: (E.BIND_VCPU_SIZE, _bind_vcpu),
    E.EVTCHNOP_unmask: (E.PORT_ARG_SIZE, _unmask),
    E.EVTCHNOP_reset: (E.RESET_SIZE, _reset),
    E.EVTCHNOP_init_control: (E.INIT_CONTROL_SIZE, _fifo),
    E.EVTCHNOP_expand_array: (E.EXPAND_ARRAY_SIZE, _fifo),
    E.EVTCHNOP_set_priority: (E.SET_PRIORITY_SIZE, _fifo),
}
