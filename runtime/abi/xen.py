# Core Xen ABI: hypercall numbers, errno, domain ids, VIRQs, multicall entry.
# Ref: xen/include/public/xen.h, xen/include/public/errno.h
from .._compat import const

# Hypercall numbers (__HYPERVISOR_* in xen.h; 11 is unused).
HYPERVISOR_set_trap_table = const(0)
HYPERVISOR_mmu_update = const(1)
HYPERVISOR_set_gdt = const(2)
HYPERVISOR_stack_switch = const(3)
HYPERVISOR_set_callbacks = const(4)
HYPERVISOR_fpu_taskswitch = const(5)
HYPERVISOR_sched_op_compat = const(6)
HYPERVISOR_platform_op = const(7)
HYPERVISOR_set_debugreg = const(8)
HYPERVISOR_get_debugreg = const(9)
HYPERVISOR_update_descriptor = const(10)
HYPERVISOR_memory_op = const(12)
HYPERVISOR_multicall = const(13)
HYPERVISOR_update_va_mapping = const(14)
HYPERVISOR_set_timer_op = const(15)  # x86 only; not on Arm
HYPERVISOR_event_channel_op_compat = const(16)
HYPERVISOR_xen_version = const(17)
HYPERVISOR_console_io = const(18)
HYPERVISOR_physdev_op_compat = const(19)
HYPERVISOR_grant_table_op = const(20)
HYPERVISOR_vm_assist = const(21)
HYPERVISOR_update_va_mapping_otherdomain = const(22)
HYPERVISOR_iret = const(23)  # x86 PV only; the HVM hypercall page stub is ud2
HYPERVISOR_vcpu_op = const(24)
HYPERVISOR_set_segment_base = const(25)
HYPERVISOR_mmuext_op = const(26)
HYPERVISOR_xsm_op = const(27)
HYPERVISOR_nmi_op = const(28)
HYPERVISOR_sched_op = const(29)
HYPERVISOR_callback_op = const(30)
HYPERVISOR_xenoprof_op = const(31)  # dropped in Xen 4.22
HYPERVISOR_event_channel_op = const(32)
HYPERVISOR_physdev_op = const(33)
HYPERVISOR_hvm_op = const(34)
HYPERVISOR_sysctl = const(35)
HYPERVISOR_domctl = const(36)
HYPERVISOR_kexec_op = const(37)
HYPERVISOR_tmem_op = const(38)
HYPERVISOR_argo_op = const(39)
HYPERVISOR_xenpmu_op = const(40)
HYPERVISOR_dm_op = const(41)
HYPERVISOR_hypfs_op = const(42)
HYPERVISOR_arch_0 = const(48)
HYPERVISOR_arch_1 = const(49)
HYPERVISOR_arch_2 = const(50)
HYPERVISOR_arch_3 = const(51)
HYPERVISOR_arch_4 = const(52)
HYPERVISOR_arch_5 = const(53)
HYPERVISOR_arch_6 = const(54)
HYPERVISOR_arch_7 = const(55)

# Number -> name, for trace decoding.
HYPERCALL_NAMES = {
    HYPERVISOR_set_trap_table: "set_trap_table",
    HYPERVISOR_mmu_update: "mmu_update",
    HYPERVISOR_set_gdt: "set_gdt",
    HYPERVISOR_stack_switch: "stack_switch",
    HYPERVISOR_set_callbacks: "set_callbacks",
    HYPERVISOR_fpu_taskswitch: "fpu_taskswitch",
    HYPERVISOR_sched_op_compat: "sched_op_compat",
    HYPERVISOR_platform_op: "platform_op",
    HYPERVISOR_set_debugreg: "set_debugreg",
    HYPERVISOR_get_debugreg: "get_debugreg",
    HYPERVISOR_update_descriptor: "update_descriptor",
    HYPERVISOR_memory_op: "memory_op",
    HYPERVISOR_multicall: "multicall",
    HYPERVISOR_update_va_mapping: "update_va_mapping",
    HYPERVISOR_set_timer_op: "set_timer_op",
    HYPERVISOR_event_channel_op_compat: "event_channel_op_compat",
    HYPERVISOR_xen_version: "xen_version",
    HYPERVISOR_console_io: "console_io",
    HYPERVISOR_physdev_op_compat: "physdev_op_compat",
    HYPERVISOR_grant_table_op: "grant_table_op",
    HYPERVISOR_vm_assist: "vm_assist",
    HYPERVISOR_update_va_mapping_otherdomain: "update_va_mapping_otherdomain",
    HYPERVISOR_iret: "iret",
    HYPERVISOR_vcpu_op: "vcpu_op",
    HYPERVISOR_set_segment_base: "set_segment_base",
    HYPERVISOR_mmuext_op: "mmuext_op",
    HYPERVISOR_xsm_op: "xsm_op",
    HYPERVISOR_nmi_op: "nmi_op",
    HYPERVISOR_sched_op: "sched_op",
    HYPERVISOR_callback_op: "callback_op",
    HYPERVISOR_xenoprof_op: "xenoprof_op",
    HYPERVISOR_event_channel_op: "event_channel_op",
    HYPERVISOR_physdev_op: "physdev_op",
    HYPERVISOR_hvm_op: "hvm_op",
    HYPERVISOR_sysctl: "sysctl",
    HYPERVISOR_domctl: "domctl",
    HYPERVISOR_kexec_op: "kexec_op",
    HYPERVISOR_tmem_op: "tmem_op",
    HYPERVISOR_argo_op: "argo_op",
    HYPERVISOR_xenpmu_op: "xenpmu_op",
    HYPERVISOR_dm_op: "dm_op",
    HYPERVISOR_hypfs_op: "hypfs_op",
    HYPERVISOR_arch_0: "arch_0",
    HYPERVISOR_arch_1: "arch_1",
    HYPERVISOR_arch_2: "arch_2",
    HYPERVISOR_arch_3: "arch_3",
    HYPERVISOR_arch_4: "arch_4",
    HYPERVISOR_arch_5: "arch_5",
    HYPERVISOR_arch_6: "arch_6",
    HYPERVISOR_arch_7: "arch_7",
}

