# Crash reports for riscv64 vCPUs: registers, the supervisor CSRs and the code around the pc.
from unicorn import UcError
from unicorn import riscv_const as R

_ABI = ("zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3",
        "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
        "t3", "t4", "t5", "t6")  # fmt: skip
_CSRS = (("sstatus", R.UC_RISCV_REG_SSTATUS), ("sie", R.UC_RISCV_REG_SIE),
         ("sip", R.UC_RISCV_REG_SIP), ("stvec", R.UC_RISCV_REG_STVEC),
         ("sepc", R.UC_RISCV_REG_SEPC), ("scause", R.UC_RISCV_REG_SCAUSE),
         ("stval", R.UC_RISCV_REG_STVAL), ("priv", R.UC_RISCV_REG_PRIV))  # fmt: skip


def uc_error(err):
    return str(UcError(err))


def disassemble(ram, addr, before=16, after=20):
    from capstone import CS_ARCH_RISCV, CS_MODE_RISCV64, Cs

    start = max(0, (addr - before) & ~3)
    end = min(ram.size, addr + after)
    if start >= end:
        return ["  (no memory at that address)"]
    md = Cs(CS_ARCH_RISCV, CS_MODE_RISCV64)
    md.skipdata = True
    lines = []
    for i in md.disasm(ram.read(start, end - start), start):
        lines.append(f"  {'=>' if i.address == addr else '  '} {i.address:#010x}: "
                     f"{i.bytes.hex(' '):<12} {i.mnemonic} {i.op_str}".rstrip())  # fmt: skip
    return lines


def report(vcpu, pc):
    """A register dump and the code around pc, read from the vCPU as it is now."""
    uc = vcpu.uc
    lines = [f"vCPU{vcpu.id} registers at {vcpu.clock.now} ns virtual:"]
    vals = []
    for i, name in enumerate(_ABI):
        try:
            vals.append(f"{name:>5}={uc.reg_read(R.UC_RISCV_REG_X0 + i):#018x}")
        except UcError:
            vals.append(f"{name:>5}=?")
    for i in range(0, len(vals), 4):
        lines.append("  " + " ".join(vals[i : i + 4]))
    csrs = []
    for name, reg in _CSRS:
        try:
            csrs.append(f"{name}={uc.reg_read(reg):#x}")
        except UcError:
            csrs.append(f"{name}=?")
    lines.append("  " + " ".join(csrs))
    lines.append("code:")
    lines.extend(disassemble(vcpu.ram, pc))
    return "\n".join(lines)
