# The runtime's pure parts: pvclock arithmetic and seqlock reads, the ucall record, the
# argument stack, signed hypercall results, shared_info layouts, CPUID discovery. Runs under
# pytest and MicroPython: plain functions, plain asserts, nothing CPython-only.
from _rt import rt

hal = rt("hal")
pvclock = rt("pvclock")
ucall = rt("ucall")
argstack = rt("argstack")
hypercall = rt("hypercall")
hypervisor = rt("hypervisor")
shared_info = rt("shared_info")
SI = rt("abi.shared_info")
V = rt("abi.vcpu")
X = rt("abi.xen")
C = rt("abi.cpuid")

U64 = 0xFFFFFFFFFFFFFFFF
T = 0x100  # where the test vcpu_time_info lives in a MemHAL


# pvclock.scale_delta ---------------------------------------------------------------------------


def test_scale_delta_shift_zero():
    assert pvclock.scale_delta(0, 0x80000000, 0) == 0
    assert pvclock.scale_delta(2000, 0x80000000, 0) == 1000  # 2 GHz TSC: ns = tsc / 2
    assert pvclock.scale_delta(2001, 0x80000000, 0) == 1000  # truncates
    assert pvclock.scale_delta(1 << 40, 0x80000000, 0) == 1 << 39
    assert pvclock.scale_delta(12345, 0xFFFFFFFF, 0) == (12345 * 0xFFFFFFFF) >> 32
    assert pvclock.scale_delta(7, 1 << 31, 0) == 3


def test_scale_delta_positive_shift():
    assert pvclock.scale_delta(1000, 0x80000000, 1) == 1000  # (1000 << 1) / 2
    assert pvclock.scale_delta(1000, 0x80000000, 3) == 4000
    assert pvclock.scale_delta(3, 0x40000000, 4) == 12  # 3 << 4 = 48, * 1/4
    assert pvclock.scale_delta(1 << 62, 0x80000000, 2) == 1 << 63  # no 64-bit overflow


def test_scale_delta_negative_shift_is_a_signed_byte():
    assert pvclock.scale_delta(1000, 0x80000000, 0xFF) == 250  # shift -1: (1000 >> 1) / 2
    assert pvclock.scale_delta(1001, 0x80000000, 0xFF) == 250
    assert pvclock.scale_delta(1000, 0x80000000, 0xFE) == 125  # shift -2
    assert pvclock.scale_delta(1 << 40, 0x80000000, 0x80) == 0  # shift -128
    assert pvclock.scale_delta(1 << 40, 0x80000000, 0x7F) == 1 << (40 + 127 - 1)  # +127


# pvclock.system_time over a scripted vcpu_time_info -----------------------------------------------


def _time_record(h, version, tsc_timestamp, system_time, mul=0x80000000, shift=0, at=T):
    h.w32(at + V.TIME_INFO_version, version)
    h.w64(at + V.TIME_INFO_tsc_timestamp, tsc_timestamp)
    h.w64(at + V.TIME_INFO_system_time, system_time)
    h.w32(at + V.TIME_INFO_tsc_to_system_mul, mul)
    h.w8(at + V.TIME_INFO_tsc_shift, shift)
    h.w8(at + V.TIME_INFO_flags, V.XEN_PVCLOCK_TSC_STABLE_BIT)


class ScriptedVersionHAL(hal.MemHAL):
    """A MemHAL whose reads of one 32-bit word (a seqlock version) follow a script; every
    read is counted."""

    def __init__(self, addr, versions, size=4096):
        hal.MemHAL.__init__(self, size=size)
        self.version_addr = addr
        self.versions = list(versions)
        self.version_reads = 0

    def r32(self, addr):
        if addr == self.version_addr:
            self.version_reads += 1
            if self.versions:
                return self.versions.pop(0)
        return hal.MemHAL.r32(self, addr)


def test_system_time_plain():
    h = hal.MemHAL(size=4096)
    _time_record(h, 2, 1000, 5000)
    tscs = []

    def rdtsc():
        tscs.append(3000)
        return 3000

    assert pvclock.system_time(h, T, rdtsc) == 5000 + 1000
    assert tscs == [3000]


