# An x86_64 vCPU on Unicorn, with interrupt delivery done the way the hardware does it.
# Unicorn cannot raise x86 interrupts (reference/unicorn-notes.md §0.1), so the host reads the
# gate from the guest's own IDT, pushes the 5-qword frame and jumps; the guest returns with a
# real iretq. Hypercalls arrive as vmcall/vmmcall #UD in UC_HOOK_INSN_INVALID.
from unicorn import (
    UC_ARCH_X86,
    UC_ERR_OK,
    UC_HOOK_CODE,
    UC_HOOK_INSN,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_MODE_64,
    UC_PROT_ALL,
    Uc,
)
from unicorn import x86_const as X

from ..clock import COST_HYPERCALL_NS, COST_INJECT_NS, COST_RUN_SLICE_NS
from . import report, scan
from .fastuc import FastUC
from .lapic import VLAPIC
from .slice import run_bridge, run_slice
from .stop import EXIT_DEADLOCK, EXIT_VCPU_FAULT, Outcome, Stop

RFLAGS_TF = 1 << 8
RFLAGS_IF = 1 << 9
RFLAGS_NT = 1 << 14
RFLAGS_RF = 1 << 16
RFLAGS_VM = 1 << 17

VMCALL = b"\x0f\x01\xc1"
VMMCALL = b"\x0f\x01\xd9"
HLT = 0xF4

REGS = {
    "rax": X.UC_X86_REG_RAX, "rbx": X.UC_X86_REG_RBX, "rcx": X.UC_X86_REG_RCX,
    "rdx": X.UC_X86_REG_RDX, "rsi": X.UC_X86_REG_RSI, "rdi": X.UC_X86_REG_RDI,
    "rbp": X.UC_X86_REG_RBP, "rsp": X.UC_X86_REG_RSP, "r8": X.UC_X86_REG_R8,
    "r9": X.UC_X86_REG_R9, "r10": X.UC_X86_REG_R10, "r11": X.UC_X86_REG_R11,
    "r12": X.UC_X86_REG_R12, "r13": X.UC_X86_REG_R13, "r14": X.UC_X86_REG_R14,
    "r15": X.UC_X86_REG_R15, "rip": X.UC_X86_REG_RIP, "rflags": X.UC_X86_REG_RFLAGS,
    "cs": X.UC_X86_REG_CS, "ss": X.UC_X86_REG_SS,
}  # fmt: skip

# 64-bit hypercall arguments (docs/guest-guide/x86/hypercall-abi.rst): rdi, rsi, rdx, r10, r8.
HYPERCALL_ARGS = (X.UC_X86_REG_RDI, X.UC_X86_REG_RSI, X.UC_X86_REG_RDX,
                  X.UC_X86_REG_R10, X.UC_X86_REG_R8)  # fmt: skip

_RAX, _RCX, _RDX = X.UC_X86_REG_RAX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX
_RIP, _RSP, _RFLAGS = X.UC_X86_REG_RIP, X.UC_X86_REG_RSP, X.UC_X86_REG_RFLAGS
_CS, _SS = X.UC_X86_REG_CS, X.UC_X86_REG_SS

EXCEPTION_NAMES = {
    0: "#DE divide error", 1: "#DB debug", 2: "NMI", 3: "#BP breakpoint", 4: "#OF overflow",
    5: "#BR bound range", 6: "#UD invalid opcode", 7: "#NM device not available",
    8: "#DF double fault", 10: "#TS invalid TSS", 11: "#NP segment not present",
    12: "#SS stack fault", 13: "#GP general protection", 14: "#PF page fault",
    16: "#MF x87 error", 17: "#AC alignment check", 18: "#MC machine check",
    19: "#XM SIMD error",
}  # fmt: skip


