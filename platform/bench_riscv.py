# riscv64 floors for `micropv bench`: what bare Unicorn costs for the path a riscv64 upcall
# takes, with the same raw register access the vCPU uses, so sbi-riscv64's pingpong figures
# have something to be compared against (reference/unicorn-notes.md §l: about 4.5 us).
import time

from micropv.runtime.abi import sbi as B
from micropv.runtime.arch import riscv64 as A
from unicorn import UC_ARCH_RISCV, UC_HOOK_INTR, UC_MODE_RISCV64, Uc
from unicorn import riscv_const as R

from .emu.fastuc import FastUC


def floor_upcall_us(n):
    """ecall -> hook raises SSIP (one sip write) -> the CPU traps to stvec -> the handler
    clears SSIP and returns with sret -> the loop goes on. Nothing micropv adds is in it."""
    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    uc.mem_map(0, 0x10000)
    uc.reg_write(R.UC_RISCV_REG_MIDELEG, 0x222)
    uc.reg_write(R.UC_RISCV_REG_MIE, 0x222)
    uc.reg_write(R.UC_RISCV_REG_PRIV, 1)
    handler = A.csrrci(A.ZERO, B.CSR_SIP, B.SIP_SSIP) + A.SRET  # csrci sip, SSIP; sret
    uc.mem_write(0x2000, handler)
    loop = (
        A.li32(A.A0, B.SIE_SSIE)  # li a0, SSIE
        + A.csrrs(A.ZERO, B.CSR_SIE, A.A0)  # csrs sie, a0
        + A.csrrw(A.ZERO, B.CSR_STVEC, 11)  # csrw stvec, a1 (direct mode)
        + A.csrrsi(A.ZERO, B.CSR_SSTATUS, B.SSTATUS_SIE)  # csrsi sstatus, SIE
        + A.ECALL  # loop: ecall
        + A.addi(12, 12, -1)  # addi a2, a2, -1
        + _bnez(12, -8)  # bnez a2, loop
        + A.WFI  # wfi: the end
    )
    uc.mem_write(0x1000, loop)
    f = FastUC(uc)
    f.write(R.UC_RISCV_REG_A1, 0x2000)
    f.write(R.UC_RISCV_REG_A2, n)
    sip = R.UC_RISCV_REG_SIP

    def on_ecall(uc, intno, _):
        f.write(sip, B.SIP_SSIP)

    uc.hook_add(UC_HOOK_INTR, on_ecall)
    t0 = time.perf_counter()
    f.start(0x1000)
    return (time.perf_counter() - t0) / n * 1e6


def _bnez(rs1, off):
    o = off & 0x1FFF
    imm = ((o >> 12) & 1) << 31 | ((o >> 5) & 0x3F) << 25 | ((o >> 1) & 0xF) << 8
    imm |= ((o >> 11) & 1) << 7
    return (imm | (rs1 << 15) | (1 << 12) | 0x63).to_bytes(4, "little")
