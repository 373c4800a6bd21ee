# Crash reports: registers, the faulting instructions disassembled, and what went wrong.
from unicorn import UcError
from unicorn import x86_const as X

_X86_REGS = (
    ("rax", X.UC_X86_REG_RAX), ("rbx", X.UC_X86_REG_RBX), ("rcx", X.UC_X86_REG_RCX),
    ("rdx", X.UC_X86_REG_RDX), ("rsi", X.UC_X86_REG_RSI), ("rdi", X.UC_X86_REG_RDI),
    ("rbp", X.UC_X86_REG_RBP), ("rsp", X.UC_X86_REG_RSP), ("r8", X.UC_X86_REG_R8),
    ("r9", X.UC_X86_REG_R9), ("r10", X.UC_X86_REG_R10), ("r11", X.UC_X86_REG_R11),
    ("r12", X.UC_X86_REG_R12), ("r13", X.UC_X86_REG_R13), ("r14", X.UC_X86_REG_R14),
    ("r15", X.UC_X86_REG_R15), ("rip", X.UC_X86_REG_RIP), ("rflags", X.UC_X86_REG_RFLAGS),
    ("cs", X.UC_X86_REG_CS), ("ss", X.UC_X86_REG_SS), ("cr0", X.UC_X86_REG_CR0),
    ("cr2", X.UC_X86_REG_CR2), ("cr3", X.UC_X86_REG_CR3), ("cr4", X.UC_X86_REG_CR4),
)  # fmt: skip


def uc_error(err):
    return str(UcError(err))


def disassemble(ram, arch, addr, before=12, after=16, mark=None, mode=64):
    """Lines of disassembly around addr; the line at `mark` (default addr) gets an arrow.
    mode: 64 or 32, the x86 code size to decode with."""
    from capstone import CS_ARCH_X86, CS_MODE_32, CS_MODE_64, Cs

    mark = addr if mark is None else mark
    start = max(0, addr - before)
    end = min(ram.size, addr + after)
    if start >= end:
        return ["  (no memory at that address)"]
    md = Cs(CS_ARCH_X86, CS_MODE_32 if mode == 32 else CS_MODE_64)
    md.skipdata = True
    # Decode from several starting points and keep the one that lands on addr exactly.
    best = None
    for s in range(start, min(addr, start + 16) + 1):
        insns = list(md.disasm(ram.read(s, end - s), s))
        if any(i.address == addr for i in insns):
            best = insns
            break
    if best is None:
        best = list(md.disasm(ram.read(addr, end - addr), addr))
    lines = []
    run = 0  # int3 padding is folded into one line
    for i in best:
        if i.mnemonic == "int3" and i.address != mark:
            run += 1
            continue
        if run:
            lines.append(f"     {'':10}  ({run} bytes of int3 padding)")
            run = 0
        lines.append(f"  {'=>' if i.address == mark else '  '} {i.address:#010x}: "
                     f"{i.bytes.hex(' '):<24} {i.mnemonic} {i.op_str}".rstrip())  # fmt: skip
    if run:
        lines.append(f"     {'':10}  ({run} bytes of int3 padding)")
    return lines


def x86(vcpu, rip, code=True):
    """A register dump and (with code) the code around rip, read from the vCPU as it is now."""
    uc = vcpu.uc
    lines = [f"vCPU{vcpu.id} registers at {vcpu.clock.now} ns virtual:"]
    vals = []
    for name, reg in _X86_REGS:
        try:
            vals.append(f"{name:>6}={uc.reg_read(reg):#018x}")
        except UcError:
            vals.append(f"{name:>6}=?")
    for i in range(0, len(vals), 4):
        lines.append("  " + " ".join(vals[i : i + 4]))
    flags = uc.reg_read(X.UC_X86_REG_RFLAGS)
    lines.append(f"  RFLAGS.IF={(flags >> 9) & 1}  CPL={uc.reg_read(X.UC_X86_REG_CS) & 3}")
    if code:
        lines.append("code:")
        lines.extend(disassemble(vcpu.ram, "x86_64", rip))
    return "\n".join(lines)
