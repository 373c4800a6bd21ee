# Finding Xen and setting up the hypercall page, as a PVH guest does at boot:
# CPUID 0x40000000 + n*0x100 for the "XenVMMXenVMM" signature, then the hypercall MSR.
from .abi import cpuid as C
from .abi import version as V

_SEARCH_END = 0x40010000
_STEP = 0x100


def find_cpuid_base(arch):
    """The CPUID leaf where Xen's signature is, or None (Linux's xen_cpuid_base())."""
    leaf = C.XEN_CPUID_FIRST_LEAF
    while leaf < _SEARCH_END:
        eax, ebx, ecx, edx = arch.cpuid(leaf)
        if (ebx, ecx, edx) == (C.XEN_CPUID_SIGNATURE_EBX, C.XEN_CPUID_SIGNATURE_ECX,
                               C.XEN_CPUID_SIGNATURE_EDX) and eax - leaf >= 2:  # fmt: skip
            return leaf
        leaf += _STEP
    return None


def install_hypercall_page(arch, base, page):
    """Write the page's address to the MSR CPUID base+2 names; Xen fills it at once."""
    pages, msr, _, _ = arch.cpuid(base + C.XEN_CPUID_LEAF_HYPERCALL)
    if pages < 1:
        raise RuntimeError("Xen offers no hypercall page")
    arch.wrmsr(msr, page)
    arch.hypercall_page = page
    return msr


def version(rt):
    v = rt.hc.xen_version(V.XENVER_version)
    return v >> 16, v & 0xFFFF


def extraversion(rt):
    buf = rt.args.alloc(V.XEN_EXTRAVERSION_LEN)
    try:
        rt.hc.check("XENVER_extraversion", rt.hc.xen_version(V.XENVER_extraversion, buf))
        raw = rt.hal.read(buf, V.XEN_EXTRAVERSION_LEN)
    finally:
        rt.args.free(buf)
    end = raw.find(b"\0")
    return (raw if end < 0 else raw[:end]).decode()


def features(rt, submap_idx=0):
    buf = rt.args.alloc(V.FEATURE_INFO_SIZE)
    try:
        rt.hal.w32(buf + V.FEATURE_INFO_submap_idx, submap_idx)
        rt.hc.check("XENVER_get_features", rt.hc.xen_version(V.XENVER_get_features, buf))
        return rt.hal.r32(buf + V.FEATURE_INFO_submap)
    finally:
        rt.args.free(buf)
