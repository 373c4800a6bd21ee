# sched_op(cmd, arg). Ref: xen/common/sched/core.c do_sched_op.
from micropv.runtime.abi import sched as S
from micropv.runtime.abi import xen as X

from ..errors import XenError
from ..evtchn import ECS_FREE, ECS_RESERVED


def sched_op(xen, vcpu, cmd, arg):
    cmd &= 0xFFFFFFFF
    if cmd == S.SCHEDOP_yield:
        for fn in xen.on_yield:
            fn(vcpu)
        xen.machine.console_flush()
        return 0
    if cmd == S.SCHEDOP_shutdown:
        reason = xen.guest_u32(arg + S.SHUTDOWN_reason)
        if reason > S.SHUTDOWN_MAX:
            raise XenError(X.EINVAL, f"shutdown reason {reason}")
        xen.domain_shutdown(reason)
        return 0
    if cmd == S.SCHEDOP_shutdown_code:
        reason = xen.guest_u32(arg + S.SHUTDOWN_reason)
        if reason > S.SHUTDOWN_MAX:
            raise XenError(X.EINVAL, f"shutdown reason {reason}")
        xen.shutdown_code = reason
        return 0
    if cmd == S.SCHEDOP_block:
        return _block(xen, vcpu)
    if cmd == S.SCHEDOP_poll:
        return _poll(xen, vcpu, arg)
    raise XenError(X.ENOSYS, f"SCHEDOP {cmd}")


def _block(xen, vcpu):
    """vcpu_block_enable_events: set blocked, *then* check for events (no lost wake-up). On
    HVM an event counts only if it can be injected now, so with IF=0 the vCPU sleeps until a
    new notification kicks it and returns with interrupts still off."""
    xv = xen.vcpus[vcpu.id]
    xv.kicked = False
    if xv.need_delivery():
        return 0
    xv.wait("SCHEDOP_block")
    return 0


def _poll(xen, vcpu, arg):
    """Sleep until one of the ports is pending (masked or not), an interrupt can be
    delivered, or the absolute timeout passes (0: none). Ref: sched/core.c do_poll."""
    raw = xen.copy_from_guest(arg, S.POLL_SIZE)
    ports_ptr = int.from_bytes(raw[0:8], "little")
    nr = int.from_bytes(raw[8:12], "little")
    timeout = int.from_bytes(raw[16:24], "little")
    if nr > S.SCHED_POLL_MAX_PORTS:
        raise XenError(X.EINVAL, f"{nr} ports")
    ports = xen.copy_from_guest(ports_ptr, 4 * nr)
    xv = xen.vcpus[vcpu.id]
    xv.kicked = False
    if xv.need_delivery():
        return 0
    port = None
    for i in range(nr):
        port = int.from_bytes(ports[4 * i : 4 * i + 4], "little")
        # evtchn_port_poll (xen/include/xen/event.h): a port that is not valid, or valid but
        # not usable (free, reserved), is -EINVAL -- nothing could ever wake the poller.
        d = xen.domain
        if not d.port_is_valid(port) or d.channel(port).state in (ECS_FREE, ECS_RESERVED):
            raise XenError(X.EINVAL, f"port {port} cannot be polled")
        if d.is_pending(port):
            return 0
    xv.poll_evtchn = port if nr == 1 else -1
    if timeout:
        xen.machine.clock.set_timer(xv.poll_timer, timeout)
    try:
        xv.wait("SCHEDOP_poll")
    finally:
        xv.poll_evtchn = None
        xen.machine.clock.stop_timer(xv.poll_timer)
    return 0