# The Xen version micropv reports (XENVER_version, CPUID base+1): major << 16 | minor.
XEN_VERSION_MAJOR = const(4)
XEN_VERSION_MINOR = const(19)

# Errno values. Hypercalls return them negated; Xen's numbering equals Linux's for these.
EPERM = const(1)
ENOENT = const(2)
ESRCH = const(3)
ENXIO = const(6)
E2BIG = const(7)
EAGAIN = const(11)
ENOMEM = const(12)
EACCES = const(13)
EFAULT = const(14)
EBUSY = const(16)
EEXIST = const(17)
EINVAL = const(22)
ENOSPC = const(28)
ERANGE = const(34)
ENOSYS = const(38)
ETIME = const(62)
EOPNOTSUPP = const(95)

# Special domain ids (domid_t, u16).
DOMID_SELF = const(0x7FF0)
DOMID_IO = const(0x7FF1)
DOMID_XEN = const(0x7FF2)
DOMID_COW = const(0x7FF3)
DOMID_INVALID = const(0x7FF4)
DOMID_ANY = const(0x7FF5)
DOMID_IDLE = const(0x7FFF)

# Virtual IRQs. Per-vCPU: TIMER, DEBUG, XENOPROF, XENPMU; per-domain: ARGO; the rest are
# global (get_virq_type() in common/event_channel.c). 5, 14 and 15 are not public VIRQs.
VIRQ_TIMER = const(0)
VIRQ_DEBUG = const(1)
VIRQ_CONSOLE = const(2)
VIRQ_DOM_EXC = const(3)
VIRQ_TBUF = const(4)
VIRQ_DEBUGGER = const(6)
VIRQ_XENOPROF = const(7)
VIRQ_CON_RING = const(8)
VIRQ_PCPU_STATE = const(9)
VIRQ_MEM_EVENT = const(10)
VIRQ_ARGO = const(11)
VIRQ_ENOMEM = const(12)
VIRQ_XENPMU = const(13)
VIRQ_ARCH_0 = const(16)
VIRQ_ARCH_1 = const(17)
VIRQ_ARCH_2 = const(18)
VIRQ_ARCH_3 = const(19)
VIRQ_ARCH_4 = const(20)
VIRQ_ARCH_5 = const(21)
VIRQ_ARCH_6 = const(22)
VIRQ_ARCH_7 = const(23)
NR_VIRQS = const(24)

PER_VCPU_VIRQS = (VIRQ_TIMER, VIRQ_DEBUG, VIRQ_XENOPROF, VIRQ_XENPMU)
PER_DOMAIN_VIRQS = (VIRQ_ARGO,)

PAGE_SHIFT = const(12)
PAGE_SIZE = const(4096)

# vcpu_info slots inside shared_info on x86 (Arm and RISC-V have 1; see shared_info.py).
XEN_LEGACY_MAX_VCPUS_X86 = const(32)

# vm_assist(cmd, type)
VMASST_CMD_enable = const(0)
VMASST_CMD_disable = const(1)
VMASST_TYPE_4gb_segments = const(0)
VMASST_TYPE_4gb_segments_notify = const(1)
VMASST_TYPE_writable_pagetables = const(2)
VMASST_TYPE_pae_extended_cr3 = const(3)
VMASST_TYPE_architectural_iopl = const(4)
VMASST_TYPE_runstate_update_flag = const(5)
VMASST_TYPE_m2p_strict = const(32)

# struct multicall_entry (64 bytes)
MULTICALL_ENTRY_SIZE = const(64)
MULTICALL_ENTRY_op = const(0)  # xen_ulong
MULTICALL_ENTRY_result = const(8)  # xen_ulong, OUT
MULTICALL_ENTRY_args = const(16)  # xen_ulong[6]