def test_system_time_with_shift_and_mul():
    h = hal.MemHAL(size=4096)
    _time_record(h, 8, 10, 100, mul=0xC0000000, shift=0xFF)  # * 3/4, >> 1
    assert pvclock.system_time(h, T, lambda: 810) == 100 + ((800 >> 1) * 3 >> 2)
    _time_record(h, 8, 10, 100, mul=0x40000000, shift=2)  # * 1/4, << 2
    assert pvclock.system_time(h, T, lambda: 810) == 100 + 800


def test_system_time_tsc_before_timestamp_wraps_as_u64():
    h = hal.MemHAL(size=4096)
    _time_record(h, 2, 1000, 5000)
    # A TSC behind the record's stamp is a huge unsigned delta, as in Linux's pvclock.
    got = pvclock.system_time(h, T, lambda: 998)
    assert got == 5000 + (((998 - 1000) & U64) * 0x80000000 >> 32)


def test_system_time_retries_while_version_is_odd():
    h = ScriptedVersionHAL(T + V.TIME_INFO_version, [3, 3, 4, 4])
    _time_record(h, 4, 1000, 5000)
    calls = []

    def rdtsc():
        calls.append(1)
        return 1200

    assert pvclock.system_time(h, T, rdtsc) == 5100
    assert h.version_reads == 4  # odd, odd, then a good read bracketed by 4 and 4
    assert len(calls) == 1  # the odd reads never got as far as the TSC


def test_system_time_retries_when_version_changes():
    h = hal.MemHAL(size=4096)
    _time_record(h, 4, 1000, 5000)
    tscs = [2000, 4000]

    def rdtsc():
        tsc = tscs.pop(0)
        if tsc == 2000:  # Xen updates the record between the guest's two version reads
            _time_record(h, 6, 3000, 8000)
        return tsc

    # First pass read version 4 and the old fields, then saw 6: retried with the new record.
    assert pvclock.system_time(h, T, rdtsc) == 8000 + 500
    assert tscs == []


def test_system_time_scripted_version_change():
    h = ScriptedVersionHAL(T + V.TIME_INFO_version, [4, 6, 6, 6])
    _time_record(h, 6, 0, 100)
    n = []

    def rdtsc():
        n.append(1)
        return 20

    assert pvclock.system_time(h, T, rdtsc) == 110
    assert h.version_reads == 4
    assert len(n) == 2


# pvclock.wallclock_base ---------------------------------------------------------------------------


def _wallclock(h, si, version, sec, nsec, sec_hi=0):
    lay = si.layout
    h.w32(si.gpa + lay.wc_version, version)
    h.w32(si.gpa + lay.wc_sec, sec)
    h.w32(si.gpa + lay.wc_nsec, nsec)
    h.w32(si.gpa + lay.wc_sec_hi, sec_hi)


def test_wallclock_base():
    h = hal.MemHAL(size=0x2000)
    si = shared_info.SharedInfo(h, SI.X86_64, 1)
    _wallclock(h, si, 2, 1767225600, 123)
    assert pvclock.wallclock_base(h, si) == 1767225600 * 1000000000 + 123
    _wallclock(h, si, 4, 5, 7, sec_hi=1)
    assert pvclock.wallclock_base(h, si) == ((1 << 32) + 5) * 1000000000 + 7


def test_wallclock_base_retries_odd_version():
    h = ScriptedVersionHAL(0x1000 + SI.X86_64.wc_version, [1, 2, 2], size=0x2000)
    si = shared_info.SharedInfo(h, SI.X86_64, 1)
    _wallclock(h, si, 2, 10, 20)
    assert pvclock.wallclock_base(h, si) == 10 * 1000000000 + 20
    assert h.version_reads == 3


def test_wallclock_base_arm_layout():
    h = hal.MemHAL(size=0x2000)
    si = shared_info.SharedInfo(h, SI.ARM, 1)
    _wallclock(h, si, 2, 3, 4)
    assert h.r32(0x1000 + 0x434) == 3  # wc_sec on arm64/riscv64
    assert pvclock.wallclock_base(h, si) == 3 * 1000000000 + 4


