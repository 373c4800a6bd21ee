# Hypercall handlers raise XenError(errno); the dispatcher turns it into Xen's -errno result.
from micropv.runtime.abi import xen as X


class XenError(Exception):
    def __init__(self, errno, why=""):
        super().__init__(why or f"errno {errno}")
        self.errno = errno


def efault(addr, size):
    return XenError(X.EFAULT, f"bad guest pointer {addr:#x} (+{size})")
