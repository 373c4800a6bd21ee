# Xen ELF note types (note name "Xen"), read by the PVH loader.
# Ref: xen/include/public/elfnote.h
from .._compat import const

XEN_ELFNOTE_INFO = const(0)
XEN_ELFNOTE_ENTRY = const(1)
XEN_ELFNOTE_HYPERCALL_PAGE = const(2)
XEN_ELFNOTE_VIRT_BASE = const(3)
XEN_ELFNOTE_PADDR_OFFSET = const(4)
XEN_ELFNOTE_XEN_VERSION = const(5)
XEN_ELFNOTE_GUEST_OS = const(6)
XEN_ELFNOTE_GUEST_VERSION = const(7)
XEN_ELFNOTE_LOADER = const(8)
XEN_ELFNOTE_PAE_MODE = const(9)
XEN_ELFNOTE_FEATURES = const(10)
XEN_ELFNOTE_BSD_SYMTAB = const(11)
XEN_ELFNOTE_HV_START_LOW = const(12)
XEN_ELFNOTE_L1_MFN_VALID = const(13)
XEN_ELFNOTE_SUSPEND_CANCEL = const(14)
XEN_ELFNOTE_INIT_P2M = const(15)
XEN_ELFNOTE_MOD_START_PFN = const(16)
XEN_ELFNOTE_SUPPORTED_FEATURES = const(17)
# 4-byte physical address of the 32-bit PVH entry point.
XEN_ELFNOTE_PHYS32_ENTRY = const(18)
# Optional u32s: alignment (default 0x200000), minimum address, maximum address.
XEN_ELFNOTE_PHYS32_RELOC = const(19)
XEN_ELFNOTE_CRASH_INFO = const(0x1000001)
XEN_ELFNOTE_CRASH_REGS = const(0x1000002)
