# riscv64 arch layer: the machine code the runtime writes into guest memory at boot, and the
# Python calls that run it. The guest runs in S-mode standing for VS-mode (DESIGN §4); SBI
# calls and Xen hypercalls are `ecall`s, interrupts arrive through sip/sie and a vectored
# stvec, and the CPU itself takes them and returns with `sret`. Every instruction below is a
# 4-byte encoding (no C extension: Unicorn adds 4 to the PC at a trap even for 2-byte ones).
# The micropv riscv64 ABI (hypercall extension, callback selection, ucall channel) is in
# docs/riscv64.md.
from .._compat import const
from ..abi import sbi as B
from .common import StubCalls

UPCALL_SEIP = "seip"  # supervisor external interrupt, level: asserted while upcall_pending
UPCALL_SSIP = "ssip"  # supervisor software interrupt, edge: the guest clears sip.SSIP
HVM_PARAM_CALLBACK_IRQ = const(0)
CALLBACK_TYPE_SIP = const(2)  # micropv riscv64: bits 7:0 name the supervisor interrupt

# Registers
ZERO = const(0)
RA = const(1)
SP = const(2)
A0 = const(10)
A6 = const(16)
A7 = const(17)
_ARG_REGS = ("a0", "a1", "a2", "a3", "a4", "a5")
_NCAUSES = const(16)  # vector table slots (causes 0..15)
_FRAME = const(96)  # interrupt entry frame: ra, a0..a7, sepc, sstatus, pad (16-aligned)


# Instruction encoders (RV64I + Zicsr); each returns the 4 little-endian bytes. ------------------
def _w(x):
    return (x & 0xFFFFFFFF).to_bytes(4, "little")


def _itype(op, rd, f3, rs1, imm):
    return _w(((imm & 0xFFF) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op)


def _stype(op, f3, rs1, rs2, imm):
    imm &= 0xFFF
    return _w(
        ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1F) << 7) | op
    )


def addi(rd, rs1, imm):
    return _itype(0x13, rd, 0, rs1, imm)


def addiw(rd, rs1, imm):
    return _itype(0x1B, rd, 0, rs1, imm)


def andi(rd, rs1, imm):
    return _itype(0x13, rd, 7, rs1, imm)


def lui(rd, imm20):
    return _w(((imm20 & 0xFFFFF) << 12) | (rd << 7) | 0x37)


def ld(rd, rs1, off):
    return _itype(0x03, rd, 3, rs1, off)


def sd(rs2, rs1, off):
    return _stype(0x23, 3, rs1, rs2, off)


def jal(rd, off):
    """jal rd, pc+off (off even, within +-1 MiB)."""
    if off & 1 or not -(1 << 20) <= off < (1 << 20):
        raise ValueError("jal offset out of range")
    o = off & 0x1FFFFF
    imm = ((o >> 20) & 1) << 31 | ((o >> 1) & 0x3FF) << 21 | ((o >> 11) & 1) << 20
    imm |= ((o >> 12) & 0xFF) << 12
    return _w(imm | (rd << 7) | 0x6F)


def jalr(rd, rs1, off):
    return _itype(0x67, rd, 0, rs1, off)


def csrrw(rd, csr, rs1):
    return _itype(0x73, rd, 1, rs1, csr)


def csrrs(rd, csr, rs1):
    return _itype(0x73, rd, 2, rs1, csr)


def csrrc(rd, csr, rs1):
    return _itype(0x73, rd, 3, rs1, csr)


def csrrci(rd, csr, uimm):
    return _itype(0x73, rd, 7, uimm, csr)


def csrrsi(rd, csr, uimm):
    return _itype(0x73, rd, 6, uimm, csr)


def li32(rd, value):
    """li rd, value for any value in [-2^31, 2^31): `addi rd, zero, value` when it fits in
    12 signed bits, else `lui rd, hi` and, unless lo is 0, `addiw rd, rd, lo`."""
    if -0x800 <= value < 0x800:
        return addi(rd, ZERO, value)
    lo = value & 0xFFF
    if lo >= 0x800:
        lo -= 0x1000
    hi = lui(rd, (value - lo) >> 12)
    return hi + addiw(rd, rd, lo) if lo else hi


ECALL = _w(0x00000073)  # ecall
EBREAK = _w(0x00100073)  # ebreak
WFI = _w(0x10500073)  # wfi
SRET = _w(0x10200073)  # sret
RET = jalr(ZERO, RA, 0)  # ret

