# vcpu_op(cmd, vcpuid, arg) and set_timer_op(deadline). Ref: xen/common/domain.c
# common_vcpu_op, xen/arch/x86/domain.c arch_do_vcpu_op, xen/common/sched/core.c
# do_set_timer_op.
from micropv.runtime.abi import vcpu as V
from micropv.runtime.abi import xen as X

from ..errors import XenError

MILLISECS = 1_000_000
_SIGN = 1 << 63


def set_timer_op(xen, vcpu, timeout):
    """0 cancels; negative or more than 2^50 ns ahead fires in 100 ms (Xen's Linux
    workaround); anything else, past deadlines included, is armed as given."""
    xv = xen.vcpus[vcpu.id]
    now = xen.machine.clock.now
    t = timeout - (1 << 64) if timeout & _SIGN else timeout
    if t == 0:
        xv.stop_singleshot()
    elif t < 0 or (t - now > 0 and ((t - now) >> 50) & 0xFFFFFFFF):
        xv.set_singleshot(now + 100 * MILLISECS)
    else:
        xv.set_singleshot(t)
    return 0


def vcpu_op(xen, vcpu, cmd, vcpuid, arg):
    cmd &= 0xFFFFFFFF
    vcpuid &= 0xFFFFFFFF
    if vcpuid >= len(xen.vcpus):
        raise XenError(X.ENOENT, f"no vCPU {vcpuid}")
    xv = xen.vcpus[vcpuid]
    own = vcpuid == vcpu.id
    if cmd == V.VCPUOP_set_singleshot_timer:
        if not own:
            raise XenError(X.EINVAL, "only the calling vCPU's timer")
        raw = xen.copy_from_guest(arg, V.SET_SINGLESHOT_TIMER_SIZE)
        deadline = int.from_bytes(raw[0:8], "little")
        if deadline < xen.machine.clock.now:
            # Already passed: stop the timer and deliver VIRQ_TIMER now. (The
            # VCPU_SSHOTTMR_future flag is ignored since Xen 4.18; it used to give -ETIME.)
            xv.stop_singleshot()
            xv.send_timer_event()
        else:
            xv.set_singleshot(deadline)
        return 0
    if cmd == V.VCPUOP_stop_singleshot_timer:
        if not own:
            raise XenError(X.EINVAL, "only the calling vCPU's timer")
        xv.stop_singleshot()
        return 0
    if cmd == V.VCPUOP_set_periodic_timer:
        raw = xen.copy_from_guest(arg, V.SET_PERIODIC_TIMER_SIZE)
        period = int.from_bytes(raw[0:8], "little")
        if period < MILLISECS or period >= _SIGN:
            raise XenError(X.EINVAL, f"period {period} ns")
        xv.set_periodic(period)
        return 0
    if cmd == V.VCPUOP_stop_periodic_timer:
        xv.set_periodic(0)
        return 0
    if cmd == V.VCPUOP_register_vcpu_info:
        raw = xen.copy_from_guest(arg, V.REGISTER_VCPU_INFO_SIZE)
        gfn = int.from_bytes(raw[0:8], "little")
        offset = int.from_bytes(raw[8:12], "little")
        return xen.register_vcpu_info(xv, gfn, offset)
    if cmd == V.VCPUOP_is_up:
        return 1
    raise XenError(X.ENOSYS, f"VCPUOP {cmd}")
