# MemHAL, the CPU-less HAL the runtime's unit tests run on. Runs under pytest and MicroPython:
# plain functions, plain asserts, nothing CPython-only.
from _rt import rt

hal = rt("hal")


def _hal(**kw):
    return hal.MemHAL(size=4096, **kw)


def test_defaults():
    h = hal.MemHAL(size=256)
    assert h.arch == "x86_64"
    assert len(h.mem) == 256
    assert h.layout == {"ram_size": 256}
    h = hal.MemHAL(size=256, arch="riscv64", layout={"code": 0x100})
    assert h.arch == "riscv64"
    assert h.layout == {"code": 0x100}


def test_widths_are_little_endian():
    h = _hal()
    h.w8(0x10, 0x12)
    h.w16(0x20, 0x1234)
    h.w32(0x30, 0x12345678)
    h.w64(0x40, 0x0123456789ABCDEF)
    assert h.read(0x10, 1) == b"\x12"
    assert h.read(0x20, 2) == b"\x34\x12"
    assert h.read(0x30, 4) == b"\x78\x56\x34\x12"
    assert h.read(0x40, 8) == b"\xef\xcd\xab\x89\x67\x45\x23\x01"
    assert h.r8(0x10) == 0x12
    assert h.r16(0x20) == 0x1234
    assert h.r32(0x30) == 0x12345678
    assert h.r64(0x40) == 0x0123456789ABCDEF


