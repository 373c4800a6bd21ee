# RISC-V SBI ABI (ecall: a7 = EID, a6 = FID, a0..a5 args; returns a0 = error, a1 = value),
# micropv's Xen hypercall extension, supervisor CSRs and interrupt bits.
# Ref: riscv-sbi-doc src/*.adoc, opensbi include/sbi/sbi_ecall_interface.h, riscv_encoding.h
from .._compat import const

# Error codes (a0)
SBI_SUCCESS = const(0)
SBI_ERR_FAILED = const(-1)
SBI_ERR_NOT_SUPPORTED = const(-2)
SBI_ERR_INVALID_PARAM = const(-3)
SBI_ERR_DENIED = const(-4)
SBI_ERR_INVALID_ADDRESS = const(-5)
SBI_ERR_ALREADY_AVAILABLE = const(-6)
SBI_ERR_ALREADY_STARTED = const(-7)
SBI_ERR_ALREADY_STOPPED = const(-8)
SBI_ERR_NO_SHMEM = const(-9)
SBI_ERR_INVALID_STATE = const(-10)
SBI_ERR_BAD_RANGE = const(-11)
SBI_ERR_TIMEOUT = const(-12)
SBI_ERR_IO = const(-13)
SBI_ERR_DENIED_LOCKED = const(-14)

# Legacy extensions (v0.1): the EID is the call, a single result in a0. 0x09-0x0F reserved.
SBI_EXT_LEGACY_SET_TIMER = const(0x00)
SBI_EXT_LEGACY_CONSOLE_PUTCHAR = const(0x01)
SBI_EXT_LEGACY_CONSOLE_GETCHAR = const(0x02)
SBI_EXT_LEGACY_CLEAR_IPI = const(0x03)
SBI_EXT_LEGACY_SEND_IPI = const(0x04)
SBI_EXT_LEGACY_REMOTE_FENCE_I = const(0x05)
SBI_EXT_LEGACY_REMOTE_SFENCE_VMA = const(0x06)
SBI_EXT_LEGACY_REMOTE_SFENCE_VMA_ASID = const(0x07)
SBI_EXT_LEGACY_SHUTDOWN = const(0x08)

# Extension IDs
SBI_EXT_BASE = const(0x10)
SBI_EXT_TIME = const(0x54494D45)  # "TIME"
SBI_EXT_IPI = const(0x735049)  # "sPI"
SBI_EXT_RFENCE = const(0x52464E43)  # "RFNC"
SBI_EXT_HSM = const(0x48534D)  # "HSM"
SBI_EXT_SRST = const(0x53525354)  # "SRST"
SBI_EXT_PMU = const(0x504D55)  # "PMU"
SBI_EXT_DBCN = const(0x4442434E)  # "DBCN"
SBI_EXT_SUSP = const(0x53555350)  # "SUSP"
SBI_EXT_STA = const(0x535441)  # "STA"

# EID ranges
SBI_EXT_EXPERIMENTAL_START = const(0x08000000)
SBI_EXT_EXPERIMENTAL_END = const(0x08FFFFFF)
SBI_EXT_VENDOR_START = const(0x09000000)
SBI_EXT_VENDOR_END = const(0x09FFFFFF)
SBI_EXT_FIRMWARE_START = const(0x0A000000)
SBI_EXT_FIRMWARE_END = const(0x0AFFFFFF)

# micropv project ABI, not Xen ABI (Xen defines no RISC-V hypercall convention): Xen
# hypercalls use this firmware-range EID ("\nXEN"), a6 = HYPERVISOR_* number, a0..a4 args,
# the Xen long result in a0. probe_extension(SBI_EXT_XEN) returns 1 on micropv.
SBI_EXT_XEN = const(0x0A58454E)

# micropv project ABI: guest -> test messages (KVM selftests' ucall) over an SBI extension in
# the experimental range ("\x08MPV"). FID 0: ucall(a0 = guest-physical record address).
SBI_EXT_MICROPV = const(0x084D5056)
SBI_MICROPV_UCALL = const(0)

# Base (EID 0x10)
SBI_BASE_GET_SPEC_VERSION = const(0)
SBI_BASE_GET_IMPL_ID = const(1)
SBI_BASE_GET_IMPL_VERSION = const(2)
SBI_BASE_PROBE_EXT = const(3)
SBI_BASE_GET_MVENDORID = const(4)
SBI_BASE_GET_MARCHID = const(5)
SBI_BASE_GET_MIMPID = const(6)
# get_spec_version: major in bits 30:24, minor in bits 23:0.
SBI_SPEC_VERSION_MAJOR_OFFSET = const(24)
SBI_SPEC_VERSION_MAJOR_MASK = const(0x7F)
SBI_SPEC_VERSION_MINOR_MASK = const(0xFFFFFF)
# get_impl_id value Xen's virtual SBI reports.
SBI_XEN_IMPID = const(7)

# TIME: set_timer(u64 stime_value) also clears pending STIP; (u64)-1 means never.
SBI_TIME_SET_TIMER = const(0)

