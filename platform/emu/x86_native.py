# The x86 vCPU for native guests (ELF kernels that run entirely inside Unicorn): what an
# unmodified PVH kernel needs beyond what the Python guests' vCPU does.
#
# - CPU exceptions are delivered through the guest's IDT as the hardware would. Unicorn 2.1.4
#   hands every exception to UC_HOOK_INTR (#UD to UC_HOOK_INSN_INVALID) and never vectors it
#   (reference/unicorn-notes.md §0.1); RIP in the hook is the faulting instruction for a
#   fault and the next one for a trap (int3, int n), which is what the frame must hold. The
#   error code and the INT-instruction flag are read from QEMU's CPU state, which also gets
#   its "exception in flight" cleared, as delivery would (x86_excstate.py); if that state is
#   out of reach they are rebuilt (#PF's from a walk of the guest's page tables and the
#   faulting instruction's operands, 0 for the others). A fault whose gate is unusable
#   becomes #DF; a #DF that cannot be delivered is a triple fault, which ends the run.
# - Hypercalls follow the mode of the current code segment: 64-bit code passes rdi, rsi, rdx,
#   r10, r8; 32-bit code (the PVH entry before the kernel enters long mode) ebx, ecx, edx,
#   esi, edi (Xen's hvm_hypercall). Argument structs keep their 64-bit layouts.
# - Linear addresses (IDT, TSS, stacks, RIP) go through the guest's page tables.
# - rdmsr/wrmsr of MSRs the hypervisor does not own run on the CPU when they are
#   architectural (EFER, syscall and segment-base MSRs, PAT...), and #GP otherwise, as Xen
#   answers an unknown MSR. Each trapped rdtsc costs virtual time and is an interrupt window,
#   so a guest that polls the clock moves time forward and can be interrupted.
import ctypes
import struct
from collections import deque

from unicorn import (
    UC_ERR_OK,
    UC_HOOK_CODE,
    UC_HOOK_MEM_FETCH_UNMAPPED,
    UC_HOOK_MEM_READ_UNMAPPED,
    UC_HOOK_MEM_WRITE_UNMAPPED,
)
from unicorn import x86_const as X

from ..clock import COST_INJECT_NS, COST_RUN_SLICE_NS
from . import report, scan
from . import x86_mmu as mmu
from .slice import run_slice
from .stop import EXIT_BUDGET, Outcome, Stop
from .x86_64 import (
    EXCEPTION_NAMES,
    HLT,
    RFLAGS_IF,
    RFLAGS_NT,
    RFLAGS_RF,
    RFLAGS_TF,
    RFLAGS_VM,
    X86VCPU,
)
from .x86_excstate import ExceptionState

COST_TSC_READ_NS = 20  # virtual time one trapped rdtsc/rdtscp/rdmsr/wrmsr costs a native guest

MSR_IA32_TSC = 0x10
MSR_EFER = 0xC0000080
# Architectural MSRs the CPU model keeps itself: the guest's rdmsr/wrmsr of these run as
# Unicorn executes them (a PVH kernel writes EFER.LME on its way to long mode).
PASSTHROUGH_MSRS = frozenset((
    0x174, 0x175, 0x176,  # SYSENTER_CS/ESP/EIP
    0x1A0,  # IA32_MISC_ENABLE
    0x277,  # IA32_PAT
    MSR_EFER, 0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084,  # EFER, STAR, LSTAR, CSTAR, FMASK
    0xC0000100, 0xC0000101, 0xC0000102, 0xC0000103,  # FS/GS/KERNEL_GS base, TSC_AUX
))  # fmt: skip

ERROR_CODE_VECTORS = frozenset((8, 10, 11, 12, 13, 14, 17, 21, 29, 30))
_PUSHES = frozenset(("push", "pushf", "pushfq", "pushfd", "call", "enter"))
_POPS = frozenset(("pop", "popf", "popfq", "popfd", "ret", "leave", "iret", "iretq", "iretd"))

_RAX, _RCX, _RDX = X.UC_X86_REG_RAX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX
_RIP, _RSP, _RFLAGS = X.UC_X86_REG_RIP, X.UC_X86_REG_RSP, X.UC_X86_REG_RFLAGS
_CS, _SS = X.UC_X86_REG_CS, X.UC_X86_REG_SS
# 32-bit hypercall arguments (Xen's hvm_hypercall for a non-64-bit code segment)
HYPERCALL_ARGS32 = (X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX,
                    X.UC_X86_REG_RSI, X.UC_X86_REG_RDI)  # fmt: skip


