# xen_version(cmd, arg). Ref: xen/common/kernel.c do_xen_version, public/version.h.
from micropv.runtime.abi import version as V
from micropv.runtime.abi import xen as X

from ..errors import XenError

EXTRAVERSION = b"-micropv"


def xen_version(xen, vcpu, cmd, arg):
    cmd &= 0xFFFFFFFF
    if cmd == V.XENVER_version:
        return X.XEN_VERSION_MAJOR << 16 | X.XEN_VERSION_MINOR
    if cmd == V.XENVER_extraversion:
        xen.copy_to_guest(arg, EXTRAVERSION.ljust(V.XEN_EXTRAVERSION_LEN, b"\0"))
        return 0
    if cmd == V.XENVER_get_features:
        idx = xen.guest_u32(arg + V.FEATURE_INFO_submap_idx)
        # PVH domU features (common/kernel.c): only submap 0 has bits.
        submap = V.PVH_DOMU_FEATURES_0 if idx == 0 else 0
        xen.guest_set32(arg + V.FEATURE_INFO_submap, submap)
        return 0
    if cmd == V.XENVER_pagesize:
        return X.PAGE_SIZE
    if cmd == V.XENVER_guest_handle:
        xen.copy_to_guest(arg, bytes(16))  # the domain handle (a UUID); all zero here
        return 0
    raise XenError(X.ENOSYS, f"XENVER {cmd}")
