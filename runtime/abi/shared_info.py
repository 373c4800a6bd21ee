# shared_info and vcpu_info layouts, one Layout per architecture model.
# Ref: xen/include/public/xen.h, arch-x86/xen-x86_64.h, arch-arm.h, arch-riscv.h
from .._compat import const


class Layout:
    """Byte offsets of vcpu_info fields (relative to a vcpu_info) and of shared_info fields
    (relative to the shared_info page) for one architecture model."""

    __slots__ = (
        "name",
        "legacy_max_vcpus",
        "vcpu_info_size",
        "has_upcall_mask",
        "upcall_pending",
        "upcall_mask",
        "pending_sel",
        "time",
        "evtchn_pending",
        "evtchn_mask",
        "wc_version",
        "wc_sec",
        "wc_nsec",
        "wc_sec_hi",
        "arch",
        "size",
    )

    def __init__(
        self,
        name,
        legacy_max_vcpus,
        vcpu_info_size,
        upcall_mask,
        time,
        evtchn_pending,
        evtchn_mask,
        wc_version,
        wc_sec,
        wc_nsec,
        wc_sec_hi,
        arch,
        size,
    ):
        self.name = name
        # Number of vcpu_info slots at the start of shared_info (XEN_LEGACY_MAX_VCPUS).
        self.legacy_max_vcpus = legacy_max_vcpus
        self.vcpu_info_size = vcpu_info_size
        # Byte 1 of vcpu_info is evtchn_upcall_mask only with XEN_HAVE_PV_UPCALL_MASK (x86);
        # elsewhere it is pad0. Xen ignores the mask for HVM/PVH guests either way.
        self.has_upcall_mask = upcall_mask is not None
        self.upcall_pending = 0  # u8
        self.upcall_mask = upcall_mask  # u8 or None
        self.pending_sel = 8  # xen_ulong (u64): selector, bit w = evtchn_pending[w] has work
        self.time = time  # struct vcpu_time_info (32 bytes), see vcpu.TIME_INFO_*
        self.evtchn_pending = evtchn_pending  # xen_ulong[64]
        self.evtchn_mask = evtchn_mask  # xen_ulong[64]
        self.wc_version = wc_version  # u32, odd while Xen updates the wallclock
        self.wc_sec = wc_sec  # u32
        self.wc_nsec = wc_nsec  # u32
        self.wc_sec_hi = wc_sec_hi  # u32; epoch = ((wc_sec_hi << 32) | wc_sec) s + wc_nsec ns
        self.arch = arch  # struct arch_shared_info (empty on Arm/RISC-V)
        self.size = size

    def vcpu_info(self, n):
        """Offset of vcpu_info[n] inside shared_info."""
        if n < 0 or n >= self.legacy_max_vcpus:
            raise ValueError("no vcpu_info slot in shared_info for this vCPU")
        return n * self.vcpu_info_size


# x86_64: 32 slots of 64 bytes; vcpu_info.arch {cr2, pad} sits at 16..31, time at 32.
X86_64 = Layout(
    "x86_64",
    32,  # legacy_max_vcpus
    64,  # vcpu_info_size
    1,  # upcall_mask
    32,  # time
    0x800,  # evtchn_pending
    0xA00,  # evtchn_mask
    0xC00,  # wc_version
    0xC04,  # wc_sec
    0xC08,  # wc_nsec
    0xC0C,  # wc_sec_hi
    0xC10,  # arch
    0xC40,  # size
)

# arm64 and riscv64: one 48-byte slot, no upcall mask, empty arch structs.
ARM = Layout(
    "arm",
    1,  # legacy_max_vcpus
    48,  # vcpu_info_size
    None,  # upcall_mask (byte 1 is pad0)
    16,  # time
    0x030,  # evtchn_pending
    0x230,  # evtchn_mask
    0x430,  # wc_version
    0x434,  # wc_sec
    0x438,  # wc_nsec
    0x43C,  # wc_sec_hi
    0x440,  # arch (empty)
    0x440,  # size
)

ARCH_LAYOUTS = {"x86_64": X86_64, "riscv64": ARM, "aarch64": ARM}

# x86_64 struct arch_vcpu_info (16 bytes) at vcpu_info + 16
ARCH_VCPU_INFO_SIZE = const(16)
ARCH_VCPU_INFO_cr2 = const(0)  # xen_ulong
ARCH_VCPU_INFO_pad = const(8)  # xen_ulong

# x86_64 struct arch_shared_info (48 bytes) at shared_info + X86_64.arch (0xC10)
ARCH_SHARED_INFO_SIZE = const(48)
ARCH_SHARED_INFO_max_pfn = const(0)  # xen_ulong
ARCH_SHARED_INFO_pfn_to_mfn_frame_list_list = const(8)  # xen_ulong
ARCH_SHARED_INFO_nmi_reason = const(16)  # xen_ulong
ARCH_SHARED_INFO_p2m_cr3 = const(24)  # xen_ulong
ARCH_SHARED_INFO_p2m_vaddr = const(32)  # xen_ulong
ARCH_SHARED_INFO_p2m_generation = const(40)  # xen_ulong
