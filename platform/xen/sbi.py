# The SBI a riscv64 domU sees: Xen's virtual SBI (xen/arch/riscv/vsbi/) grown to SBI 2.0 --
# Base, TIME, IPI, HSM, SRST, DBCN, the legacy set_timer and console_putchar -- plus micropv's
# Xen hypercall extension (dispatched by the vCPU) and its ucall channel. Errors follow the
# SBI spec: an unknown extension or function is SBI_ERR_NOT_SUPPORTED, bad arguments get the
# function's documented error. ecall() returns (a0, a1); a1 is None for the legacy calls,
# which return a single value in a0 and leave a1 alone.
# Ref: riscv-sbi-doc (v2.0) src/ext-*.adoc; reference/xen-abi.md §13-§14.
from micropv.runtime.abi import sbi as B
from micropv.runtime.abi import sched as S
from micropv.runtime.abi import xen as X

from ..clock import Timer
from ..emu.stop import EXIT_DEADLOCK, Outcome
from .irqs_riscv import IRQ_VS_SOFT, IRQ_VS_TIMER

MASK64 = (1 << 64) - 1
SPEC_VERSION = (2 << B.SBI_SPEC_VERSION_MAJOR_OFFSET) | 0  # SBI 2.0
IMPL_VERSION = X.XEN_VERSION_MAJOR << 16 | X.XEN_VERSION_MINOR
# SRST reset types and reasons micropv implements; the rest are reserved or platform-specific
# (and unimplemented): SBI_ERR_INVALID_PARAM.
_RESET_TYPES = (B.SBI_SRST_RESET_TYPE_SHUTDOWN, B.SBI_SRST_RESET_TYPE_COLD_REBOOT,
                B.SBI_SRST_RESET_TYPE_WARM_REBOOT)  # fmt: skip
_RESET_REASONS = (B.SBI_SRST_RESET_REASON_NONE, B.SBI_SRST_RESET_REASON_SYSFAIL)
_HSM_SUSPEND_TYPES = (0x00000000, 0x80000000)  # default retentive, default non-retentive
NOT_SUPPORTED = (B.SBI_ERR_NOT_SUPPORTED, 0)


def _s32(v):
    """FIDs, suspend types and the like are 32-bit (the spec's int32/uint32 arguments)."""
    return v & 0xFFFFFFFF


