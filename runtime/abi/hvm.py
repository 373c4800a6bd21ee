# HVM ABI: HVMOP_* commands, HVM_PARAM_* indices, callback-via encoding, argument structs.
# Ref: xen/include/public/hvm/hvm_op.h, xen/include/public/hvm/params.h
from .._compat import const

# hvm_op(op, &arg)
HVMOP_set_param = const(0)
HVMOP_get_param = const(1)
HVMOP_set_pci_intx_level = const(2)
HVMOP_set_isa_irq_level = const(3)
HVMOP_set_pci_link_route = const(4)
HVMOP_flush_tlbs = const(5)
HVMOP_pagetable_dying = const(9)
HVMOP_get_time = const(10)
HVMOP_xentrace = const(11)
HVMOP_set_mem_access = const(12)
HVMOP_get_mem_access = const(13)
HVMOP_get_mem_type = const(15)
HVMOP_set_evtchn_upcall_vector = const(23)  # x86 only
HVMOP_guest_request_vm_event = const(24)
HVMOP_altp2m = const(25)

# HVM parameters (xen_hvm_param.index)
HVM_PARAM_CALLBACK_IRQ = const(0)
HVM_PARAM_STORE_PFN = const(1)
HVM_PARAM_STORE_EVTCHN = const(2)
HVM_PARAM_IOREQ_PFN = const(5)
HVM_PARAM_BUFIOREQ_PFN = const(6)
HVM_PARAM_VIRIDIAN = const(9)
HVM_PARAM_TIMER_MODE = const(10)
HVM_PARAM_HPET_ENABLED = const(11)
HVM_PARAM_IDENT_PT = const(12)
HVM_PARAM_ACPI_S_STATE = const(14)
HVM_PARAM_VM86_TSS = const(15)
HVM_PARAM_VPT_ALIGN = const(16)
HVM_PARAM_CONSOLE_PFN = const(17)
HVM_PARAM_CONSOLE_EVTCHN = const(18)
HVM_PARAM_ACPI_IOPORTS_LOCATION = const(19)
HVM_PARAM_PAGING_RING_PFN = const(27)
HVM_PARAM_MONITOR_RING_PFN = const(28)
HVM_PARAM_SHARING_RING_PFN = const(29)
HVM_PARAM_TRIPLE_FAULT_REASON = const(31)
HVM_PARAM_IOREQ_SERVER_PFN = const(32)
HVM_PARAM_NR_IOREQ_SERVER_PAGES = const(33)
HVM_PARAM_VM_GENERATION_ID_ADDR = const(34)
HVM_PARAM_ALTP2M = const(35)
HVM_PARAM_X87_FIP_WIDTH = const(36)
HVM_PARAM_VM86_TSS_SIZED = const(37)
HVM_PARAM_MCA_CAP = const(38)
HVM_NR_PARAMS = const(39)

# What a guest may set for itself. Setting ALTP2M gives -EEXIST, deprecated params -EINVAL,
# every other param (STORE_PFN, CONSOLE_PFN, ...) -EPERM. (params.h and hvm.c also have a
# list of deprecated indices; the reference does not name them, so none are listed here.)
GUEST_SETTABLE_PARAMS = (
    HVM_PARAM_CALLBACK_IRQ,
    HVM_PARAM_VM86_TSS,
    HVM_PARAM_VM86_TSS_SIZED,
    HVM_PARAM_ACPI_IOPORTS_LOCATION,
    HVM_PARAM_VM_GENERATION_ID_ADDR,
    HVM_PARAM_STORE_EVTCHN,
    HVM_PARAM_CONSOLE_EVTCHN,
    HVM_PARAM_X87_FIP_WIDTH,
)

# HVM_PARAM_CALLBACK_IRQ value: type in bits 63:56, 0 disables delivery.
HVM_PARAM_CALLBACK_IRQ_TYPE_MASK = const(0xFF00000000000000)
HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT = const(56)  # not a Xen macro; from "bits 63:56"
# GSI in bits 55:0 (GSI 0 unusable; Xen keeps only the low 8 bits).
HVM_PARAM_CALLBACK_TYPE_GSI = const(0)
# domain 47:32, bus 31:16, devfn 15:8, INTx 1:0.
HVM_PARAM_CALLBACK_TYPE_PCI_INTX = const(1)
# x86: vector in bits 7:0, needs XENFEAT_hvm_callback_vector. Value = (2 << 56) | vector.
HVM_PARAM_CALLBACK_TYPE_VECTOR = const(2)
# Arm: bits 55:16 zero, flags in bits 15:8, PPI number in bits 7:0. Flags byte: bit 0 (value
# bit 8) 1 = edge / 0 = level, bit 1 (value bit 9) 1 = active-low / 0 = high. Xen/Arm uses
# PPI 31 (GUEST_EVTCHN_PPI), level-low. RISC-V defines no callback type.
HVM_PARAM_CALLBACK_TYPE_PPI = const(2)
HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_MASK = const(0xFF00)
HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL = const(2)  # in the flags byte: value bits 15:8
# micropv riscv64 (project ABI, docs/riscv64.md): type 2 names a supervisor interrupt, as on
# Arm it names a PPI. Bits 7:0 = its scause code, 9 (SEI: level, the default Xen starts with)
# or 1 (SSI: edge, the guest clears sip.SSIP); bits 55:8 zero. 0 disables delivery.
HVM_PARAM_CALLBACK_TYPE_SIP = const(2)

# struct xen_hvm_param (16 bytes), for HVMOP_set_param / HVMOP_get_param
PARAM_SIZE = const(16)
PARAM_domid = const(0)  # u16, DOMID_SELF
PARAM_pad = const(2)  # u16
PARAM_index = const(4)  # u32 (HVM_PARAM_*)
PARAM_value = const(8)  # u64, OUT for get_param

# struct xen_hvm_evtchn_upcall_vector (8 bytes; 3 bytes tail padding). Vector >= 0x10.
EVTCHN_UPCALL_VECTOR_SIZE = const(8)
EVTCHN_UPCALL_VECTOR_vcpu = const(0)  # u32
EVTCHN_UPCALL_VECTOR_vector = const(4)  # u8

# struct xen_hvm_get_time (8 bytes)
GET_TIME_SIZE = const(8)
GET_TIME_now = const(0)  # u64, OUT
