# The riscv64 arch layer without a CPU: its instruction encoders against encodings GNU/LLVM
# assemblers produce, the stubs it writes, and what it asks the machine to run for boot, Xen
# discovery, hypercalls, SBI calls and interrupt vectors (a MemHAL with a scripted run).
# Runs under pytest and MicroPython: plain functions, plain asserts, nothing CPython-only.
from _rt import rt

hal_mod = rt("hal")
A = rt("arch.riscv64")
B = rt("abi.sbi")

LAYOUT = {"code": 0x1000, "code_size": 0x4000, "stack_top": 0x8000, "scratch": 0x9000,
          "shared_info_gfn": 0xA, "ram_size": 0x10000}  # fmt: skip


def word(b):
    return int.from_bytes(b, "little")


def words(b):
    return [word(b[i : i + 4]) for i in range(0, len(b), 4)]


# Encoders: each expected value is what `llvm-mc -triple=riscv64 -show-encoding` gives. -----------
def test_fixed_instructions():
    assert word(A.WFI) == 0x10500073
    assert word(A.SRET) == 0x10200073
    assert word(A.ECALL) == 0x00000073
    assert word(A.EBREAK) == 0x00100073
    assert word(A.RET) == 0x00008067


def test_csr_instructions():
    assert word(A.csrrci(A.ZERO, B.CSR_SSTATUS, 2)) == 0x10017073  # csrci sstatus, 2
    assert word(A.csrrsi(A.ZERO, B.CSR_SSTATUS, 2)) == 0x10016073  # csrsi sstatus, 2
    assert word(A.csrrci(A.A0, B.CSR_SSTATUS, 2)) == 0x10017573  # csrrci a0, sstatus, 2
    assert word(A.csrrs(A.A0, B.CSR_TIME, A.ZERO)) == 0xC0102573  # rdtime a0
    assert word(A.csrrs(A.A0, B.CSR_SIP, A.ZERO)) == 0x14402573  # csrr a0, sip
    assert word(A.csrrs(A.ZERO, B.CSR_SIP, A.A0)) == 0x14452073  # csrs sip, a0
    assert word(A.csrrci(A.ZERO, B.CSR_SIP, 2)) == 0x14417073  # csrci sip, 2
    assert word(A.csrrs(A.ZERO, B.CSR_SIE, A.A0)) == 0x10452073  # csrs sie, a0
    assert word(A.csrrc(A.ZERO, B.CSR_SIE, A.A0)) == 0x10453073  # csrc sie, a0
    assert word(A.csrrw(A.ZERO, B.CSR_STVEC, A.A0)) == 0x10551073  # csrw stvec, a0
    assert word(A.csrrw(A.ZERO, B.CSR_SEPC, A.A0)) == 0x14151073  # csrw sepc, a0


def test_integer_instructions():
    assert word(A.addi(A.SP, A.SP, -0x60)) == 0xFA010113  # addi sp, sp, -96
    assert word(A.addi(A.A6, A.ZERO, -1)) == 0xFFF00813  # li a6, -1
    assert word(A.andi(A.A0, A.A0, 2)) == 0x00257513  # andi a0, a0, 2
    assert word(A.lui(A.SP, 0x140)) == 0x00140137  # lui sp, 0x140
    assert word(A.lui(A.A0, 0x80000)) == 0x80000537  # lui a0, 0x80000
    assert word(A.addiw(A.A0, A.A0, -1)) == 0xFFF5051B  # addiw a0, a0, -1
    assert word(A.sd(A.RA, A.SP, 0)) == 0x00113023  # sd ra, 0(sp)
    assert word(A.sd(A.A0, A.SP, 8)) == 0x00A13423  # sd a0, 8(sp)
    assert word(A.ld(A.RA, A.SP, 0)) == 0x00013083  # ld ra, 0(sp)
    assert word(A.ld(A.A0, A.SP, 0x50)) == 0x05013503  # ld a0, 0x50(sp)


def test_jal():
    assert word(A.jal(A.ZERO, 0x12C)) == 0x12C0006F  # j +0x12c
    assert word(A.jal(A.ZERO, -0x84)) == 0xF7DFF06F  # j -0x84
    assert word(A.jal(A.ZERO, 0xFFFFE)) == 0x7FFFF06F  # j +1 MiB - 2
    assert word(A.jal(A.ZERO, -0x100000)) == 0x8000006F  # j -1 MiB
    assert word(A.jal(A.RA, 8)) == 0x008000EF  # jal ra, 8
    for bad in (1, 0x100000, -0x100002):
        try:
            A.jal(A.ZERO, bad)
        except ValueError:
            continue
        raise AssertionError("jal accepted offset %d" % bad)