class _MSR(ctypes.Structure):  # struct uc_x86_msr
    _fields_ = [("rid", ctypes.c_uint32), ("value", ctypes.c_uint64)]


class NativeX86VCPU(X86VCPU):
    native = True

    def __init__(self, machine, vcpu_id=0):
        super().__init__(machine, vcpu_id)
        self._msr = _MSR()
        self._pmsr = ctypes.byref(self._msr)
        self._code64 = {}  # (CS, GDTR base, GDTR limit) -> 64-bit code segment?
        self.exits = 0  # returns to the host: the progress a stall watchdog looks for
        self.stall = None  # (event, message): a watchdog sets event, then stops emulation
        self.exceptions = deque(maxlen=32)  # (vector, error code, rip), the latest ones
        self._unmapped = None
        self.excstate = ExceptionState(self.uc)
        # An empty exit set, so emu_start's `until` (0) cannot end a run: Xen enters a kernel
        # at 0 as anywhere (tools/libs/guest/xg_dom_x86.c vcpu_hvm: rip = phys_entry; Mini-OS
        # is linked there). A non-zero `until` is no way out: Unicorn translates it after each
        # run and, unmapped, leaves a fault "in flight" that makes the next one a #DF.
        self.uc.ctl_exits_enabled(True)
        self.uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED
                         | UC_HOOK_MEM_FETCH_UNMAPPED, self._on_unmapped)  # fmt: skip

    def sync_code(self, addr, size, vaddr=None):
        """As X86VCPU.sync_code, for a kernel's code: swept as 64-bit and as 32-bit code (a
        PVH kernel starts in 32-bit mode; a hook only fires where an instruction really
        starts, so a hit from the wrong sweep costs nothing), and hooked at the linked
        virtual address too when the kernel runs its code somewhere else (vaddr)."""
        code = self.ram.read(addr, size)
        for mode in (64, 32):
            for at, kind, length in scan.trapped_instructions(code, addr, mode):
                for where in (at,) if vaddr in (None, addr) else (at, at - addr + vaddr):
                    if where not in self._trapped:
                        self._trapped[where] = (kind, length)
                        self.uc.hook_add(UC_HOOK_CODE, self._on_trapped, None, where, where)
        self.uc.ctl_remove_cache(addr, addr + size)
        if vaddr not in (None, addr):
            self.uc.ctl_remove_cache(vaddr, vaddr + size)

    @property
    def boundaries(self):
        return self.exits + sum(self.machine.hypervisor.counts.values())

    # Paging and linear memory --------------------------------------------------------------
    def read_msr(self, msr):
        self._msr.rid = msr
        f = self.fast
        f._rr(f._h, X.UC_X86_REG_MSR, self._pmsr)
        return self._msr.value

    def paging(self):
        f = self.fast
        cr0 = f.read(X.UC_X86_REG_CR0)
        if not cr0 & mmu.CR0_PG:
            return mmu.Paging(cr0, 0, 0, self.read_msr(MSR_EFER))
        return mmu.Paging(cr0, f.read(X.UC_X86_REG_CR3), f.read(X.UC_X86_REG_CR4),
                          self.read_msr(MSR_EFER))  # fmt: skip

    def linear(self, va, paging=None, write=False):
        """Guest-physical address of linear va (CPL 0 access), or None."""
        paging = paging or self.paging()
        t = mmu.walk(self.ram, paging, va)
        if t is None or not mmu.allowed(paging, t, write=write):
            return None
        return t[0]

    def read_linear(self, va, n, paging=None):
        paging = paging or self.paging()
        out = b""
        while n > 0:
            chunk = min(n, 0x1000 - (va & 0xFFF))
            pa = self.linear(va, paging)
            if pa is None or not self.ram.valid(pa, chunk):
                return None
            out += self.ram.read(pa, chunk)
            va += chunk
            n -= chunk
        return out

    def write_linear(self, va, data, paging):
        """Write as the CPU would during interrupt delivery; False if a page is not
        writable (the CPU would raise #PF there)."""
        parts = []
        off = 0
        while off < len(data):
            chunk = min(len(data) - off, 0x1000 - ((va + off) & 0xFFF))
            pa = self.linear(va + off, paging, write=True)
            if pa is None or not self.ram.valid(pa, chunk):
                return False
            parts.append((pa, data[off : off + chunk]))
            off += chunk
        for pa, piece in parts:
            self.ram.write(pa, piece)
        return True

    def read_code(self, rip, n):
        f = self.fast
        if not f.read(X.UC_X86_REG_CR0) & mmu.CR0_PG:
            return self.ram.read(rip, n) if self.ram.valid(rip, n) else b""
        return self.read_linear(rip, n) or b""

    def code64(self):
        """Whether the current code segment is a 64-bit one (long mode and CS.L)."""
        f = self.fast
        if not f.read(X.UC_X86_REG_CR0) & mmu.CR0_PG:
            return False  # no long mode without paging (after the PVH entry trampoline)
        cs = f.read(_CS)
        base, limit, _ = f.read_mmr(X.UC_X86_REG_GDTR)
        key = (cs, base, limit)
        mode = self._code64.get(key)
        if mode is None:
            desc = self.read_linear(base + (cs & ~7), 8) if (cs & ~7) + 7 <= limit else None
            # A selector we cannot read the descriptor of: long mode decides.
            if desc is None:
                mode = bool(self.read_msr(MSR_EFER) & mmu.EFER_LMA)
            else:
                mode = bool(int.from_bytes(desc, "little") >> 53 & 1)
            self._code64[key] = mode
        return mode

    # Hypercalls: the mode of the caller picks the registers ------------------------------------
    def hypercall_args(self, n):
        if self.code64():
            return super().hypercall_args(n)
        read = self.fast.read
        return [read(r) & 0xFFFFFFFF for r in HYPERCALL_ARGS32[:n]]

    def report(self, pc=None):
        return native_report(self, self.pc() if pc is None else pc)

    # Instructions Unicorn cannot trap ----------------------------------------------------------
    def _on_trapped(self, uc, address, size, _):
        kind, length = self._trapped[address]
        f = self.fast
        hv = self.machine.hypervisor
        self.exits += 1
        if kind == "rdtsc" or kind == "rdtscp":
            self.clock.advance(COST_TSC_READ_NS)
            tsc = self.clock.tsc()
            f.write(_RAX, tsc & 0xFFFFFFFF)
            f.write(_RDX, tsc >> 32)
            if kind == "rdtscp":
                f.write(_RCX, 0)  # IA32_TSC_AUX: vCPU id as Linux sets it; 0 here
        else:
            msr = f.read(_RCX) & 0xFFFFFFFF
            if msr in PASSTHROUGH_MSRS:
                return  # the CPU runs it
            self.clock.advance(COST_TSC_READ_NS)
            if kind == "wrmsr":
                value = (f.read(_RDX) & 0xFFFFFFFF) << 32 | (f.read(_RAX) & 0xFFFFFFFF)
                # IA32_TSC writes are dropped: Xen would move the domain's TSC offset.
                if msr != MSR_IA32_TSC and not hv.wrmsr(self, msr, value):
                    return self.exception(13, address, f"wrmsr to MSR {msr:#x}", 0)
            else:
                value = self.clock.tsc() if msr == MSR_IA32_TSC else hv.rdmsr(self, msr)
                if value is None:
                    return self.exception(13, address, f"rdmsr of MSR {msr:#x}", 0)
                f.write(_RAX, value & 0xFFFFFFFF)
                f.write(_RDX, value >> 32)
        pc = address + length
        if self.machine.outcome is None:
            pc = self.deliver_pending(pc)  # the next instruction boundary is a window
        f.write(_RIP, pc)  # one single write: the only PC write a code hook keeps
        if self.machine.outcome is not None:
            f.stop()

    def _on_unmapped(self, uc, access, address, size, value, _):
        self._unmapped = (access, address, size)
        return False  # Unicorn stops with UC_ERR_*_UNMAPPED; run() reports it

    # Exceptions ------------------------------------------------------------------------------
    def _on_intr(self, uc, intno, _):
        self.exits += 1
        f = self.fast
        rip = f.read(_RIP)
        err = None
        if self.excstate.available:  # QEMU's own error code and INT-instruction flag
            code, software = self.excstate.take()
            if not software and intno in ERROR_CODE_VECTORS:
                err = code
        else:  # rebuild them (x86_excstate.py explains why they may be out of reach)
            software = self._software_interrupt(intno, rip)
            if not software and intno in ERROR_CODE_VECTORS:
                err = self._page_fault_code(rip) if intno == 14 else 0
        what = EXCEPTION_NAMES.get(intno, f"vector {intno:#x}")
        if software:
            what = f"int {intno:#x}"
        self.exception(intno, rip, what, err, software)

    def _software_interrupt(self, intno, rip):
        """int3, into, int1 and `int n` are traps: RIP is already past them. Unicorn does not
        say which kind it raised, so look at the bytes that precede RIP."""
        if intno in (3, 4):  # only int3/`int 3` and into raise these
            return True
        before = self.read_code(rip - 2, 2) if rip >= 2 else b""
        if len(before) == 2 and before[0] == 0xCD and before[1] == intno:
            return True
        return intno == 1 and before[-1:] == b"\xf1"

    def _page_fault_code(self, rip):
        f = self.fast
        cr2 = f.read(X.UC_X86_REG_CR2)
        paging = self.paging()
        user = f.read(_CS) & 3 == 3
        rights = mmu.walk(self.ram, paging, cr2)
        fetch = False
        here = mmu.walk(self.ram, paging, rip)
        if here is None or not mmu.allowed(paging, here, fetch=True, user=user):
            fetch = True  # the instruction itself could not be fetched
        elif cr2 >> 12 != rip >> 12 and cr2 >> 12 == (rip + 15) >> 12:
            # the tail of an instruction that crosses into the faulting page?
            fetch = rights is None or not mmu.allowed(paging, rights, fetch=True, user=user)
        write = False
        if not fetch:
            reads, writes = _memory_access(self.read_code(rip, 15), rip, self.code64())
            if rights is not None and mmu.allowed(paging, rights, user=user):
                write = True  # a present, readable page faults only on the write
            else:
                write = writes and not reads  # a load happens before the store
        return mmu.page_fault_code(paging, rights, write, fetch, user)

    def exception(self, vector, rip, what, errcode=None, software=False):
        """Deliver a CPU exception raised at rip (the frame's return address) through the
        guest's IDT; escalate to #DF, then to a triple fault that ends the run."""
        f = self.fast
        self.trace.event("exception", self.id, vector=vector, error=errcode, rip=rip)
        self.exceptions.append((vector, errcode, rip))
        target, why = self._deliver(vector, rip, None, errcode, software)
        if target is None and software and why == "dpl":
            vector, errcode, software = 13, (vector << 3) | 2, False
            target, why = self._deliver(vector, rip, None, errcode)
        if target is None and vector != 8:
            first = why
            target, why = self._deliver(8, rip, None, 0)
            why = f"{first}; then #DF: {why}"
        if target is None:
            detail = f" (error code {errcode:#x})" if errcode is not None else ""
            if vector == 14 or what.startswith("#PF"):
                detail += f" CR2={f.read(X.UC_X86_REG_CR2):#x}"
            self.fault(vector, rip, f"{what}{detail} could not be delivered ({why}): "
                       "triple fault")  # fmt: skip
            return
        f.write(_RIP, target)

    # Interrupt and exception delivery through the guest's IDT ----------------------------------
    def inject(self, vec, return_pc, rflags):
        target, why = self._deliver(vec, return_pc, rflags, None)
        if target is None:
            self.fault(vec, return_pc, f"interrupt {vec:#x} has no usable gate ({why}): "
                       "triple fault")  # fmt: skip
            return return_pc
        return target

    def _deliver(self, vec, return_pc, rflags, errcode, software=False):
        """Push the frame and return (handler address, None), or (None, why) when the CPU
        could not deliver; registers are only written on success."""
        f = self.fast
        if rflags is None:
            rflags = f.read(_RFLAGS)
        paging = self.paging()
        if paging.long_mode:
            return self._deliver64(vec, return_pc, rflags, errcode, software, paging)
        return self._deliver32(vec, return_pc, rflags, errcode, software, paging)

    def _gate_flags(self, rflags, gtype):
        cleared = RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM
        if gtype in (0xE, 0x6):
            cleared |= RFLAGS_IF  # interrupt gate; a trap gate leaves IF alone
        return rflags & ~cleared

    def _read_gate(self, vec, size, paging):
        """(gate bytes, None) from the guest's IDT, gates `size` bytes wide, or (None, why)."""
        idt_base, idt_limit, _ = self.fast.read_mmr(X.UC_X86_REG_IDTR)
        if vec * size + size - 1 > idt_limit:
            return None, f"vector {vec:#x} beyond the IDT limit {idt_limit:#x}"
        raw = self.read_linear(idt_base + vec * size, size, paging)
        if raw is None:
            return None, f"IDT entry at {idt_base + vec * size:#x} not mapped"
        return raw, None

    def _deliver64(self, vec, return_pc, rflags, errcode, software, paging):
        f = self.fast
        raw, why = self._read_gate(vec, 16, paging)
        if raw is None:
            return None, why
        lo, hi = struct.unpack("<QQ", raw)
        gtype = (lo >> 40) & 0xF
        if not (lo >> 47) & 1 or gtype not in (0xE, 0xF):
            return None, f"gate {vec:#x} not present or of type {gtype:#x}"
        cs, ss, rsp = f.read(_CS), f.read(_SS), f.read(_RSP)
        cpl = cs & 3
        if software and cpl > (lo >> 45) & 3:
            return None, "dpl"
        target = (lo & 0xFFFF) | ((lo >> 48) & 0xFFFF) << 16 | (hi & 0xFFFFFFFF) << 32
        selector = (lo >> 16) & 0xFFFF
        ist = (lo >> 32) & 7
        to_inner = (selector & 3) < cpl
        if ist or to_inner:
            tss, _, _ = f.read_mmr(X.UC_X86_REG_TR)
            slot = tss + 0x24 + 8 * (ist - 1) if ist else tss + 4  # IST[n] or RSP0
            raw = self.read_linear(slot, 8, paging)
            if raw is None:
                return None, f"TSS slot at {slot:#x} not mapped"
            new_rsp = int.from_bytes(raw, "little")
        else:
            new_rsp = rsp
        words = [return_pc, cs, rflags, rsp, ss]
        if errcode is not None:
            words.insert(0, errcode)
        frame = (new_rsp & ~0xF) - 8 * len(words)  # aligned to 16 before the pushes
        if not self.write_linear(frame, struct.pack(f"<{len(words)}Q", *words), paging):
            return None, f"frame at {frame:#x} not writable"
        f.write(_RSP, frame)
        f.write(_RFLAGS, self._gate_flags(rflags, gtype))
        if selector != cs:
            f.write(_CS, selector)
        if to_inner:
            f.write(_SS, selector & 3)  # a null selector with the new RPL
        self._traced(vec, return_pc, errcode)
        return target, None

    def _deliver32(self, vec, return_pc, rflags, errcode, software, paging):
        """Protected mode without long mode: 8-byte gates, 32-bit frames, same privilege
        level only (a PVH kernel's 32-bit entry code runs at CPL 0)."""
        f = self.fast
        raw, why = self._read_gate(vec, 8, paging)
        if raw is None:
            return None, why
        lo, hi = struct.unpack("<II", raw)
        gtype = (hi >> 8) & 0xF
        if not (hi >> 15) & 1 or gtype not in (0xE, 0xF):
            return None, f"gate {vec:#x} not present or of type {gtype:#x} (32-bit gates only)"
        cs = f.read(_CS)
        if software and (cs & 3) > (hi >> 13) & 3:
            return None, "dpl"
        selector = lo >> 16
        if (selector & 3) != (cs & 3):
            return None, "a privilege change in 32-bit mode is not modelled"
        words = [return_pc & 0xFFFFFFFF, cs, rflags & 0xFFFFFFFF]
        if errcode is not None:
            words.insert(0, errcode & 0xFFFFFFFF)
        esp = f.read(_RSP) & 0xFFFFFFFF
        frame = (esp - 4 * len(words)) & 0xFFFFFFFF
        if not self.write_linear(frame, struct.pack(f"<{len(words)}I", *words), paging):
            return None, f"frame at {frame:#x} not writable"
        f.write(_RSP, frame)
        f.write(_RFLAGS, self._gate_flags(rflags, gtype))
        if selector != cs:
            f.write(_CS, selector)
        self._traced(vec, return_pc, errcode)
        return (lo & 0xFFFF) | (hi & 0xFFFF0000), None

    def _traced(self, vec, return_pc, errcode):
        self.clock.advance(COST_INJECT_NS)
        if self.trace.enabled:
            self.trace.event("inject", self.id, vector=vec, rip=return_pc, error=errcode)

    # Running ----------------------------------------------------------------------------------
    def run(self, pc):
        """Run the kernel from pc until the run ends (shutdown, fault, deadlock, budget):
        every hlt idles the vCPU until an interrupt can be delivered."""
        f = self.fast
        machine = self.machine
        while True:
            self._unmapped = None
            self.exits += 1
            err = run_slice(self, pc)
            pc = f.read(_RIP)
            if self.stall is not None and self.stall[0].is_set():
                machine.finish(Outcome("stall", EXIT_BUDGET, self.stall[1], self.report(pc)))
                raise Stop(machine.outcome)
            if err != UC_ERR_OK:
                what = report.uc_error(err)
                if self._unmapped is not None:
                    access, addr, size = self._unmapped
                    what += f": {size}-byte access to guest-physical {addr:#x}, outside RAM"
                self.fault(-1, pc, f"emulation error: {what}")
                raise Stop(machine.outcome)
            self.clock.advance(COST_RUN_SLICE_NS)
            if self.read_code(pc - 1, 1) != bytes([HLT]):
                self.fault(-1, pc, "emulation stopped without a hlt")
                raise Stop(machine.outcome)
            pc = self.halt(pc)