class VirtualSBI:
    def __init__(self, xen):
        self.xen = xen
        self.machine = xen.machine
        self.clock = xen.machine.clock
        self.trace = xen.machine.trace
        self.hz = xen.board.counter_hz
        cpus = xen.machine.vcpus
        self.timers = [Timer(self._timer_fn(cpu), f"vcpu{cpu.id}.sbi_timer") for cpu in cpus]
        self.hart_state = [B.SBI_HSM_STATE_STARTED] + [B.SBI_HSM_STATE_STOPPED] * (len(cpus) - 1)
        self.counts = {}  # (eid, fid) -> calls
        self.extensions = {
            B.SBI_EXT_BASE: self._base,
            B.SBI_EXT_TIME: self._time,
            B.SBI_EXT_IPI: self._ipi,
            B.SBI_EXT_HSM: self._hsm,
            B.SBI_EXT_SRST: self._srst,
            B.SBI_EXT_DBCN: self._dbcn,
            B.SBI_EXT_MICROPV: self._micropv,
        }
        # What probe_extension says yes to: the above, Xen's (the vCPU dispatches it) and the
        # two legacy calls that work.
        self.probe = frozenset(self.extensions) | {B.SBI_EXT_XEN, B.SBI_EXT_LEGACY_SET_TIMER,
                                                   B.SBI_EXT_LEGACY_CONSOLE_PUTCHAR}  # fmt: skip

    # Dispatch -------------------------------------------------------------------------------
    def ecall(self, vcpu, eid, fid):
        """An SBI call from vcpu with a7 = eid, a6 = fid: returns (a0, a1)."""
        if eid <= 0x0F:
            fid = None
            a0, a1 = self._legacy(vcpu, eid), None
        else:
            fid = _s32(fid)
            fn = self.extensions.get(eid)
            a0, a1 = NOT_SUPPORTED if fn is None else fn(vcpu, fid)
        key = (eid, fid)
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.trace.enabled:
            self.trace.event("sbi", vcpu.id, eid=eid, fid=fid, error=a0, value=a1)
        return a0, a1

    def _args(self, vcpu, n):
        return vcpu.hypercall_args(n)  # a0.. in order

    # Legacy (v0.1): the EID is the call ----------------------------------------------------
    def _legacy(self, vcpu, eid):
        if eid == B.SBI_EXT_LEGACY_SET_TIMER:
            self.set_timer(vcpu, self._args(vcpu, 1)[0])
            return 0
        if eid == B.SBI_EXT_LEGACY_CONSOLE_PUTCHAR:
            self.machine.console_write(bytes([self._args(vcpu, 1)[0] & 0xFF]))
            return 0
        # getchar, clear_ipi, send_ipi, the remote fences and shutdown (0x02..0x08) are not
        # provided (Xen's vSBI crashes the domain on some); 0x09..0x0F are reserved.
        return B.SBI_ERR_NOT_SUPPORTED

    # Base ---------------------------------------------------------------------------------
    def _base(self, vcpu, fid):
        if fid == B.SBI_BASE_GET_SPEC_VERSION:
            return 0, SPEC_VERSION
        if fid == B.SBI_BASE_GET_IMPL_ID:
            return 0, B.SBI_XEN_IMPID
        if fid == B.SBI_BASE_GET_IMPL_VERSION:
            return 0, IMPL_VERSION
        if fid == B.SBI_BASE_PROBE_EXT:
            return 0, 1 if self._args(vcpu, 1)[0] in self.probe else 0
        if fid in (B.SBI_BASE_GET_MVENDORID, B.SBI_BASE_GET_MARCHID, B.SBI_BASE_GET_MIMPID):
            return 0, 0  # Xen gives domUs zeros
        return NOT_SUPPORTED

    # TIME ---------------------------------------------------------------------------------
    def _time(self, vcpu, fid):
        if fid != B.SBI_TIME_SET_TIMER:
            return NOT_SUPPORTED
        self.set_timer(vcpu, self._args(vcpu, 1)[0])
        return 0, 0

    def set_timer(self, vcpu, ticks):
        """Xen's vtimer_set_timer: clear a pending STIP first (the spec's rule for a future
        deadline); (u64)-1 only stops the timer; a deadline already reached raises STIP at
        once; else a timer raises it when `time` reaches the deadline."""
        irqs = vcpu.irqs
        timer = self.timers[vcpu.id]
        irqs.unset_interrupt(IRQ_VS_TIMER)
        self.clock.stop_timer(timer)
        if ticks == MASK64:
            self.trace.event("timer_stop", vcpu.id, timer="sbi")
            return
        if ticks <= vcpu.time():
            irqs.set_interrupt(IRQ_VS_TIMER)
            return
        deadline = -(-ticks * 1_000_000_000 // self.hz)  # the first ns at which time >= ticks
        self.clock.set_timer(timer, deadline)
        self.trace.event("timer_set", vcpu.id, timer="sbi", deadline=deadline)

    def _timer_fn(self, cpu):
        def fire():
            self.trace.event("timer_fire", cpu.id, timer="sbi")
            cpu.irqs.set_interrupt(IRQ_VS_TIMER)

        return fire

    # IPI ----------------------------------------------------------------------------------
    def _harts(self, mask, base):
        """The hart ids (hart_mask, hart_mask_base) names, or None if one is not valid."""
        n = len(self.machine.vcpus)
        if base == MASK64:
            return list(range(n))
        harts = []
        i = 0
        while mask >> i:
            if (mask >> i) & 1:
                if base + i >= n:
                    return None
                harts.append(base + i)
            i += 1
        return harts

    def _ipi(self, vcpu, fid):
        if fid != B.SBI_IPI_SEND_IPI:
            return NOT_SUPPORTED
        mask, base = self._args(vcpu, 2)
        harts = self._harts(mask, base)
        if harts is None:
            return B.SBI_ERR_INVALID_PARAM, 0
        for h in harts:
            self.machine.vcpus[h].irqs.set_interrupt(IRQ_VS_SOFT)
        return 0, 0

    # HSM ----------------------------------------------------------------------------------
    def _hsm(self, vcpu, fid):
        n = len(self.machine.vcpus)
        if fid == B.SBI_HSM_HART_START:
            hartid, start, _opaque = self._args(vcpu, 3)
            if hartid >= n:
                return B.SBI_ERR_INVALID_PARAM, 0
            if not self.machine.ram.valid(start, 4):
                return B.SBI_ERR_INVALID_ADDRESS, 0
            if self.hart_state[hartid] != B.SBI_HSM_STATE_STOPPED:
                return B.SBI_ERR_ALREADY_AVAILABLE, 0
            return B.SBI_ERR_FAILED, 0  # secondary harts come with SMP
        if fid == B.SBI_HSM_HART_STOP:
            self.hart_state[vcpu.id] = B.SBI_HSM_STATE_STOPPED
            self.trace.event("hart_stop", vcpu.id)
            if all(s == B.SBI_HSM_STATE_STOPPED for s in self.hart_state):
                self.machine.finish(Outcome(
                    "deadlock", EXIT_DEADLOCK,
                    f"hart {vcpu.id} stopped (SBI HSM hart_stop) and no hart is left running"))  # fmt: skip
            return 0, 0  # not reached by the guest: the run is over
        if fid == B.SBI_HSM_HART_GET_STATUS:
            hartid = self._args(vcpu, 1)[0]
            if hartid >= n:
                return B.SBI_ERR_INVALID_PARAM, 0
            return 0, self.hart_state[hartid]
        if fid == B.SBI_HSM_HART_SUSPEND:
            kind = _s32(self._args(vcpu, 1)[0])
            if kind in _HSM_SUSPEND_TYPES:
                return NOT_SUPPORTED  # defined, but not provided (yet)
            return B.SBI_ERR_INVALID_PARAM, 0  # reserved, or platform-specific and absent
        return NOT_SUPPORTED

    # SRST ---------------------------------------------------------------------------------
    def _srst(self, vcpu, fid):
        if fid != B.SBI_SRST_SYSTEM_RESET:
            return NOT_SUPPORTED
        kind, reason = (_s32(a) for a in self._args(vcpu, 2))
        if kind not in _RESET_TYPES or reason not in _RESET_REASONS:
            return B.SBI_ERR_INVALID_PARAM, 0
        if kind == B.SBI_SRST_RESET_TYPE_SHUTDOWN:
            code = S.SHUTDOWN_crash if reason == B.SBI_SRST_RESET_REASON_SYSFAIL else \
                S.SHUTDOWN_poweroff  # fmt: skip
        else:
            code = S.SHUTDOWN_reboot
        self.xen.domain_shutdown(code)
        return 0, 0  # not reached by the guest: the domain is gone

    # DBCN ---------------------------------------------------------------------------------
    def _dbcn(self, vcpu, fid):
        if fid == B.SBI_DBCN_CONSOLE_WRITE_BYTE:
            self.machine.console_write(bytes([self._args(vcpu, 1)[0] & 0xFF]))
            return 0, 0
        if fid not in (B.SBI_DBCN_CONSOLE_WRITE, B.SBI_DBCN_CONSOLE_READ):
            return NOT_SUPPORTED
        n, lo, hi = self._args(vcpu, 3)
        # The buffer is physical memory the supervisor may access (the spec's shared-memory
        # rules): in guest RAM, and below 2^64 (base_addr_hi = 0 on RV64).
        if hi or not self.machine.ram.valid(lo, n):
            return B.SBI_ERR_INVALID_PARAM, 0
        if fid == B.SBI_DBCN_CONSOLE_READ:
            return 0, 0  # no input: 0 bytes read
        self.machine.console_write(self.machine.ram.read(lo, n))
        return 0, n

    # micropv's ucall channel --------------------------------------------------------------
    def _micropv(self, vcpu, fid):
        if fid != B.SBI_MICROPV_UCALL:
            return NOT_SUPPORTED
        self.machine.ucall(vcpu, self._args(vcpu, 1)[0])
        return 0, 0
