# A riscv64 vCPU on Unicorn whose interrupts are delivered by the emulated CPU itself: the
# host sets a bit in mip and the CPU traps to stvec, honouring sstatus.SIE and sie; the guest
# returns with `sret` (reference/unicorn-notes.md §h). The guest runs in S-mode standing for
# VS-mode. What the host gives it in sip is Xen's virtual hvip, kept by the pending /
# pending-mask tracking in platform/xen/irqs_riscv.py and flushed just before every slice.
# Traps: `ecall` (SBI and Xen hypercalls) reaches UC_HOOK_INTR as intno 8 with the PC already
# past it; reading the `time` CSR is an illegal instruction (intno 2) the host emulates, as
# firmware does on harts without a readable time CSR; `ebreak` reaches UC_HOOK_INSN_INVALID.
from micropv.runtime.abi import sbi as B
from unicorn import (
    UC_ARCH_RISCV,
    UC_ERR_OK,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_MODE_RISCV64,
    UC_PROT_ALL,
    Uc,
)
from unicorn import riscv_const as R

from ..clock import COST_HYPERCALL_NS, COST_RUN_SLICE_NS
from ..xen.irqs_riscv import VcpuIrqs
from . import report_riscv
from .fastbatch import BatchRead, BatchWrite
from .fastuc import FastUC
from .slice import run_bridge, run_slice
from .stop import EXIT_DEADLOCK, EXIT_VCPU_FAULT, Outcome, Stop

WFI = 0x10500073
PRIV_S = 1
PRIV_M = 3
S_INTERRUPTS = B.SIP_SSIP | B.SIP_STIP | B.SIP_SEIP
_HVIP_VSSIP, _HVIP_VSTIP, _HVIP_VSEIP = B.HVIP_VSSIP, B.HVIP_VSTIP, B.HVIP_VSEIP
# The firmware delegates what a hypervisor delegates to a VS-mode guest (hideleg, hedeleg):
# the supervisor interrupts, and misaligned fetch, breakpoint, ecall from U and page faults.
# Illegal instructions and ecall from S stay with the firmware (SBI, the time CSR).
MEDELEG = (1 << 0) | (1 << 3) | (1 << 8) | (1 << 12) | (1 << 13) | (1 << 15)
# Interrupt priority among the supervisor interrupts (privileged spec: SEI, SSI, STI).
_PRIORITY = (B.IRQ_S_EXT, B.IRQ_S_SOFT, B.IRQ_S_TIMER)

REGS = {"zero": R.UC_RISCV_REG_X0, "ra": R.UC_RISCV_REG_RA, "sp": R.UC_RISCV_REG_SP,
        "gp": R.UC_RISCV_REG_GP, "tp": R.UC_RISCV_REG_TP, "t0": R.UC_RISCV_REG_T0,
        "t1": R.UC_RISCV_REG_T1, "t2": R.UC_RISCV_REG_T2, "s0": R.UC_RISCV_REG_S0,
        "s1": R.UC_RISCV_REG_S1, "pc": R.UC_RISCV_REG_PC, "sstatus": R.UC_RISCV_REG_SSTATUS,
        "sie": R.UC_RISCV_REG_SIE, "sip": R.UC_RISCV_REG_SIP, "stvec": R.UC_RISCV_REG_STVEC,
        "sepc": R.UC_RISCV_REG_SEPC, "scause": R.UC_RISCV_REG_SCAUSE,
        "stval": R.UC_RISCV_REG_STVAL, "sscratch": R.UC_RISCV_REG_SSCRATCH}  # fmt: skip
for _i in range(8):
    REGS[f"a{_i}"] = R.UC_RISCV_REG_A0 + _i

_PC, _A0, _A1 = R.UC_RISCV_REG_PC, R.UC_RISCV_REG_A0, R.UC_RISCV_REG_A1
_A6, _A7 = R.UC_RISCV_REG_A6, R.UC_RISCV_REG_A7
_SIP, _SIE, _SSTATUS = R.UC_RISCV_REG_SIP, R.UC_RISCV_REG_SIE, R.UC_RISCV_REG_SSTATUS
_MIP, _PRIV = R.UC_RISCV_REG_MIP, R.UC_RISCV_REG_PRIV
HYPERCALL_ARGS = tuple(R.UC_RISCV_REG_A0 + i for i in range(5))  # a0..a4

