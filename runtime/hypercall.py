# Hypercall wrappers: one per Xen hypercall, each a thin call through the arch layer.
# Results come back as Xen's signed long; a negative value is -errno.
from .abi import xen as X

_SIGN = 1 << 63
_WRAP = 1 << 64


class HypercallError(Exception):
    def __init__(self, name, errno):
        # super(), not Exception.__init__(self, ...): MicroPython's Exception has no
        # __init__ attribute to call that way.
        super().__init__("%s failed: -%d (%s)" % (name, errno, errno_name(errno)))
        self.errno = errno


def errno_name(errno):
    for name in ("EPERM", "ENOENT", "ESRCH", "ENXIO", "EACCES", "EFAULT", "EBUSY", "EEXIST",
                 "EINVAL", "ENOSPC", "ENOSYS", "ETIME", "EAGAIN", "ENOMEM"):  # fmt: skip
        if getattr(X, name) == errno:
            return name
    return "errno %d" % errno


def signed(v):
    return v - _WRAP if v & _SIGN else v


class Hypercalls:
    """The hypercall table as methods; `raw(nr, *args)` for anything not wrapped."""

    def __init__(self, arch):
        self.arch = arch
        self.counts = 0

    def raw(self, nr, *args):
        self.counts += 1
        return signed(self.arch.hypercall(nr, args))

    def check(self, name, result):
        if result < 0:
            raise HypercallError(name, -result)
        return result

    def set_timer_op(self, deadline_ns):
        return self.raw(X.HYPERVISOR_set_timer_op, deadline_ns)

    def xen_version(self, cmd, arg=0):
        return self.raw(X.HYPERVISOR_xen_version, cmd, arg)

    def console_io(self, cmd, count, buf):
        return self.raw(X.HYPERVISOR_console_io, cmd, count, buf)

    def memory_op(self, cmd, arg):
        return self.raw(X.HYPERVISOR_memory_op, cmd, arg)

    def sched_op(self, cmd, arg=0):
        return self.raw(X.HYPERVISOR_sched_op, cmd, arg)

    def vcpu_op(self, cmd, vcpu, arg=0):
        return self.raw(X.HYPERVISOR_vcpu_op, cmd, vcpu, arg)

    def event_channel_op(self, cmd, arg):
        return self.raw(X.HYPERVISOR_event_channel_op, cmd, arg)

    def hvm_op(self, op, arg):
        return self.raw(X.HYPERVISOR_hvm_op, op, arg)