def test_li32():
    assert words(A.li32(A.A6, 0x11)) == [0x01100813]  # addi a6, zero, 0x11
    assert words(A.li32(A.SP, 0x140000)) == [0x00140137]  # lui sp, 0x140
    assert words(A.li32(A.A7, B.SBI_EXT_XEN)) == [0x0A5848B7, 0x54E8889B]  # lui; addiw 0x54e
    assert words(A.li32(A.A7, B.SBI_EXT_MICROPV)) == [0x084D58B7, 0x0568889B]
    assert words(A.li32(A.A0, 0x7FFFFFFF)) == [0x80000537, 0xFFF5051B]  # lui 0x80000; addiw -1


# The arch over a scripted machine ------------------------------------------------------------
class Script:
    """A MemHAL whose `run` records each call and answers from `answers` (a function of
    (pc, regs, out)), after checking that the code at pc ends in `j return_point`."""

    def __init__(self, answers=None):
        self.hal = hal_mod.MemHAL(size=0x10000, arch="riscv64", run=self.run, layout=LAYOUT)
        self.calls = []
        self.answers = answers

    def run(self, pc, regs, out):
        self.calls.append((pc, dict(regs), out))
        if self.answers is not None:
            return self.answers(pc, dict(regs), out)
        return (0, 0) if isinstance(out, tuple) else 0


def sbi_answers(probe_xen=1, version=0x02000000):
    def answer(pc, regs, out):
        if regs.get("a7") == B.SBI_EXT_BASE and regs.get("a6") == B.SBI_BASE_GET_SPEC_VERSION:
            return (0, version)
        if regs.get("a7") == B.SBI_EXT_BASE and regs.get("a6") == B.SBI_BASE_PROBE_EXT:
            return (0, probe_xen if regs.get("a0") == B.SBI_EXT_XEN else 0)
        return (0, 0) if isinstance(out, tuple) else 0

    return answer


def code_at(s, addr, n):
    return words(s.hal.read(addr, 4 * n))


def jump_target(addr, w):
    """Where the jal at addr with encoding w goes (rd = zero)."""
    off = ((w >> 31) & 1) << 20 | ((w >> 12) & 0xFF) << 12 | ((w >> 20) & 1) << 11
    off |= ((w >> 21) & 0x3FF) << 1
    if off & (1 << 20):
        off -= 1 << 21
    return addr + off


def test_boot_sets_return_point_stack_and_vectored_stvec():
    s = Script()
    arch = A.Arch(s.hal)
    assert s.hal.return_point == arch.return_point == LAYOUT["code"]
    assert code_at(s, arch.return_point, 1) == [0x10500073]  # the parking wfi
    assert arch.table % 64 == 0
    assert code_at(s, arch.table, 16) == [0x00100073] * 16  # every slot an ebreak
    (pc, regs, out), = s.calls  # the boot stub, the only thing run so far
    boot = code_at(s, pc, 7)
    assert boot[0] == 0x00008137  # lui sp, 0x8 (stack_top)
    assert boot[3] == 0x10551073  # csrw stvec, a0
    assert boot[4] == 0x10401073  # csrw sie, zero
    assert boot[5] == 0x10017073  # csrci sstatus, SIE
    assert jump_target(pc + 24, boot[6]) == arch.return_point


def test_every_stub_jumps_back_to_the_return_point():
    s = Script()
    arch = A.Arch(s.hal)
    for name, addr in arch._stubs.items():
        ws = code_at(s, addr, 8)
        for i in range(len(ws)):
            if ws[i] & 0xFFF == 0x06F:  # jal zero, ...
                assert jump_target(addr + 4 * i, ws[i]) == arch.return_point, name
                break
        else:
            raise AssertionError("stub %s has no jump back" % name)


def test_safe_halt_is_wfi_then_enable():
    """Check-then-block: the caller checked with SIE=0; wfi comes first (an interrupt that
    arrived after the check still wakes it), SIE is set only afterwards."""
    s = Script()
    arch = A.Arch(s.hal)
    ws = code_at(s, arch._stubs["safe_halt"], 2)
    assert ws == [0x10500073, 0x10016073]  # wfi; csrsi sstatus, SIE
    n = len(s.calls)
    arch.safe_halt()
    assert s.calls[n][0] == arch._stubs["safe_halt"] and s.calls[n][1] == {}