# IPI: send_ipi(hart_mask, hart_mask_base) raises SSIP on the targets; base -1 = all harts.
SBI_IPI_SEND_IPI = const(0)

# RFENCE (spec / OpenSBI numbering; Xen's own sbi.h swaps 3/4 and 5/6)
SBI_RFENCE_REMOTE_FENCE_I = const(0)
SBI_RFENCE_REMOTE_SFENCE_VMA = const(1)
SBI_RFENCE_REMOTE_SFENCE_VMA_ASID = const(2)
SBI_RFENCE_REMOTE_HFENCE_GVMA_VMID = const(3)
SBI_RFENCE_REMOTE_HFENCE_GVMA = const(4)
SBI_RFENCE_REMOTE_HFENCE_VVMA_ASID = const(5)
SBI_RFENCE_REMOTE_HFENCE_VVMA = const(6)

# HSM
SBI_HSM_HART_START = const(0)  # (hartid, start_addr, opaque)
SBI_HSM_HART_STOP = const(1)
SBI_HSM_HART_GET_STATUS = const(2)  # (hartid) -> SBI_HSM_STATE_*
SBI_HSM_HART_SUSPEND = const(3)  # (type, resume_addr, opaque)
SBI_HSM_STATE_STARTED = const(0)
SBI_HSM_STATE_STOPPED = const(1)
SBI_HSM_STATE_START_PENDING = const(2)
SBI_HSM_STATE_STOP_PENDING = const(3)
SBI_HSM_STATE_SUSPENDED = const(4)
SBI_HSM_STATE_SUSPEND_PENDING = const(5)
SBI_HSM_STATE_RESUME_PENDING = const(6)

# SRST: system_reset(u32 type, u32 reason)
SBI_SRST_SYSTEM_RESET = const(0)
SBI_SRST_RESET_TYPE_SHUTDOWN = const(0)
SBI_SRST_RESET_TYPE_COLD_REBOOT = const(1)
SBI_SRST_RESET_TYPE_WARM_REBOOT = const(2)
SBI_SRST_RESET_REASON_NONE = const(0)
SBI_SRST_RESET_REASON_SYSFAIL = const(1)

# DBCN: buffers are (num_bytes, base_addr_lo, base_addr_hi); write returns bytes written.
SBI_DBCN_CONSOLE_WRITE = const(0)
SBI_DBCN_CONSOLE_READ = const(1)
SBI_DBCN_CONSOLE_WRITE_BYTE = const(2)

# SUSP
SBI_SUSP_SYSTEM_SUSPEND = const(0)

# Supervisor CSRs
CSR_SSTATUS = const(0x100)
CSR_SIE = const(0x104)
CSR_STVEC = const(0x105)
CSR_SENVCFG = const(0x10A)
CSR_SSCRATCH = const(0x140)
CSR_SEPC = const(0x141)
CSR_SCAUSE = const(0x142)
CSR_STVAL = const(0x143)
CSR_SIP = const(0x144)
CSR_STIMECMP = const(0x14D)
CSR_SATP = const(0x180)
CSR_TIME = const(0xC01)
# Hypervisor / machine side (host models only)
CSR_VSTIMECMP = const(0x24D)
CSR_MENVCFG = const(0x30A)
CSR_HENVCFG = const(0x60A)
CSR_HVIP = const(0x645)

# sstatus bits
SSTATUS_SIE = const(1 << 1)
SSTATUS_SPIE = const(1 << 5)
SSTATUS_SPP = const(1 << 8)

# Interrupt numbers (scause codes with SCAUSE_INTERRUPT set, and sip/sie bit numbers)
IRQ_S_SOFT = const(1)
IRQ_VS_SOFT = const(2)
IRQ_S_TIMER = const(5)
IRQ_VS_TIMER = const(6)
IRQ_S_EXT = const(9)
IRQ_VS_EXT = const(10)
IRQ_S_GEXT = const(12)
IRQ_PMU_OVF = const(13)

# sip / sie bit masks as the (virtual) supervisor sees them
SIP_SSIP = const(1 << 1)
SIP_STIP = const(1 << 5)
SIP_SEIP = const(1 << 9)
SIP_LCOFIP = const(1 << 13)
SIE_SSIE = const(1 << 1)
SIE_STIE = const(1 << 5)
SIE_SEIE = const(1 << 9)
SIE_LCOFIE = const(1 << 13)

# hvip bits (one position left of what the guest sees) and the guest-external bit
HVIP_VSSIP = const(1 << 2)
HVIP_VSTIP = const(1 << 6)
HVIP_VSEIP = const(1 << 10)
HIP_SGEIP = const(1 << 12)

# scause
SCAUSE_INTERRUPT = const(1 << 63)
CAUSE_USER_ECALL = const(8)
CAUSE_SUPERVISOR_ECALL = const(9)
CAUSE_VIRTUAL_SUPERVISOR_ECALL = const(10)
CAUSE_MACHINE_ECALL = const(11)

# Sstc enable bit in menvcfg / henvcfg
ENVCFG_STCE = const(1 << 63)