EXCEPTION_NAMES = {
    0: "instruction address misaligned", 1: "instruction access fault",
    2: "illegal instruction", 3: "breakpoint", 4: "load address misaligned",
    5: "load access fault", 6: "store/AMO address misaligned", 7: "store/AMO access fault",
    12: "instruction page fault", 13: "load page fault", 15: "store/AMO page fault",
}  # fmt: skip


class RiscvVCPU:
    arch = "riscv64"
    bridge_stop_offset = 4  # emu_start stops just after a bridge's 4-byte `wfi`

    def __init__(self, machine, vcpu_id=0):
        self.machine = machine
        self.id = vcpu_id
        self.clock = machine.clock
        self.ram = machine.ram
        self.trace = machine.trace
        self.counter_hz = machine.board.counter_hz
        uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
        uc.mem_map_ptr(0, self.ram.size, UC_PROT_ALL, self.ram.ptr)
        self.uc = uc
        self.fast = FastUC(uc)
        self.bridges = {}  # address just after a bridge `wfi` -> Python function
        self.return_point = None
        self._done = None
        self.irq_sources = []  # x86-style host-injected sources: none, the CPU takes its own
        # Xen's pending / pending-mask tracking; the hypervisor sets its kick.
        self.irqs = VcpuIrqs()
        # Level-triggered lines re-evaluated at every entry into the guest (seip sets it).
        self.level = None
        self.halted = False
        # One libunicorn call per trap for its registers, and one for a privilege switch
        # around a mip write (fastbatch.py).
        self._trap_regs = BatchRead(uc, (_A7, _A6) + HYPERCALL_ARGS + (_SIP,))
        self._ecall_regs = None  # the trap's a7, a6, a0..a4, sip while an ecall is handled
        self._stop_regs = BatchRead(uc, (_PC, _SIP))
        # sip as the CPU has it, whenever that is known without asking: read when emulation
        # stops or traps, updated by our own writes; None while guest code may change it.
        self._sip = None
        self._mip_write = BatchWrite(uc, (_PRIV, _MIP, _PRIV))
        self._mip_write.values[0] = PRIV_M
        self._mip_write.values[2] = PRIV_S
        self._firmware()
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)

    def _firmware(self):
        """What M-mode firmware does before it enters the S-mode kernel: delegate the
        supervisor interrupts and the guest's own exceptions, enable the interrupts in mie
        (sie is masked by mideleg), leave the time CSR to trap (mcounteren = 0)."""
        uc = self.uc
        uc.reg_write(R.UC_RISCV_REG_MIDELEG, S_INTERRUPTS)
        uc.reg_write(R.UC_RISCV_REG_MEDELEG, MEDELEG)
        uc.reg_write(R.UC_RISCV_REG_MIE, S_INTERRUPTS)
        uc.reg_write(R.UC_RISCV_REG_MCOUNTEREN, 0)
        uc.reg_write(_PRIV, PRIV_S)

    # Registers ------------------------------------------------------------------------------
    def pc(self):
        return self.fast.read(_PC)

    def report(self, pc=None):
        return report_riscv.report(self, self.pc() if pc is None else pc)

    def reg(self, name):
        return self.fast.read(REGS[name])

    def set_reg(self, name, value):
        if name == "sip":
            self._sip = None
        self.fast.write(REGS[name], value)

    def hypercall_args(self, n):
        regs = self._ecall_regs
        if regs is not None:  # read with a7 and a6 when the ecall trapped
            return regs[2 : 2 + n]
        read = self.fast.read
        return [read(r) for r in HYPERCALL_ARGS[:n]]

    def interrupts_enabled(self):
        return bool(self.fast.read(_SSTATUS) & B.SSTATUS_SIE)

    def time(self):
        """The `time` CSR: the platform counter, derived from virtual time."""
        return self.clock.now * self.counter_hz // 1_000_000_000

    def sync_code(self, addr, size):
        self.uc.ctl_remove_cache(addr, addr + size)

    # The virtual hvip: Xen's consumer, and writing what the guest sees in sip ----------------
    def entry(self):
        """Xen's check_for_pcpu_work on the way into the guest, before every slice:
        re-evaluate level-triggered lines, then sync the guest's sip.SSIP and flush changed
        bits. Returns the sip bits newly raised."""
        if self.level is not None:
            self.level()
        if self.irqs.mask:
            return self.flush()
        return 0

    def flush(self):
        """vcpu_sync_interrupts + vcpu_flush_interrupts, run only when there is something to
        flush (a guest write to SSIP alone is already in the CPU, so it can wait for the next
        flush to be synced). Returns the sip bits that may have been newly raised."""
        f = self.fast
        irqs = self.irqs
        if irqs.mask & _HVIP_VSSIP:
            # A producer changed VSSIP: the sync would leave it alone (its mask bit is set),
            # so the guest's own value need not be read.
            sip = None
        else:
            sip = self._sip
            if sip is None:
                sip = f.read(_SIP)
            irqs.sync((sip & B.SIP_SSIP) << 1)
        mask = irqs.take()
        want = (irqs.apply(mask) >> 1) & S_INTERRUPTS
        if sip is not None and want == sip & S_INTERRUPTS:
            return 0
        self._sip = want  # the guest cannot change STIP/SEIP: they are ours, as is SSIP now
        if self.trace.enabled:
            self.trace.event("sip", self.id, value=want)
        if mask & (_HVIP_VSTIP | _HVIP_VSEIP):
            # STIP and SEIP are read-only in S-mode: write mip from M-mode (Unicorn checks the
            # privilege of register accesses too), then drop back to S.
            w = self._mip_write
            w.values[1] = want
            w.write()  # PRIV = M; mip = want; PRIV = S
        else:
            f.write(_SIP, want)  # SSIP alone is writable from S-mode
        return want & ~sip if sip is not None else want & (mask >> 1)

    def pending_source(self):
        """(self, cause) of the highest-priority interrupt pending and enabled in sie
        (sstatus.SIE aside), or None. Flushes first: called from inside hypercalls."""
        self.entry()
        f = self.fast
        p = f.read(_SIP) & f.read(_SIE)
        if not p:
            return None
        for cause in _PRIORITY:
            if (p >> cause) & 1:
                return self, cause
        return None

    # Traps ----------------------------------------------------------------------------------
    def _on_intr(self, uc, intno, _):
        if intno == 8:
            return self._on_ecall()
        pc = self.fast.read(_PC) - 4  # Unicorn has already stepped past the instruction
        if intno == 2 and self._emulate_csr(pc):
            return
        self.fault(intno, pc, EXCEPTION_NAMES.get(intno, f"exception {intno}"))

    def _on_ecall(self):
        f = self.fast
        machine = self.machine
        hv = machine.hypervisor
        self.clock.advance(COST_HYPERCALL_NS)
        regs = self._ecall_regs = self._trap_regs.read()  # a7, a6, a0..a4, sip
        self._sip = regs[7]
        eid = regs[0]
        try:
            if eid == B.SBI_EXT_XEN:
                f.write(_A0, hv.hypercall(self, regs[1] & 0xFFFFFFFF))
            else:
                a0, a1 = hv.sbi.ecall(self, eid, regs[1])
                f.write(_A0, a0)
                if a1 is not None:
                    f.write(_A1, a1)
        finally:
            self._ecall_regs = None
        if machine.outcome is None:
            # On the way back to the guest: due timers run (softirqs), then the consumer
            # flushes; the CPU takes what became pending right after the ecall.
            self.clock.fire_due()
            self.entry()
        self._sip = None  # the guest runs on: its sip is its own again until the next stop
        if machine.outcome is not None:
            f.stop()

    def _emulate_csr(self, pc):
        """csrr rd, time (csrrs/csrrc/csrrsi/csrrci that only read it): rd = the counter."""
        if not self.ram.valid(pc, 4):
            return False
        insn = self.ram.u32(pc)
        f3 = (insn >> 12) & 7
        if insn & 0x7F != 0x73 or insn >> 20 != B.CSR_TIME or f3 not in (2, 3, 6, 7):
            return False
        if (insn >> 15) & 31:
            return False  # a write to time: illegal
        rd = (insn >> 7) & 31
        if rd:
            self.fast.write(R.UC_RISCV_REG_X0 + rd, self.time())
        return True

    def _on_invalid(self, uc, _):
        pc = self.fast.read(_PC)
        self.fault(3, pc, "ebreak (an unexpected trap, or a vector with no handler)")
        return True

    def fault(self, cause, pc, what):
        """The vCPU is dead: record a readable report and stop emulation."""
        if self.machine.outcome is None:
            msg = f"vCPU{self.id} {what} at pc={pc:#x}"
            self.machine.finish(Outcome("fault", EXIT_VCPU_FAULT, msg, self.report(pc)))
        self.fast.stop()

    # Running guest code ---------------------------------------------------------------------
    def set_return_point(self, addr):
        self.return_point = addr
        self._done = addr + 4

    def run(self, pc):
        """Run guest code from pc until it executes the return point's `wfi`. Bridges run
        their Python function and continue; any other `wfi` idles the vCPU."""
        machine = self.machine
        irqs = self.irqs
        while True:
            if irqs.mask or self.level is not None:
                self.entry()
            err = run_slice(self, pc)
            stop = self._stop_regs.read()
            pc = stop[0]
            self._sip = stop[1]
            if err != UC_ERR_OK:
                self.fault(-1, pc, f"emulation error: {report_riscv.uc_error(err)}")
                raise Stop(machine.outcome)
            self.clock.advance(COST_RUN_SLICE_NS)
            if pc == self._done:
                return
            fn = self.bridges.get(pc)
            if fn is not None:
                run_bridge(self, fn, pc - 4)
                continue
            if not self.ram.valid(pc - 4, 4) or self.ram.u32(pc - 4) != WFI:
                self.fault(-1, pc, "emulation stopped without a wfi")
                raise Stop(machine.outcome)
            pc = self.halt(pc)

    def halt(self, pc):
        """The guest executed `wfi` (pc is the next instruction). It resumes once an
        interrupt is pending and enabled in sie -- whatever sstatus.SIE says, so a guest that
        checked for work with SIE=0 cannot miss one that arrived after the check. Then the
        CPU takes it if SIE=1, or the guest continues with it pending."""
        f = self.fast
        self.trace.event("hlt", self.id, rip=pc - 4, insn="wfi")
        self.halted = True
        hv = self.machine.hypervisor
        blocked = False
        try:
            while True:
                self.entry()
                sie = f.read(_SIE)
                sip = self._sip
                if sip is None:
                    sip = f.read(_SIP)
                if sip & sie:
                    self.trace.event("wake", self.id)
                    if blocked:
                        hv.vcpu_wake(self)
                    return pc
                if not blocked:
                    hv.vcpu_block(self)
                    blocked = True
                if not sie or not self.clock.skip_to_next_deadline():
                    why = ("no interrupt is enabled in sie" if not sie else
                           "no interrupt pending, no timer armed")  # fmt: skip
                    self.machine.finish(Outcome(
                        "deadlock", EXIT_DEADLOCK,
                        f"vCPU{self.id} in wfi at {pc - 4:#x} with nothing that could wake "
                        f"it ({why})", self.report(pc - 4)))  # fmt: skip
                    raise Stop(self.machine.outcome)
        finally:
            self.halted = False

    def boundary(self):
        """A HAL call from guest Python: the vCPU is parked on the return point. Flush what
        producers changed; if that raised an interrupt and SIE=1, run the CPU from the
        return point so it takes it (its handler returns there with `sret`). Level lines are
        re-evaluated at entries into guest code (run, ecall return, wfi), as Xen/Arm does
        for its event-channel PPI, not at every memory access guest Python makes."""
        if not self.irqs.mask:
            return
        if self.flush() and self.fast.read(_SSTATUS) & B.SSTATUS_SIE:
            self.run(self.return_point)