# ucall records -------------------------------------------------------------------------------------


def _le(b, off, n):
    v = 0
    for i in range(n - 1, -1, -1):
        v = (v << 8) | b[off + i]
    return v


def test_ucall_encode_layout():
    rec = ucall.encode(ucall.UCALL_SYNC, "guest.py", 42, 7, U64, "hi")
    assert ucall.UCALL_HEADER == 28
    assert len(rec) == 28 + 8 + 2
    assert _le(rec, 0, 4) == 1  # cmd
    assert _le(rec, 4, 4) == 42  # line
    assert _le(rec, 8, 8) == 7  # a
    assert _le(rec, 16, 8) == U64  # b
    assert _le(rec, 24, 2) == 8  # file length
    assert _le(rec, 26, 2) == 2  # message length
    assert rec[28:36] == b"guest.py"
    assert rec[36:] == b"hi"


def test_ucall_encode_truncates_and_wraps():
    rec = ucall.encode(ucall.UCALL_ABORT, "d/" * 150, -1, -1, 1 << 64, "m" * 600)
    flen, mlen = _le(rec, 24, 2), _le(rec, 26, 2)
    assert flen == 200  # the file name keeps its last 200 bytes
    assert mlen == ucall.UCALL_MAX_TEXT == 512
    assert len(rec) == 28 + 200 + 512
    assert rec[28 : 28 + 200] == b"d/" * 100
    assert _le(rec, 4, 4) == 0xFFFFFFFF  # line, masked to u32
    assert _le(rec, 8, 8) == U64  # a = -1 as u64
    assert _le(rec, 16, 8) == 0  # b = 2**64 wraps to 0


def test_ucall_encode_utf8():
    rec = ucall.encode(ucall.UCALL_DONE, "", 0, 0, 0, "é")
    assert _le(rec, 0, 4) == ucall.UCALL_DONE == 3
    assert _le(rec, 24, 2) == 0
    assert _le(rec, 26, 2) == 2
    assert rec[28:] == b"\xc3\xa9"


def test_ucall_commands():
    assert (ucall.UCALL_SYNC, ucall.UCALL_ABORT, ucall.UCALL_DONE, ucall.UCALL_EXIT) == (
        1,
        2,
        3,
        4,
    )


# The argument stack --------------------------------------------------------------------------------


def test_argstack_lifo_and_alignment():
    s = argstack.ArgStack(0x1000, 0x100)
    a = s.alloc(24)
    b = s.alloc(3)
    c = s.alloc(8)
    assert (a, b, c) == (0x1000, 0x1018, 0x1020)  # each frame rounded up to 8 bytes
    assert s.top == 0x1028
    s.free(c)
    assert s.top == c
    s.free(b)
    s.free(a)
    assert s.top == 0x1000
    assert s.alloc(1) == 0x1000  # reused


def test_argstack_zero_size_alloc():
    s = argstack.ArgStack(0x1000, 0x100)
    a = s.alloc(0)
    b = s.alloc(0)
    assert a == b == 0x1000
    s.free(b)
    s.free(a)
    assert s.top == 0x1000


def test_argstack_exhaustion():
    s = argstack.ArgStack(0x1000, 0x40)
    assert s.alloc(0x38) == 0x1000
    assert s.alloc(8) == 0x1038  # exactly full
    try:
        s.alloc(1)
    except MemoryError:
        pass
    else:
        assert False, "alloc past the limit must raise MemoryError"
    assert s.top == 0x1040  # the failed alloc changed nothing
    s = argstack.ArgStack(0x1000, 0x40)
    try:
        s.alloc(0x41)
    except MemoryError:
        pass
    else:
        assert False, "one oversized alloc must raise MemoryError"
    assert s.top == 0x1000


def test_argstack_free_out_of_order():
    s = argstack.ArgStack(0x1000, 0x100)
    a = s.alloc(8)
    b = s.alloc(8)
    s.free(a)  # frees both frames: a is an older frame, b goes with it
    assert s.top == a
    for bad in (b, 0x1000 - 8, 0x2000):
        try:
            s.free(bad)
        except ValueError:
            pass
        else:
            assert False, "free(%#x) above the top or below the base must raise" % bad
    assert s.top == a