class X86VCPU:
    arch = "x86_64"
    bridge_stop_offset = 1  # emu_start stops just after a bridge's 1-byte hlt
    native = False  # True for emu/x86_native.NativeX86VCPU (ELF kernels)

    def __init__(self, machine, vcpu_id=0):
        self.machine = machine
        self.id = vcpu_id
        self.clock = machine.clock
        self.ram = machine.ram
        self.trace = machine.trace
        uc = Uc(UC_ARCH_X86, UC_MODE_64)
        uc.mem_map_ptr(0, self.ram.size, UC_PROT_ALL, self.ram.ptr)
        self.uc = uc
        self.fast = FastUC(uc)
        self.bridges = {}  # address just after a bridge `hlt` -> Python function
        self.return_point = None
        self._done = None  # where emu_start stops once the return point's hlt ran
        # Interrupt sources in priority order; each has pending() -> vector | None and
        # acknowledge(vector). Xen ranks the callback vector ahead of the LAPIC (hvm/irq.c).
        self.irq_sources = []
        # The local APIC (xAPIC) behind its MMIO page. Its callbacks run inside the guest's
        # load or store: they must not stop emulation (the store would run again) or move RIP.
        # So a store that unblocks an interrupt (EOI, TPR, SVR, self-IPI) takes effect at the
        # next interrupt window (HAL call, hypercall, hlt), not right after the store.
        self.eoi_listeners = []  # fn(vcpu, vector | None) on every EOI, for the hypervisor
        self.lapic = VLAPIC(vcpu_id, base=machine.board.lapic_base, bsp=(vcpu_id == 0),
                            on_eoi=self._on_eoi)  # fmt: skip
        uc.mmio_map(self.lapic.base, 0x1000, self._lapic_read, None, self._lapic_write, None)
        self.irq_sources.append(self.lapic)
        self._trapped = {}  # address -> instruction the host emulates (rdmsr, wrmsr, rdtsc)
        self.halted = False
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_INSN, self._on_cpuid, None, 1, 0, X.UC_X86_INS_CPUID)
        uc.hook_add(UC_HOOK_INSN, self._on_out, None, 1, 0, X.UC_X86_INS_OUT)
        uc.hook_add(UC_HOOK_INSN, self._on_in, None, 1, 0, X.UC_X86_INS_IN)

    # Registers ------------------------------------------------------------------------------
    def pc(self):
        return self.fast.read(_RIP)

    def report(self, pc=None):
        """Registers and the code around pc (default: where the vCPU is now)."""
        return report.x86(self, self.pc() if pc is None else pc)

    def reg(self, name):
        return self.fast.read(REGS[name])

    def set_reg(self, name, value):
        self.fast.write(REGS[name], value)

    def hypercall_args(self, n):
        read = self.fast.read
        return [read(r) for r in HYPERCALL_ARGS[:n]]

    def cpl(self):
        return self.fast.read(_CS) & 3

    def interrupts_enabled(self):
        return bool(self.fast.read(_RFLAGS) & RFLAGS_IF)

    # Code the host must see: trapped instructions and the translation cache -----------------
    def sync_code(self, addr, size):
        """Code was written at [addr, addr+size): hook the instructions Unicorn 2.1.4 cannot
        trap (rdmsr, wrmsr, rdtsc, rdtscp) at exactly their addresses, and drop stale
        translations. A guest that rewrites its code without telling us defeats this."""
        for at, kind, length in scan.trapped_instructions(self.ram.read(addr, size), addr):
            if at not in self._trapped:
                self._trapped[at] = (kind, length)
                self.uc.hook_add(UC_HOOK_CODE, self._on_trapped, None, at, at)
        self.uc.ctl_remove_cache(addr, addr + size)

    def _on_trapped(self, uc, address, size, _):
        kind, length = self._trapped[address]
        f = self.fast
        hv = self.machine.hypervisor
        if kind == "rdtsc" or kind == "rdtscp":
            tsc = self.clock.tsc()
            f.write(_RAX, tsc & 0xFFFFFFFF)
            f.write(_RDX, tsc >> 32)
            if kind == "rdtscp":
                f.write(_RCX, 0)  # IA32_TSC_AUX: vCPU id as Linux sets it; 0 here
        elif kind == "wrmsr":
            msr = f.read(_RCX) & 0xFFFFFFFF
            value = (f.read(_RDX) & 0xFFFFFFFF) << 32 | (f.read(_RAX) & 0xFFFFFFFF)
            if not hv.wrmsr(self, msr, value):
                return self.fault(13, address, f"#GP: wrmsr to MSR {msr:#x} value {value:#x}")
        else:  # rdmsr
            msr = f.read(_RCX) & 0xFFFFFFFF
            value = hv.rdmsr(self, msr)
            if value is None:
                return self.fault(13, address, f"#GP: rdmsr of unknown MSR {msr:#x}")
            f.write(_RAX, value & 0xFFFFFFFF)
            f.write(_RDX, value >> 32)
        f.write(_RIP, address + length)  # one single write: the only PC write a code hook keeps

    # The local APIC page --------------------------------------------------------------------
    def _lapic_read(self, uc, offset, size, _):
        if self.trace.enabled:  # an MMIO exit on hardware: `micropv compare` counts them
            self.trace.event("mmio", self.id, offset=offset, write=False)
        return self.lapic.mmio_read(offset, size)

    def _lapic_write(self, uc, offset, size, value, _):
        if self.trace.enabled:
            self.trace.event("mmio", self.id, offset=offset, write=True)
        self.lapic.mmio_write(offset, size, value)

    def _on_eoi(self, vector):
        self.trace.event("eoi", self.id, vector=vector)
        for fn in self.eoi_listeners:
            fn(self, vector)

    # Traps ----------------------------------------------------------------------------------
    def _on_invalid(self, uc, _):
        f = self.fast
        rip = f.read(_RIP)
        insn = self.read_code(rip, 3)
        if insn != VMCALL and insn != VMMCALL:
            self.exception(6, rip, "#UD invalid opcode")
            return True
        nr = f.read(_RAX)
        self.clock.advance(COST_HYPERCALL_NS)
        if f.read(_CS) & 3:
            result = -1  # -EPERM: only CPL 0 may make hypercalls (hvm/hypercall.c)
        else:
            result = self.machine.hypervisor.hypercall(self, nr)
        f.write(_RAX, result)
        pc = rip + 3
        if self.machine.outcome is None:
            # Softirqs run on the way back to the guest: a timer the hypercall armed in the
            # past (set_timer_op) fires before VM entry (xen/common/timer.c, TIMER_SOFTIRQ).
            self.clock.fire_due()
            # VM entry after the hypercall: an upcall that became deliverable is taken now.
            pc = self.deliver_pending(pc)
        f.write(_RIP, pc)
        if self.machine.outcome is not None:
            f.stop()
        return True

    def _on_intr(self, uc, intno, _):
        rip = self.fast.read(_RIP)
        # For #UD-class faults RIP is the faulting instruction; for `int n` it is the next one.
        self.fault(intno, rip, EXCEPTION_NAMES.get(intno, f"interrupt/exception {intno}"))

    def _on_cpuid(self, uc, _):
        f = self.fast
        leaf = f.read(_RAX) & 0xFFFFFFFF
        sub = f.read(_RCX) & 0xFFFFFFFF
        r = self.machine.hypervisor.cpuid(self, leaf, sub)
        if r is None:
            return 0  # QEMU's own answer
        f.write(_RAX, r[0])
        f.write(X.UC_X86_REG_RBX, r[1])
        f.write(_RCX, r[2])
        f.write(_RDX, r[3])
        return 1

    def _on_out(self, uc, port, size, value, _):
        self.machine.hypervisor.io_out(self, port, size, value)
        if self.machine.outcome is not None:
            self.fast.stop()

    def _on_in(self, uc, port, size, _):
        return self.machine.hypervisor.io_in(self, port, size)

    def read_code(self, rip, n):
        """n bytes of code at rip ("" if not in RAM). Python guests run with paging off."""
        return self.ram.read(rip, n) if self.ram.valid(rip, n) else b""

    def exception(self, vector, rip, what, errcode=None, software=False):
        """A CPU exception raised by guest code. Python guests have no handler for them: the
        vCPU dies with a report (native guests take them through their IDT)."""
        self.fault(vector, rip, what)

    def fault(self, vector, rip, what):
        """The vCPU is dead: record a readable report and stop emulation."""
        if self.machine.outcome is None:
            msg = f"vCPU{self.id} {what} at rip={rip:#x}"
            self.machine.finish(Outcome("fault", EXIT_VCPU_FAULT, msg, self.report(rip)))
        self.fast.stop()

    # Interrupt delivery ---------------------------------------------------------------------
    def pending_source(self):
        for src in self.irq_sources:
            vec = src.pending()
            if vec is not None:
                return src, vec
        return None

    def deliver_pending(self, pc):
        """At an instruction boundary whose next instruction is pc: if an interrupt is
        pending and RFLAGS.IF=1, deliver it and return the gate address, else pc."""
        if not self.irq_sources:
            return pc
        hit = self.pending_source()
        if hit is None:
            return pc
        rflags = self.fast.read(_RFLAGS)
        if not rflags & RFLAGS_IF:
            return pc
        src, vec = hit
        src.acknowledge(vec)
        return self.inject(vec, pc, rflags)

    def inject(self, vec, return_pc, rflags):
        """Push the interrupt frame and return the handler address, as the CPU does for an
        external interrupt through an interrupt or trap gate (SDM vol. 3 §6.12.1)."""
        f, ram = self.fast, self.ram
        idt_base, idt_limit, _ = f.read_mmr(X.UC_X86_REG_IDTR)
        if vec * 16 + 15 > idt_limit or not ram.valid(idt_base + vec * 16, 16):
            return self._no_gate(vec, return_pc, "outside the IDT limit")
        lo = ram.u64(idt_base + vec * 16)
        hi = ram.u64(idt_base + vec * 16 + 8)
        gtype = (lo >> 40) & 0xF
        if not (lo >> 47) & 1 or gtype not in (0xE, 0xF):
            return self._no_gate(vec, return_pc, f"gate not present or type {gtype:#x}")
        target = (lo & 0xFFFF) | ((lo >> 48) & 0xFFFF) << 16 | (hi & 0xFFFFFFFF) << 32
        selector = (lo >> 16) & 0xFFFF
        ist = (lo >> 32) & 7
        cs, ss, rsp = f.read(_CS), f.read(_SS), f.read(_RSP)
        to_ring0 = cs & 3 != 0
        if ist or to_ring0:
            tss, _, _ = f.read_mmr(X.UC_X86_REG_TR)
            slot = tss + 0x24 + 8 * (ist - 1) if ist else tss + 4  # IST[n] or RSP0
            if not ram.valid(slot, 8):
                return self._no_gate(vec, return_pc, "TSS not readable")
            new_rsp = ram.u64(slot)
        else:
            new_rsp = rsp
        frame = (new_rsp & ~0xF) - 40  # 64-bit mode aligns the stack to 16 before pushing
        if not ram.valid(frame, 40):
            return self._no_gate(vec, return_pc, f"frame at {frame:#x} not writable")
        ram.set64(frame, return_pc)
        ram.set64(frame + 8, cs)
        ram.set64(frame + 16, rflags)
        ram.set64(frame + 24, rsp)
        ram.set64(frame + 32, ss)
        f.write(_RSP, frame)
        cleared = RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM
        if gtype == 0xE:
            cleared |= RFLAGS_IF  # interrupt gate; a trap gate leaves IF alone
        f.write(_RFLAGS, rflags & ~cleared)
        if to_ring0 or selector != cs:
            f.write(_CS, selector)
            if to_ring0:
                f.write(_SS, 0)
        self.clock.advance(COST_INJECT_NS)
        if self.trace.enabled:
            self.trace.event("inject", self.id, vector=vec, rip=return_pc)
        return target

    def _no_gate(self, vec, rip, why):
        self.fault(vec, rip, f"interrupt {vec:#x} has no usable gate ({why}): triple fault")
        return rip

    # Running guest code ---------------------------------------------------------------------
    def set_return_point(self, addr):
        self.return_point = addr
        self._done = addr + 1

    def run(self, pc):
        """Run guest code from pc until it executes the return point's hlt. Bridges run their
        Python function and continue; any other hlt idles the vCPU until an interrupt."""
        f = self.fast
        machine = self.machine
        while True:
            err = run_slice(self, pc)
            pc = f.read(_RIP)
            if err != UC_ERR_OK:
                self.fault(-1, pc, f"emulation error: {report.uc_error(err)}")
                raise Stop(machine.outcome)
            self.clock.advance(COST_RUN_SLICE_NS)
            if pc == self._done:
                return
            fn = self.bridges.get(pc)
            if fn is not None:
                run_bridge(self, fn, pc - 1)
                pc = self.deliver_pending(pc)
                continue
            if not self.ram.valid(pc - 1, 1) or self.ram.u8(pc - 1) != HLT:
                self.fault(-1, pc, "emulation stopped without a hlt")
                raise Stop(machine.outcome)
            pc = self.halt(pc)

    def halt(self, pc):
        """The guest executed hlt (pc is the next instruction). Xen's hvm_hlt: with IF=0 the
        vCPU is taken down; otherwise it sleeps until an interrupt can be delivered."""
        rflags = self.fast.read(_RFLAGS)
        if not rflags & RFLAGS_IF:
            self.fault(-1, pc - 1, "halted with interrupts disabled (hlt with RFLAGS.IF=0)")
            raise Stop(self.machine.outcome)
        self.trace.event("hlt", self.id, rip=pc - 1)
        self.halted = True
        hv = self.machine.hypervisor
        blocked = False
        try:
            while True:
                hit = self.pending_source()
                if hit is not None:
                    src, vec = hit
                    src.acknowledge(vec)
                    self.trace.event("wake", self.id)
                    if blocked:
                        hv.vcpu_wake(self)
                    return self.inject(vec, pc, rflags)
                if not blocked:
                    hv.vcpu_block(self)  # nothing to take: the vCPU really sleeps
                    blocked = True
                if not self.clock.skip_to_next_deadline():
                    self.machine.finish(
                        Outcome(
                            "deadlock",
                            EXIT_DEADLOCK,
                            f"vCPU{self.id} halted at {pc - 1:#x} with nothing that could "
                            "wake it (no interrupt pending, no timer armed)",
                            self.report(pc - 1),
                        )
                    )
                    raise Stop(self.machine.outcome)
        finally:
            self.halted = False

    def boundary(self):
        """A HAL call from guest Python: the vCPU is parked on the return point. Deliver every
        pending interrupt first, while the guest has interrupts enabled -- a CPU takes the
        next one right after the previous handler's iretq, before the next instruction."""
        sources = self.irq_sources
        while True:
            for src in sources:  # pending_source(), inlined: this runs at every HAL call
                vec = src.pending()
                if vec is not None:
                    break
            else:
                return
            rflags = self.fast.read(_RFLAGS)
            if not rflags & RFLAGS_IF:
                return  # interrupts are off: the rest waits
            src.acknowledge(vec)
            pc = self.inject(vec, self.return_point, rflags)
            if self.machine.outcome is not None:  # no usable gate: the vCPU is dead
                raise Stop(self.machine.outcome)
            self.run(pc)
