# console_io(cmd, count, buf). Ref: xen/drivers/char/console.c do_console_io.
# Deviation, on purpose: release Xen answers -EPERM to an ordinary domU's CONSOLEIO_write
# (xsm/dummy.h allows it only with CONFIG_VERBOSE_DEBUG); micropv allows it, as a debug build
# does, because it is the simplest console a test guest can have.
from micropv.runtime.abi import console as C
from micropv.runtime.abi import xen as X

from ..errors import XenError

_MAX_CHUNK = 1 << 20  # a bound on one write; Xen copies in 128-byte chunks, preemptibly


def console_io(xen, vcpu, cmd, count, buf):
    cmd &= 0xFFFFFFFF
    count &= 0xFFFFFFFF
    if cmd == C.CONSOLEIO_write:
        if count > _MAX_CHUNK:
            raise XenError(X.EINVAL, "console write too long")
        data = xen.copy_from_guest(buf, count)
        xen.machine.console_write(data)
        return 0
    if cmd == C.CONSOLEIO_read:
        xen.copy_from_guest(buf, count)  # validates the buffer; there is never input
        return 0
    raise XenError(X.ENOSYS, f"CONSOLEIO {cmd}")