# Stub bodies. Each is entered by the HAL at its first instruction and ends by jumping to the
# return point (appended when it is written: `j return_point`), so no register is needed to
# say where to come back to.
_CLI = csrrci(ZERO, B.CSR_SSTATUS, B.SSTATUS_SIE)  # csrci sstatus, SIE
_STI = csrrsi(ZERO, B.CSR_SSTATUS, B.SSTATUS_SIE)  # csrsi sstatus, SIE
# Check-then-block: called with SIE=0 after the caller checked for work. `wfi` wakes on any
# interrupt pending and enabled in sie even while SIE=0, so one that became pending after the
# check still wakes it; enabling SIE then takes it, right after the csrsi.
_SAFE_HALT = (
    WFI  # wfi
    + csrrsi(ZERO, B.CSR_SSTATUS, B.SSTATUS_SIE)  # csrsi sstatus, SIE
)
_HALT = WFI  # wfi
_SAVE_FLAGS_CLI = csrrci(A0, B.CSR_SSTATUS, B.SSTATUS_SIE)  # csrrci a0, sstatus, SIE
_READ_FLAGS = csrrs(A0, B.CSR_SSTATUS, ZERO)  # csrr a0, sstatus
# Linux's arch_local_irq_restore: set SIE again only if it was set.
_RESTORE_FLAGS = (
    andi(A0, A0, B.SSTATUS_SIE)  # andi a0, a0, SIE
    + csrrs(ZERO, B.CSR_SSTATUS, A0)  # csrs sstatus, a0
)
_RDTIME = csrrs(A0, B.CSR_TIME, ZERO)  # rdtime a0 (csrr a0, time)
_SBI_CALL = ECALL  # ecall (a7 = EID, a6 = FID, a0..a5 args; a0 = error, a1 = value)
# micropv's ucall channel: an SBI call on a micropv-private extension, a0 = the record.
_UCALL = (
    li32(A7, B.SBI_EXT_MICROPV)  # li a7, SBI_EXT_MICROPV (lui; addiw)
    + addi(A6, ZERO, B.SBI_MICROPV_UCALL)  # li a6, SBI_MICROPV_UCALL
    + ECALL  # ecall
)


def _hypercall_stub(nr):
    """One Xen hypercall: the extension and the number are immediates, a0..a4 the args."""
    return (
        li32(A7, B.SBI_EXT_XEN)  # li a7, SBI_EXT_XEN (lui; addiw)
        + li32(A6, nr)  # li a6, nr
        + ECALL  # ecall: Xen's result in a0
    )


def _entry(ack):
    """Interrupt entry for one cause: save what guest Python's own HAL calls may clobber
    (ra, a0..a7) and the trap CSRs (a nested trap would overwrite them), acknowledge a
    software interrupt first if asked (so an edge raised during the handler is kept), trap
    to the Python handler (the bridge `wfi`), restore, `sret`. Returns (prologue, epilogue)."""
    pro = addi(SP, SP, -_FRAME)  # addi sp, sp, -FRAME
    pro += sd(RA, SP, 0)  # sd ra, 0(sp)
    for i in range(8):
        pro += sd(A0 + i, SP, 8 + 8 * i)  # sd a<i>, 8+8i(sp)
    pro += csrrs(A0, B.CSR_SEPC, ZERO)  # csrr a0, sepc
    pro += sd(A0, SP, 72)  # sd a0, 72(sp)
    pro += csrrs(A0, B.CSR_SSTATUS, ZERO)  # csrr a0, sstatus
    pro += sd(A0, SP, 80)  # sd a0, 80(sp)
    if ack:
        pro += csrrci(ZERO, B.CSR_SIP, ack)  # csrc sip, ack (ack < 32: csrci)
    epi = ld(A0, SP, 80)  # ld a0, 80(sp)
    epi += csrrw(ZERO, B.CSR_SSTATUS, A0)  # csrw sstatus, a0
    epi += ld(A0, SP, 72)  # ld a0, 72(sp)
    epi += csrrw(ZERO, B.CSR_SEPC, A0)  # csrw sepc, a0
    epi += ld(RA, SP, 0)  # ld ra, 0(sp)
    for i in range(8):
        epi += ld(A0 + i, SP, 8 + 8 * i)  # ld a<i>, 8+8i(sp)
    epi += addi(SP, SP, _FRAME)  # addi sp, sp, FRAME
    epi += SRET  # sret
    return pro, epi


