# x86 Xen CPUID leaves, hypercall page MSR, and the LAPIC base the runtime relies on.
# Ref: xen/include/public/arch-x86/cpuid.h, xen/arch/x86/cpuid.c, xen/arch/x86/msr.c
from .._compat import const

# Base leaf (0x40000100 when Viridian is enabled). base+0: EAX = largest leaf,
# EBX/ECX/EDX = "XenVMMXenVMM".
XEN_CPUID_FIRST_LEAF = const(0x40000000)
XEN_CPUID_SIGNATURE_EBX = const(0x566E6558)  # "XenV"
XEN_CPUID_SIGNATURE_ECX = const(0x65584D4D)  # "MMXe"
XEN_CPUID_SIGNATURE_EDX = const(0x4D4D566E)  # "nVMM"

# Leaf offsets from the base.
XEN_CPUID_LEAF_VERSION = const(1)  # EAX = major << 16 | minor
XEN_CPUID_LEAF_HYPERCALL = const(2)  # EAX = hypercall pages (1), EBX = MSR base
XEN_CPUID_LEAF_TIME = const(3)  # TSC info, subleaves 0..2
XEN_CPUID_LEAF_HVM = const(4)  # EAX = XEN_HVM_CPUID_* flags, EBX vcpu id, ECX domid

# base+4 EAX flags
XEN_HVM_CPUID_APIC_ACCESS_VIRT = const(1 << 0)
XEN_HVM_CPUID_X2APIC_VIRT = const(1 << 1)
XEN_HVM_CPUID_IOMMU_MAPPINGS = const(1 << 2)
XEN_HVM_CPUID_VCPU_ID_PRESENT = const(1 << 3)  # EBX = vcpu id
XEN_HVM_CPUID_DOMID_PRESENT = const(1 << 4)  # ECX = domid
XEN_HVM_CPUID_EXT_DEST_ID = const(1 << 5)
XEN_HVM_CPUID_UPCALL_VECTOR = const(1 << 6)  # per-vCPU upcall vector also works with PIRQs

# Hypercall page: wrmsr(MSR, GPA of the page; low 12 bits = page index, must be 0).
# Xen fills 128 stubs of 32 bytes; call page + nr * 32. (MSR is 0x40000200 with Viridian.)
XEN_HYPERCALL_MSR = const(0x40000000)
HYPERCALL_PAGE_SLOT_SIZE = const(32)
HYPERCALL_PAGE_SLOTS = const(128)

# Local APIC (architectural x86, not Xen ABI).
MSR_IA32_APIC_BASE = const(0x1B)
APIC_DEFAULT_PHYS_BASE = const(0xFEE00000)
