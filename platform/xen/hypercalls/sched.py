# sched_op(cmd, arg). Ref: xen/common/sched/core.c do_sched_op.
from micropv.runtime.abi import sched as S
from micropv.runtime.abi import xen as X

from ..errors import XenError


def sched_op(xen, vcpu, cmd, arg):
    cmd &= 0xFFFFFFFF
    if cmd == S.SCHEDOP_yield:
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
    raise XenError(X.ENOSYS, f"SCHEDOP {cmd}")
