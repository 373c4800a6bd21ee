# Grant-table frames as an HVM/PVH guest maps them: XENMEM_add_to_physmap with space
# XENMAPSPACE_grant_table puts shared frame idx of the domain's (version 1) grant table at
# gpfn (xen/common/grant_table.c gnttab_map_frame). The frames start zeroed, which is an
# empty table. Grant operations themselves (grant_table_op) are not implemented: -ENOSYS.
from micropv.runtime.abi import memory as M
from micropv.runtime.abi import xen as X

from .errors import XenError

MAX_GRANT_FRAMES = 64  # Xen's default max_grant_frames


def map_frame(xen, idx, gpfn):
    if idx & M.XENMAPIDX_grant_table_status:
        raise XenError(X.EINVAL, "status frames exist only for grant tables version 2")
    if idx >= MAX_GRANT_FRAMES:
        raise XenError(X.EINVAL, f"grant frame {idx} beyond max_grant_frames")
    ram = xen.machine.ram
    if gpfn >= ram.size >> X.PAGE_SHIFT:
        raise XenError(X.EINVAL, f"gpfn {gpfn:#x} beyond guest RAM")
    frames = xen.grant_frames  # idx -> gpfn
    old = frames.get(idx)
    page = X.PAGE_SIZE
    # The first mapping shows an empty table; a move takes the frame's contents along and
    # leaves a hole where it was (guest_physmap_remove_page of the old gfn).
    contents = bytes(page) if old is None else ram.read(old << X.PAGE_SHIFT, page)
    if old is not None and old != gpfn:
        xen.machine.set_hole(old, True)
    # Whatever was at gpfn is replaced: shared_info leaves it (Xen keeps the page itself,
    # unmapped), a RAM page is gone, a hole is filled.
    if gpfn == xen.shared_info.gfn:
        xen.remove_frame(gpfn)
    xen.machine.set_hole(gpfn, False)
    ram.write(gpfn << X.PAGE_SHIFT, contents)
    frames[idx] = gpfn
    xen.machine.trace.event("grant_frame", -1, idx=idx, gpfn=gpfn)
    return 0