def _memory_access(code, rip, is64):
    """(reads, writes): whether the instruction at the start of code reads and writes
    memory, its implicit stack accesses included."""
    from capstone import CS_ARCH_X86, CS_MODE_32, CS_MODE_64, Cs
    from capstone.x86 import X86_OP_MEM

    md = Cs(CS_ARCH_X86, CS_MODE_64 if is64 else CS_MODE_32)
    md.detail = True
    for insn in md.disasm(code, rip, 1):
        reads = insn.mnemonic in _POPS
        writes = insn.mnemonic in _PUSHES
        for op in insn.operands:
            if op.type == X86_OP_MEM and insn.mnemonic != "lea":
                reads |= bool(op.access & 1)
                writes |= bool(op.access & 2)
        return reads, writes
    return True, False


def native_report(vcpu, rip):
    """Registers (control registers and descriptor tables too) and the code around rip,
    disassembled in the mode the vCPU is in, read through its page tables."""
    uc = vcpu.uc
    lines = report.x86(vcpu, rip, code=False).splitlines()
    try:
        paging = vcpu.paging()
        gdtr = vcpu.fast.read_mmr(X.UC_X86_REG_GDTR)
        idtr = vcpu.fast.read_mmr(X.UC_X86_REG_IDTR)
        tr = vcpu.fast.read_mmr(X.UC_X86_REG_TR)
        is64 = vcpu.code64()
    except Exception as e:  # a report must never fail
        return "\n".join(lines + [f"  (state unreadable: {e})"])
    lines.append(f"    efer={paging.efer:#018x}   gdtr={gdtr[0]:#x}/{gdtr[1]:#x} "
                 f"idtr={idtr[0]:#x}/{idtr[1]:#x} tr={tr[2]:#x} base {tr[0]:#x}")  # fmt: skip
    mode = "64-bit" if is64 else ("compatibility" if paging.long_mode else "32-bit protected")
    pg = "paging on" if paging.enabled else "paging off"
    lines.append(f"  mode: {mode}, {pg}, CPL={uc.reg_read(X.UC_X86_REG_CS) & 3}")
    if vcpu.exceptions:
        last = ", ".join(f"{v}" + (f"/{e:#x}" if e is not None else "") + f"@{r:#x}"
                         for v, e, r in list(vcpu.exceptions)[-4:])  # fmt: skip
        lines.append(f"  last exceptions (vector/error@rip): {last}")
    lines.append("code:")
    view = mmu.LinearView(vcpu.ram, paging)
    lines.extend(report.disassemble(view, "x86_64", rip, mode=64 if is64 else 32))
    return "\n".join(lines)