def test_find_xen_probes_the_extension():
    class RT:
        pass

    s = Script(sbi_answers())
    arch = A.Arch(s.hal)
    r = RT()
    assert arch.find_xen(r) == "SBI extension 0xa58454e"
    assert r.sbi_version == (2, 0)
    (pc, regs, out) = s.calls[-1]
    assert regs == {"a7": B.SBI_EXT_BASE, "a6": B.SBI_BASE_PROBE_EXT, "a0": B.SBI_EXT_XEN}
    assert out == ("a0", "a1") and pc == arch._stubs["sbi"]
    for answers in (sbi_answers(probe_xen=0), sbi_answers(version=0x00000001)):
        arch = A.Arch(Script(answers).hal)
        try:
            arch.find_xen(RT())
        except RuntimeError:
            continue
        raise AssertionError("found Xen where there is none")


def test_hypercall_stub_per_number():
    s = Script(lambda pc, regs, out: (1 << 64) - 22)
    arch = A.Arch(s.hal)
    assert arch.hypercall(32, (1, 0x9000)) == (1 << 64) - 22  # raw a0
    pc, regs, out = s.calls[-1]
    assert regs == {"a0": 1, "a1": 0x9000} and out == "a0"
    ws = code_at(s, pc, 5)
    assert ws[:4] == [0x0A5848B7, 0x54E8889B, 0x02000813, 0x00000073]  # li a7; li a6, 32; ecall
    assert jump_target(pc + 16, ws[4]) == arch.return_point
    arch.hypercall(32, ())
    assert s.calls[-1][0] == pc  # written once, reused


def test_sbi_call_signs_the_results():
    s = Script(lambda pc, regs, out: ((1 << 64) - 3, 5))
    arch = A.Arch(s.hal)
    assert arch.sbi_call(B.SBI_EXT_IPI, 0, (1, 0)) == (-3, 5)
    assert s.calls[-1][1] == {"a7": B.SBI_EXT_IPI, "a6": 0, "a0": 1, "a1": 0}


def test_set_vector_routes_the_cause_and_enables_it():
    s = Script()
    arch = A.Arch(s.hal)
    got = []
    entry = arch.set_vector(B.IRQ_S_SOFT, got.append, ack=B.SIP_SSIP)
    slot = arch.table + 4 * B.IRQ_S_SOFT
    assert jump_target(slot, code_at(s, slot, 1)[0]) == entry
    assert code_at(s, arch.table + 4 * B.IRQ_S_EXT, 1) == [0x00100073]  # others untouched
    # The entry: frame, save ra and a0..a7, sepc, sstatus, clear SSIP, then the bridge wfi.
    ws = code_at(s, entry, 16)
    assert ws[0] == 0xFA010113  # addi sp, sp, -96
    assert ws[12] == 0x10002573  # csrr a0, sstatus
    assert ws[14] == 0x14417073  # csrci sip, SSIP
    assert ws[15] == 0x10500073  # wfi: the bridge
    assert list(s.hal.bridges) == [entry + 4 * 15]
    s.hal.bridges[entry + 4 * 15]()
    assert got == [B.IRQ_S_SOFT]
    pc, regs, out = s.calls[-1]  # and the source is enabled in sie
    assert regs == {"a0": B.SIE_SSIE} and code_at(s, pc, 1) == [0x10452073]  # csrs sie, a0
    # The external interrupt needs no acknowledgement in the entry.
    entry9 = arch.set_vector(B.IRQ_S_EXT, got.append)
    assert 0x14417073 not in code_at(s, entry9, 16)
    assert code_at(s, entry9, 15)[14] == 0x10500073  # wfi right after saving sstatus


def test_setup_upcall_names_the_interrupt_in_the_callback_param():
    class Up:
        def __init__(self, method):
            self.method = method
            self.params = []

        def set_param(self, index, value):
            self.params.append((index, value))

        def entry(self, cause):
            pass

    for method, cause in (("seip", 9), ("ssip", 1)):
        arch = A.Arch(Script().hal)
        up = Up(method)
        arch.setup_upcall(up)
        assert up.params == [(0, (2 << 56) | cause)]
        assert cause in arch.handlers
        assert arch.handlers[cause][2] == (B.SIP_SSIP if method == "ssip" else 0)
    assert A.Arch.callbacks == ("seip", "ssip")
