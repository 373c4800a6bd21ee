# memory_op(cmd, arg). Ref: xen/common/memory.c do_memory_op, xen/arch/x86/mm.c arch_memory_op.
from micropv.runtime.abi import memory as M
from micropv.runtime.abi import xen as X

from .. import grant_table
from ..errors import XenError

MEMOP_CMD_MASK = 0x3F  # the upper bits carry a continuation's start extent


def _self_domid(xen, domid):
    # The caller may name itself as DOMID_SELF or by its own id (rcu_lock_domain_by_any_id).
    # dom0 exists but is not an unprivileged domain's to name (xsm XSM_TARGET: -EPERM); no
    # other domain exists here, special ids included (rcu_lock_domain_by_id: -ESRCH).
    if domid != X.DOMID_SELF and domid != xen.machine.domid:
        raise XenError(X.EPERM if domid == 0 else X.ESRCH, f"domid {domid:#x}")


def memory_op(xen, vcpu, cmd, arg):
    op = cmd & MEMOP_CMD_MASK
    handler = _OPS.get(op)
    if handler is None:
        raise XenError(X.ENOSYS, f"XENMEM {op}")
    return handler(xen, vcpu, arg)


def _add_to_physmap(xen, vcpu, arg):
    raw = xen.copy_from_guest(arg, M.ADD_TO_PHYSMAP_SIZE)
    domid = int.from_bytes(raw[0:2], "little")
    space = int.from_bytes(raw[4:8], "little")
    idx = int.from_bytes(raw[8:16], "little")
    gpfn = int.from_bytes(raw[16:24], "little")
    _self_domid(xen, domid)
    if space == M.XENMAPSPACE_shared_info:
        if idx != 0:
            raise XenError(X.EINVAL, "shared_info has only frame 0")
        if gpfn >= xen.machine.ram.size >> X.PAGE_SHIFT:
            raise XenError(X.EINVAL, f"gpfn {gpfn:#x} beyond guest RAM")
        xen.map_shared_info(gpfn)
        return 0
    if space == M.XENMAPSPACE_grant_table:
        return grant_table.map_frame(xen, idx, gpfn)
    raise XenError(X.EINVAL if space > M.XENMAPSPACE_dev_mmio else X.ENOSYS, f"space {space}")


def _remove_from_physmap(xen, vcpu, arg):
    raw = xen.copy_from_guest(arg, M.REMOVE_FROM_PHYSMAP_SIZE)
    domid = int.from_bytes(raw[0:2], "little")
    gpfn = int.from_bytes(raw[8:16], "little")
    _self_domid(xen, domid)
    if gpfn >= xen.machine.ram.size >> X.PAGE_SHIFT or gpfn in xen.machine.ram.holes:
        raise XenError(X.ENOENT, f"gpfn {gpfn:#x} is not populated")
    xen.remove_frame(gpfn)
    return 0


def _memory_map(xen, vcpu, arg):
    raw = xen.copy_from_guest(arg, M.MEMORY_MAP_SIZE)
    capacity = int.from_bytes(raw[0:4], "little")
    buffer = int.from_bytes(raw[8:16], "little")
    entries = xen.machine.e820
    n = min(capacity, len(entries))
    out = b"".join(
        a.to_bytes(8, "little") + s.to_bytes(8, "little") + t.to_bytes(4, "little")
        for a, s, t in entries[:n]
    )
    xen.copy_to_guest(buffer, out)
    xen.guest_set32(arg + M.MEMORY_MAP_nr_entries, n)
    return 0


def _current_reservation(xen, vcpu, arg):
    _self_domid(xen, xen.guest_u16(arg))
    # Xen's tot_pages: RAM minus the frames given back, minus the RAM page that mapping
    # shared_info over it freed (the shared_info page itself is Xen's, not the domain's).
    ram = xen.machine.ram
    mapped = 1 if xen.shared_info.gfn is not None else 0
    return (ram.size >> X.PAGE_SHIFT) - len(ram.holes) - mapped


_OPS = {
    M.XENMEM_add_to_physmap: _add_to_physmap,
    M.XENMEM_remove_from_physmap: _remove_from_physmap,
    M.XENMEM_memory_map: _memory_map,
    M.XENMEM_current_reservation: _current_reservation,
}