class Arch(StubCalls):
    """Writes the stubs at boot, then runs them through the HAL."""

    IF_MASK = B.SSTATUS_SIE

    name = "riscv64"

    def __init__(self, hal):
        self.hal = hal
        lay = hal.layout
        self._next = lay["code"]
        self._end = lay["code"] + lay["code_size"]
        self.handlers = {}
        self._hypercalls = {}
        # The return point: a `wfi` that stands for "the guest is running Python".
        self.return_point = self._emit_raw(WFI)  # wfi
        hal.set_return_point(self.return_point)
        # Vectored stvec: interrupt cause n enters at table + 4n. Every slot starts as
        # `ebreak` (an interrupt nobody asked for ends the run with a report).
        self.table = self._emit_raw(EBREAK * _NCAUSES, align=64)
        self._stubs = {}
        for name, body in (
            ("cli", _CLI), ("sti", _STI), ("safe_halt", _SAFE_HALT), ("halt", _HALT),
            ("save_flags_cli", _SAVE_FLAGS_CLI), ("read_flags", _READ_FLAGS),
            ("restore_flags", _RESTORE_FLAGS), ("rdtime", _RDTIME), ("sbi", _SBI_CALL),
            ("ucall", _UCALL),
        ):  # fmt: skip
            self._stubs[name] = self._emit(body)
        self._boot(lay)

    # Code area ------------------------------------------------------------------------------
    def _emit_raw(self, code, align=16):
        start = self._next
        addr = (start + align - 1) & ~(align - 1)
        end = (addr + len(code) + 15) & ~15
        if end > self._end:
            raise MemoryError("runtime code area full")
        # Pad with ebreak, so a stray jump traps and a disassembly reads cleanly.
        pad = EBREAK * ((addr - start) // 4)
        self.hal.load_code(start, pad + code + EBREAK * ((end - addr - len(code)) // 4))
        self._next = end
        return addr

    def _emit(self, body):
        """Write body followed by `j return_point`."""
        addr = (self._next + 15) & ~15
        back = addr + len(body)
        return self._emit_raw(body + jal(ZERO, self.return_point - back))  # j return_point

    def _boot(self, lay):
        code = li32(SP, lay["stack_top"])  # li sp, stack_top (lui; addiw)
        code += li32(A0, self.table | 1)  # li a0, table | MODE_VECTORED
        code += csrrw(ZERO, B.CSR_STVEC, A0)  # csrw stvec, a0
        code += csrrw(ZERO, B.CSR_SIE, ZERO)  # csrw sie, zero: every source off
        code += csrrci(ZERO, B.CSR_SSTATUS, B.SSTATUS_SIE)  # csrci sstatus, SIE
        self.hal.run(self._emit(code), (), "a0")

    # Calling stubs --------------------------------------------------------------------------
    def call(self, addr, args=(), out="a0"):
        """Call the guest function at addr (it returns with `ret`) with args in a0..a5."""
        regs = [("ra", self.return_point)]
        for i in range(len(args)):
            regs.append((_ARG_REGS[i], args[i]))
        return self.hal.run(addr, regs, out)

    def stub(self, name, args=(), out="a0"):
        regs = []
        for i in range(len(args)):
            regs.append((_ARG_REGS[i], args[i]))
        return self.hal.run(self._stubs[name], regs, out)

    def rdtime(self):
        """The `time` CSR: the platform counter (10 MHz on sbi-riscv64)."""
        return self.stub("rdtime")

    def counter(self):
        """The counter pvclock scales (vcpu_time_info.tsc_timestamp is in its ticks)."""
        return self.stub("rdtime")

    def ucall(self, addr):
        self.stub("ucall", (addr,))

    # SBI ------------------------------------------------------------------------------------
    def sbi_call(self, eid, fid, args=()):
        """An SBI call: (error, value), both signed. Legacy extensions return only a0; for
        them value is whatever a1 held."""
        regs = [("a7", eid), ("a6", fid)]
        for i in range(len(args)):
            regs.append((_ARG_REGS[i], args[i]))
        err, value = self.hal.run(self._stubs["sbi"], regs, ("a0", "a1"))
        return _signed(err), _signed(value)

    def find_xen(self, rt):
        """SBI discovery, as a RISC-V guest finds any extension: the Base extension's
        probe_extension on micropv's Xen extension must say 1."""
        err, version = self.sbi_call(B.SBI_EXT_BASE, B.SBI_BASE_GET_SPEC_VERSION)
        if err != B.SBI_SUCCESS or version >> B.SBI_SPEC_VERSION_MAJOR_OFFSET < 1:
            raise RuntimeError("SBI older than 0.2 (no probe_extension)")
        rt.sbi_version = (version >> B.SBI_SPEC_VERSION_MAJOR_OFFSET, version & 0xFFFFFF)
        err, present = self.sbi_call(B.SBI_EXT_BASE, B.SBI_BASE_PROBE_EXT, (B.SBI_EXT_XEN,))
        if err != B.SBI_SUCCESS or present == 0:
            raise RuntimeError("not running on Xen: SBI extension %#x absent" % B.SBI_EXT_XEN)
        return "SBI extension %#x" % B.SBI_EXT_XEN

    # Hypercalls -----------------------------------------------------------------------------
    def hypercall(self, nr, args):
        """ecall with a7 = SBI_EXT_XEN, a6 = nr, a0..a4 = args; Xen's result in a0 (raw
        64 bits). One stub per number, written on first use, like a hypercall page."""
        stub = self._hypercalls.get(nr)
        if stub is None:
            stub = self._hypercalls[nr] = self._emit(_hypercall_stub(nr & 0x7FFFFFFF))
        regs = []
        for i in range(len(args)):
            regs.append((_ARG_REGS[i], args[i]))
        return self.hal.run(stub, regs, "a0")

    # The event-channel upcall ---------------------------------------------------------------
    callbacks = (UPCALL_SEIP, UPCALL_SSIP)

    def setup_upcall(self, upcall):
        """HVM_PARAM_CALLBACK_IRQ = (CALLBACK_TYPE_SIP << 56) | cause: 9 (SEI) is what Xen
        starts with; 1 (SSI) switches to the edge-triggered software interrupt, whose entry
        clears sip.SSIP before the handler runs (an edge raised meanwhile is kept)."""
        if upcall.method == UPCALL_SEIP:
            self.set_vector(B.IRQ_S_EXT, upcall.entry)
            cause = B.IRQ_S_EXT
        else:
            self.set_vector(B.IRQ_S_SOFT, upcall.entry, ack=B.SIP_SSIP)
            cause = B.IRQ_S_SOFT
        upcall.set_param(HVM_PARAM_CALLBACK_IRQ, (CALLBACK_TYPE_SIP << 56) | cause)
        upcall.eoi_in_entry = False

    # Interrupt vectors ----------------------------------------------------------------------
    def set_vector(self, cause, fn, ack=0):
        """Route supervisor interrupt `cause` (1 SSI, 5 STI, 9 SEI) to fn(cause), run with
        SIE=0 on the interrupted stack, then `sret`; and enable it in sie. ack: sip bits
        the entry clears first (only SSIP is writable from S-mode)."""
        if not 0 < cause < _NCAUSES:
            raise ValueError("interrupt cause out of range")
        if ack & ~B.SIP_SSIP:
            raise ValueError("only sip.SSIP can be acknowledged from S-mode")
        old = self.handlers.get(cause)
        if old is None or old[2] != ack:
            pro, epi = _entry(ack)
            entry = self._emit_raw(pro + WFI + epi)  # ...; wfi (bridge); ...; sret
            self.hal.bridge(entry + len(pro), lambda: self.handlers[cause][1](cause))
            slot = self.table + 4 * cause
            self.hal.load_code(slot, jal(ZERO, entry - slot))  # j entry
        else:
            entry = old[0]
        self.handlers[cause] = (entry, fn, ack)
        self.sie_set(1 << cause)
        return entry

    # Interrupt enables and pending bits -----------------------------------------------------
    def read_sie(self):
        return self.hal.run(self._csr_stub("read_sie", csrrs(A0, B.CSR_SIE, ZERO)), (),  # csrr a0, sie
                            "a0")  # fmt: skip

    def read_sip(self):
        return self.hal.run(self._csr_stub("read_sip", csrrs(A0, B.CSR_SIP, ZERO)), (),  # csrr a0, sip
                            "a0")  # fmt: skip

    def sip_set(self, bits):
        """csrs sip, bits: only SSIP is writable from S-mode (a self-IPI)."""
        self.hal.run(self._csr_stub("sip_set", csrrs(ZERO, B.CSR_SIP, A0)),  # csrs sip, a0
                     (("a0", bits),), "a0")  # fmt: skip

    def sip_clear(self, bits):
        self.hal.run(self._csr_stub("sip_clear", csrrc(ZERO, B.CSR_SIP, A0)),  # csrc sip, a0
                     (("a0", bits),), "a0")  # fmt: skip

    def sie_set(self, bits):
        self.hal.run(self._csr_stub("sie_set", csrrs(ZERO, B.CSR_SIE, A0)),  # csrs sie, a0
                     (("a0", bits),), "a0")  # fmt: skip

    def sie_clear(self, bits):
        self.hal.run(self._csr_stub("sie_clear", csrrc(ZERO, B.CSR_SIE, A0)),  # csrc sie, a0
                     (("a0", bits),), "a0")  # fmt: skip

    def _csr_stub(self, name, body):
        stub = self._stubs.get(name)
        if stub is None:
            stub = self._stubs[name] = self._emit(body)
        return stub


def _signed(v):
    return v - (1 << 64) if v >> 63 else v
