# The shared_info page as the guest sees it: where it is mapped and where its parts live.
# Mapping: XENMEM_add_to_physmap(DOMID_SELF, XENMAPSPACE_shared_info, idx 0, gpfn).
from .abi import memory as M
from .abi import xen as X


class SharedInfo:
    def __init__(self, hal, layout, gfn):
        self.hal = hal
        self.layout = layout
        self.gfn = gfn
        self.gpa = gfn << X.PAGE_SHIFT

    def vcpu_info(self, n):
        return self.gpa + self.layout.vcpu_info(n)

    def time(self, n):
        return self.vcpu_info(n) + self.layout.time

    def pending_word(self, w):
        return self.gpa + self.layout.evtchn_pending + 8 * w

    def mask_word(self, w):
        return self.gpa + self.layout.evtchn_mask + 8 * w


def map_shared_info(rt, gfn):
    """Ask Xen to place shared_info at frame gfn; returns a SharedInfo."""
    hal = rt.hal
    arg = rt.args.alloc(M.ADD_TO_PHYSMAP_SIZE)
    try:
        hal.write(arg, bytes(M.ADD_TO_PHYSMAP_SIZE))
        hal.w16(arg + M.ADD_TO_PHYSMAP_domid, X.DOMID_SELF)
        hal.w32(arg + M.ADD_TO_PHYSMAP_space, M.XENMAPSPACE_shared_info)
        hal.w64(arg + M.ADD_TO_PHYSMAP_idx, 0)
        hal.w64(arg + M.ADD_TO_PHYSMAP_gpfn, gfn)
        rt.hc.check("XENMEM_add_to_physmap", rt.hc.memory_op(M.XENMEM_add_to_physmap, arg))
    finally:
        rt.args.free(arg)
    return SharedInfo(hal, rt.layout, gfn)
