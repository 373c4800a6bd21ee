# Console ABI: console_io(cmd, count, buf) commands and the x86 HVM debug port.
# Ref: xen/include/public/xen.h, xen/include/public/arch-x86/xen.h
from .._compat import const

CONSOLEIO_write = const(0)  # returns 0 on success; -EPERM for a domU on release Xen
CONSOLEIO_read = const(1)  # returns bytes read

# x86 HVM: bytes written to this I/O port go to Xen's console.
XEN_HVM_DEBUGCONS_IOPORT = const(0xE9)
