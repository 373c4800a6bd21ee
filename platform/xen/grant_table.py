# Grant-table frames as an HVM/PVH guest maps them: XENMEM_add_to_physmap with space
# XENMAPSPACE_grant_table puts shared frame idx of the domain's (version 1) grant table at
# gpfn (xen/common/grant_table.c gnttab_map_frame). The frames start zeroed, which is an
# empty table. Grant operations themselves (grant_table_op) are not implemented: -ENOSYS.
#
# The gpfn need not be RAM: Xen adds the frame to the p2m wherever the guest asks
# (xen/arch/x86/mm.c xenmem_add_to_physmap_one -> guest_physmap_add_page), and guests pick
# unpopulated space on purpose (Mini-OS's PVH build maps them just above the last e820
# entry, arch/x86/gnttab.c). Such a frame is a host page of its own, mapped into every vCPU.
import ctypes
import mmap

from micropv.runtime.abi import memory as M
from micropv.runtime.abi import xen as X

from .errors import XenError

MAX_GRANT_FRAMES = 64  # Xen's default max_grant_frames
GPFN_LIMIT = 1 << (40 - X.PAGE_SHIFT)  # the CPU model's 40 physical address bits (0x80000008)


def map_frame(xen, idx, gpfn):
    if idx & M.XENMAPIDX_grant_table_status:
        raise XenError(X.EINVAL, "status frames exist only for grant tables version 2")
    if idx >= MAX_GRANT_FRAMES:
        raise XenError(X.EINVAL, f"grant frame {idx} beyond max_grant_frames")
    ram = xen.machine.ram
    in_ram = gpfn < ram.size >> X.PAGE_SHIFT
    if gpfn >= GPFN_LIMIT:
        raise XenError(X.EINVAL, f"gpfn {gpfn:#x} beyond the guest's physical address width")
    frames = xen.grant_frames  # idx -> gpfn
    old = frames.get(idx)
    page = X.PAGE_SIZE
    # The first mapping shows an empty table; a move takes the frame's contents along and
    # leaves a hole where it was (guest_physmap_remove_page of the old gfn).
    contents = bytes(page) if old is None else read_frame(xen, old)
    if not in_ram and gpfn not in xen.grant_pages:
        _map_outside(xen, gpfn)  # first, so a refusal leaves everything as it was
    if old is not None and old != gpfn:
        if old in xen.grant_pages:
            _unmap_outside(xen, old)
        else:
            xen.machine.set_hole(old, True)
    if in_ram:
        # Whatever was at gpfn is replaced: shared_info leaves it (Xen keeps the page
        # itself, unmapped), a RAM page is gone, a hole is filled.
        if gpfn == xen.shared_info.gfn:
            xen.remove_frame(gpfn)
        xen.machine.set_hole(gpfn, False)
        ram.write(gpfn << X.PAGE_SHIFT, contents)
    else:
        xen.grant_pages[gpfn][0][:] = contents
    frames[idx] = gpfn
    xen.machine.trace.event("grant_frame", -1, idx=idx, gpfn=gpfn)
    return 0


def read_frame(xen, gpfn):
    """The contents of the grant frame at gpfn, in guest RAM or above it."""
    if gpfn in xen.grant_pages:
        return bytes(xen.grant_pages[gpfn][0])
    return xen.machine.ram.read(gpfn << X.PAGE_SHIFT, X.PAGE_SIZE)


def _map_outside(xen, gpfn):
    from unicorn import UC_PROT_ALL, UcError

    buf = mmap.mmap(-1, X.PAGE_SIZE)
    ptr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    done = []
    try:
        for v in xen.machine.vcpus:
            v.uc.mem_map_ptr(gpfn << X.PAGE_SHIFT, X.PAGE_SIZE, UC_PROT_ALL, ptr)
            done.append(v)
    except UcError:
        for v in done:
            v.uc.mem_unmap(gpfn << X.PAGE_SHIFT, X.PAGE_SIZE)
        # An emulated device's page (the local APIC's) is there; Xen's p2m has no such clash.
        raise XenError(X.EINVAL, f"gpfn {gpfn:#x} is an emulated device's page here") from None
    xen.grant_pages[gpfn] = (buf, ptr)


def _unmap_outside(xen, gpfn):
    for v in xen.machine.vcpus:
        v.uc.mem_unmap(gpfn << X.PAGE_SHIFT, X.PAGE_SIZE)
    del xen.grant_pages[gpfn]