# Hypercall results ----------------------------------------------------------------------------------


def test_signed():
    assert hypercall.signed(0) == 0
    assert hypercall.signed(1) == 1
    assert hypercall.signed(0x40013) == 0x40013
    assert hypercall.signed((1 << 63) - 1) == (1 << 63) - 1
    assert hypercall.signed(1 << 63) == -(1 << 63)
    assert hypercall.signed(U64) == -1
    assert hypercall.signed(U64 - 37) == -38
    assert hypercall.signed((-14) & U64) == -14


class FakeArch:
    """Records hypercalls and answers from a table of raw 64-bit rax values."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def hypercall(self, nr, args):
        self.calls.append((nr, tuple(args)))
        return self.answers.get(nr, (-X.ENOSYS) & U64)


def test_hypercalls_wrappers_pass_numbers_and_args():
    arch = FakeArch({17: 0x40013, 12: (-X.EFAULT) & U64})
    hc = hypercall.Hypercalls(arch)
    assert hc.xen_version(0) == 0x40013
    assert hc.memory_op(7, 0x1234) == -X.EFAULT
    assert hc.console_io(0, 5, 0x2000) == -X.ENOSYS
    assert hc.sched_op(2, 0x3000) == -X.ENOSYS
    assert hc.raw(60, 1, 2, 3, 4, 5) == -X.ENOSYS
    assert arch.calls == [
        (17, (0, 0)),
        (12, (7, 0x1234)),
        (18, (0, 5, 0x2000)),
        (29, (2, 0x3000)),
        (60, (1, 2, 3, 4, 5)),
    ]
    assert hc.counts == 5


def test_hypercall_check_and_errors():
    hc = hypercall.Hypercalls(FakeArch({}))
    assert hc.check("ok", 0) == 0
    assert hc.check("ok", 7) == 7
    try:
        hc.check("XENMEM_add_to_physmap", -X.EINVAL)
    except hypercall.HypercallError as e:
        assert e.errno == X.EINVAL
        assert "XENMEM_add_to_physmap" in str(e)
        assert "EINVAL" in str(e)
    else:
        assert False, "a negative result must raise HypercallError"
    assert hypercall.errno_name(X.ENOSYS) == "ENOSYS"
    assert hypercall.errno_name(X.EPERM) == "EPERM"
    assert hypercall.errno_name(999) == "errno 999"


# shared_info layouts -----------------------------------------------------------------------------


def _raises_value_error(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def test_layout_x86_64():
    L = SI.X86_64
    assert L.vcpu_info(0) == 0
    assert L.vcpu_info(1) == 64
    assert L.vcpu_info(31) == 31 * 64
    assert _raises_value_error(L.vcpu_info, 32)
    assert _raises_value_error(L.vcpu_info, -1)
    assert L.time == 32
    assert L.pending_sel == 8
    assert L.upcall_pending == 0
    assert L.has_upcall_mask and L.upcall_mask == 1
    assert (L.evtchn_pending, L.evtchn_mask) == (0x800, 0xA00)
    assert (L.wc_version, L.wc_sec, L.wc_nsec, L.wc_sec_hi) == (0xC00, 0xC04, 0xC08, 0xC0C)
    assert (L.arch, L.size) == (0xC10, 0xC40)
    assert L.legacy_max_vcpus * L.vcpu_info_size == L.evtchn_pending


def test_layout_arm():
    L = SI.ARM
    assert L.vcpu_info(0) == 0
    assert _raises_value_error(L.vcpu_info, 1)
    assert L.vcpu_info_size == 48
    assert L.time == 16
    assert not L.has_upcall_mask and L.upcall_mask is None
    assert (L.evtchn_pending, L.evtchn_mask) == (0x30, 0x230)
    assert (L.wc_version, L.wc_sec, L.wc_nsec, L.wc_sec_hi) == (0x430, 0x434, 0x438, 0x43C)
    assert (L.arch, L.size) == (0x440, 0x440)
    assert SI.ARCH_LAYOUTS["riscv64"] is L
    assert SI.ARCH_LAYOUTS["aarch64"] is L
    assert SI.ARCH_LAYOUTS["x86_64"] is SI.X86_64


def test_shared_info_addresses():
    h = hal.MemHAL(size=16)
    si = shared_info.SharedInfo(h, SI.X86_64, 0x140)
    assert si.gpa == 0x140000
    assert si.vcpu_info(0) == 0x140000
    assert si.vcpu_info(1) == 0x140040
    assert si.time(0) == 0x140020
    assert si.time(1) == 0x140060
    assert si.pending_word(0) == 0x140800
    assert si.pending_word(63) == 0x140800 + 63 * 8
    assert si.mask_word(1) == 0x140A08
    si = shared_info.SharedInfo(h, SI.ARM, 2)
    assert si.time(0) == 0x2010
    assert si.mask_word(0) == 0x2230


def test_time_info_offsets():
    assert V.TIME_INFO_SIZE == 32
    assert (V.TIME_INFO_version, V.TIME_INFO_tsc_timestamp, V.TIME_INFO_system_time) == (0, 8, 16)
    assert (V.TIME_INFO_tsc_to_system_mul, V.TIME_INFO_tsc_shift, V.TIME_INFO_flags) == (
        24,
        28,
        29,
    )


# CPUID discovery ---------------------------------------------------------------------------------


class CpuidArch:
    """Answers CPUID from a dict; records wrmsr."""

    def __init__(self, leaves):
        self.leaves = leaves
        self.asked = []
        self.msrs = []
        self.hypercall_page = None

    def cpuid(self, leaf, subleaf=0):
        self.asked.append(leaf)
        return self.leaves.get(leaf, (0, 0, 0, 0))

    def wrmsr(self, msr, value):
        self.msrs.append((msr, value))


SIG = (C.XEN_CPUID_SIGNATURE_EBX, C.XEN_CPUID_SIGNATURE_ECX, C.XEN_CPUID_SIGNATURE_EDX)


def test_find_cpuid_base_first_leaf():
    arch = CpuidArch({0x40000000: (0x40000005,) + SIG})
    assert hypervisor.find_cpuid_base(arch) == 0x40000000
    assert arch.asked == [0x40000000]


def test_find_cpuid_base_steps_by_0x100():
    # Viridian at 0x40000000 (Hyper-V signature), Xen at 0x40000100.
    arch = CpuidArch({0x40000000: (0x40000006, 0x7263694D, 0x666F736F, 0x76482074),
                      0x40000100: (0x40000105,) + SIG})  # fmt: skip
    assert hypervisor.find_cpuid_base(arch) == 0x40000100
    assert arch.asked == [0x40000000, 0x40000100]


def test_find_cpuid_base_needs_leaves_up_to_base_plus_2():
    arch = CpuidArch({0x40000000: (0x40000001,) + SIG, 0x40000200: (0x40000202,) + SIG})
    assert hypervisor.find_cpuid_base(arch) == 0x40000200


def test_find_cpuid_base_absent():
    arch = CpuidArch({})
    assert hypervisor.find_cpuid_base(arch) is None
    assert arch.asked[0] == 0x40000000
    assert arch.asked[-1] == 0x4000FF00
    assert len(arch.asked) == 0x100


def test_install_hypercall_page():
    arch = CpuidArch({0x40000102: (1, 0x40000200, 0, 0)})
    assert hypervisor.install_hypercall_page(arch, 0x40000100, 0x113000) == 0x40000200
    assert arch.msrs == [(0x40000200, 0x113000)]
    assert arch.hypercall_page == 0x113000


def test_install_hypercall_page_refused():
    arch = CpuidArch({0x40000002: (0, 0x40000000, 0, 0)})
    try:
        hypervisor.install_hypercall_page(arch, 0x40000000, 0x113000)
    except RuntimeError:
        pass
    else:
        assert False, "no hypercall pages offered must raise"
    assert arch.msrs == []
    assert arch.hypercall_page is None