def test_reads_assemble_little_endian():
    h = _hal()
    h.write(0x100, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    assert h.r8(0x100) == 0x01
    assert h.r16(0x100) == 0x0201
    assert h.r32(0x100) == 0x04030201
    assert h.r64(0x100) == 0x0807060504030201


def test_writes_touch_only_their_width():
    for width, w, r in ((1, "w8", "r8"), (2, "w16", "r16"), (4, "w32", "r32"), (8, "w64", "r64")):
        h = _hal()
        h.write(0x200, b"\xaa" * 16)
        getattr(h, w)(0x204, 0)
        assert getattr(h, r)(0x204) == 0
        assert h.read(0x200, 4) == b"\xaa" * 4
        assert h.read(0x204 + width, 12 - width) == b"\xaa" * (12 - width)


def test_write_truncates_to_width():
    h = _hal()
    h.write(0x300, b"\x55" * 16)
    h.w8(0x300, 0x1FF)
    h.w16(0x302, 0x1FFFF)
    h.w32(0x304, 0x1FFFFFFFF)
    assert h.r8(0x300) == 0xFF
    assert h.r16(0x302) == 0xFFFF
    assert h.r32(0x304) == 0xFFFFFFFF
    assert h.r8(0x301) == 0x55
    assert h.read(0x308, 8) == b"\x55" * 8


def test_all_ones_64():
    h = _hal()
    h.w64(0x400, 0xFFFFFFFFFFFFFFFF)
    assert h.r64(0x400) == 0xFFFFFFFFFFFFFFFF
    assert h.read(0x400, 8) == b"\xff" * 8


def test_read_write_bytes():
    h = _hal()
    data = b"micropv\x00\xff\x01"
    h.write(0x500, data)
    got = h.read(0x500, len(data))
    assert got == data
    assert isinstance(got, bytes)
    assert h.read(0x500 + len(data), 4) == b"\x00" * 4
    h.write(0x500, bytearray(b"MI"))
    assert h.read(0x500, 3) == b"MIc"
    assert h.read(0x500, 0) == b""


def test_read_returns_a_copy():
    h = _hal()
    h.write(0x600, b"abcd")
    got = h.read(0x600, 4)
    h.write(0x600, b"wxyz")
    assert got == b"abcd"


def test_xchg64_returns_old_value():
    h = _hal()
    h.w64(0x700, 0x1122334455667788)
    assert h.xchg64(0x700, 0xFFFFFFFFFFFFFFFF) == 0x1122334455667788
    assert h.r64(0x700) == 0xFFFFFFFFFFFFFFFF
    assert h.xchg64(0x700, 0) == 0xFFFFFFFFFFFFFFFF
    assert h.r64(0x700) == 0
    assert h.xchg64(0x700, 5) == 0


def test_test_and_set_bit():
    for bit in (0, 1, 7, 8, 31, 32, 62, 63):
        h = _hal()
        h.w64(0x800, 0)
        assert h.test_and_set_bit(0x800, bit) == 0
        assert h.r64(0x800) == 1 << bit
        assert h.test_and_set_bit(0x800, bit) == 1
        assert h.r64(0x800) == 1 << bit


def test_test_and_set_bit_changes_only_that_bit():
    ones = 0xFFFFFFFFFFFFFFFF
    for bit in (0, 5, 33, 63):
        h = _hal()
        h.write(0x8F8, b"\x77" * 24)
        h.w64(0x900, ones ^ (1 << bit))
        assert h.test_and_set_bit(0x900, bit) == 0
        assert h.r64(0x900) == ones
        assert h.read(0x8F8, 8) == b"\x77" * 8
        assert h.read(0x908, 8) == b"\x77" * 8


def test_test_and_clear_bit():
    ones = 0xFFFFFFFFFFFFFFFF
    for bit in (0, 1, 7, 8, 31, 32, 62, 63):
        h = _hal()
        h.write(0xAF8, b"\x77" * 24)
        h.w64(0xB00, ones)
        assert h.test_and_clear_bit(0xB00, bit) == 1
        assert h.r64(0xB00) == ones ^ (1 << bit)
        assert h.test_and_clear_bit(0xB00, bit) == 0
        assert h.r64(0xB00) == ones ^ (1 << bit)
        assert h.read(0xAF8, 8) == b"\x77" * 8
        assert h.read(0xB08, 8) == b"\x77" * 8


def test_bit_63_is_the_top_of_the_last_byte():
    h = _hal()
    h.test_and_set_bit(0xC00, 63)
    assert h.read(0xC00, 8) == b"\x00" * 7 + b"\x80"
    assert h.r64(0xC00) == 0x8000000000000000
    assert h.test_and_clear_bit(0xC00, 63) == 1
    assert h.read(0xC00, 8) == b"\x00" * 8


def test_load_code_records_range():
    h = _hal()
    assert h.code == []
    h.load_code(0xF00, b"\xf4")
    h.load_code(0xF10, b"\x0f\x01\xc1\xf4")
    assert h.code == [(0xF00, 1), (0xF10, 4)]
    assert h.read(0xF00, 1) == b"\xf4"
    assert h.read(0xF10, 4) == b"\x0f\x01\xc1\xf4"


def test_run_without_cpu_raises():
    h = _hal()
    try:
        h.run(0x1000)
    except NotImplementedError:
        pass
    else:
        assert False, "run() without run= must raise NotImplementedError"


def test_run_passes_pc_regs_out_through():
    calls = []

    def cpu(pc, regs, out):
        calls.append((pc, regs, out))
        return 42

    h = _hal(run=cpu)
    regs = (("rdi", 1), ("rsi", 2))
    assert h.run(0x1000, regs, "rbx") == 42
    assert h.run(0x2000) == 42
    assert calls == [(0x1000, regs, "rbx"), (0x2000, (), "rax")]


def test_run_returns_tuple_for_tuple_out():
    h = _hal(run=lambda pc, regs, out: tuple(len(n) for n in out))
    assert h.run(0, (), ("a0", "a1x")) == (2, 3)


def test_return_point_and_bridge():
    h = _hal()
    assert h.return_point is None
    h.set_return_point(0x1FF0)
    assert h.return_point == 0x1FF0

    def fn():
        return None

    h.bridge(0x1FE0, fn)
    assert h.bridges == {0x1FE0: fn}
