# `micropv bench`: round-trip throughput of Python guests on pvh-x86_64, with the cost of an
# empty guest->Python->guest hook measured in the same run as the floor to compare against.
# Wall-clock figures: this is the one place micropv reads the wall clock, and nothing in a
# run's behaviour depends on it.
import json
import sys
import time

from micropv import boards

from . import bench_riscv
from .emu.irq import host_irq
from .machine import Machine

BOARD = "pvh-x86_64"
RISCV = "sbi-riscv64"
REPEATS = 3


def _row(metric, value, unit, callback="none", board=BOARD):
    return {"metric": metric, "board": board, "callback": callback,
            "value": round(value, 3), "unit": unit}  # fmt: skip


def null_hypercalls(n):
    """XENVER_version through the hypercall page, n times."""
    out = {}

    def main(rt):
        hc = rt.hc
        t0 = time.perf_counter()
        for _ in range(n):
            hc.xen_version(0)
        out["s"] = time.perf_counter() - t0

    _run(main)
    return n / out["s"]


def injections(n):
    """Interrupts delivered at HAL boundaries: the host raises one before each guest memory
    read, so every read is interrupted once."""
    out = {"count": 0}
    machine = Machine(boards.get(BOARD), budget_ns=None)
    irq = host_irq(machine.vcpus[0])

    def handler(vector):
        out["count"] += 1

    def main(rt):
        rt.arch.set_vector(0x40, handler)
        rt.arch.sti()
        r32 = rt.hal.r32
        raise_vector = irq.raise_vector
        t0 = time.perf_counter()
        for _ in range(n):
            raise_vector(0x40)
            r32(0x1000)
        out["s"] = time.perf_counter() - t0
        rt.arch.cli()

    machine.run_python(main)
    return out["count"] / out["s"]


def floor_hook_roundtrip_us(n):
    """An empty UC_HOOK_INTR round trip: `int 0x82` in a guest loop, a hook that does nothing."""
    from unicorn import UC_ARCH_X86, UC_HOOK_INTR, UC_MODE_64, Uc
    from unicorn.x86_const import UC_X86_REG_RCX, UC_X86_REG_RSP

    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x10000)
    # loop: int 0x82; dec rcx; jnz loop; hlt
    uc.mem_write(0x1000, b"\xcd\x82\x48\xff\xc9\x75\xf9\xf4")
    uc.hook_add(UC_HOOK_INTR, lambda uc, intno, ud: None)
    uc.reg_write(UC_X86_REG_RSP, 0x8000)
    uc.reg_write(UC_X86_REG_RCX, n)
    t0 = time.perf_counter()
    uc.emu_start(0x1000, 0)
    return (time.perf_counter() - t0) / n * 1e6


def pingpong(n, callback, board=BOARD):
    """examples/pingpong.py: guest -> backend -> guest event round trips per wall second."""
    from pathlib import Path

    from .launch import run_guest

    path = Path(__file__).resolve().parent.parent / "examples" / "pingpong.py"
    best = None
    for _ in range(REPEATS):  # the best of a few runs: this VM's neighbours are noisy
        t0 = time.perf_counter()
        _, result = run_guest(str(path), board=board, options={"callback": callback},
                              args={"n": n})  # fmt: skip
        elapsed = time.perf_counter() - t0
        if result.status != 0:
            raise RuntimeError(f"pingpong ({callback}) failed: {result.outcome.message}")
        best = elapsed if best is None else min(best, elapsed)
    return n / best


def timer_1khz(ticks):
    """A guest that wakes every virtual millisecond: virtual seconds per wall second."""
    out = {}

    def main(rt):
        start = rt.clock_monotonic()
        t0 = time.perf_counter()
        for i in range(1, ticks + 1):
            rt.sleep_until(start + i * 1_000_000)
        out["wall"] = time.perf_counter() - t0
        out["virtual"] = (rt.clock_monotonic() - start) / 1e9

    _run(main)
    return out["virtual"] / out["wall"]


def floor_upcall_us(n):
    """The cheapest possible upcall on bare Unicorn, with the same raw register access the
    vCPU uses: vmcall -> hook -> frame push and jump to the gate -> a handler that traps into
    an empty Python hook -> iretq. Everything micropv adds is on top of this."""
    import struct

    from unicorn import UC_ARCH_X86, UC_HOOK_INSN_INVALID, UC_HOOK_INTR, UC_MODE_64, Uc
    from unicorn import x86_const as X

    from .emu.fastuc import FastUC

    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x100000)
    gdt = struct.pack("<3Q", 0, 0x00209A0000000000, 0x0000920000000000)
    uc.mem_write(0x1000, gdt)
    uc.mem_write(0x2000, struct.pack("<HQ", len(gdt) - 1, 0x1000))
    uc.mem_write(0x2010, struct.pack("<HQ", 4095, 0x3000))
    gate = 0x5000
    lo = (gate & 0xFFFF) | (0x08 << 16) | (0x8E << 40) | ((gate >> 16) & 0xFFFF) << 48
    uc.mem_write(0x3000 + 0x20 * 16, struct.pack("<QQ", lo, 0))
    uc.mem_write(gate, b"\xcd\x81\x48\xcf")  # int 0x81 (the "handler"); iretq
    # lgdt; lidt; far return to CS 0x08; mov ss; sti; loop: vmcall; dec rcx; jnz loop; hlt
    boot = (b"\x0f\x01\x14\x25" + struct.pack("<I", 0x2000)
            + b"\x0f\x01\x1c\x25" + struct.pack("<I", 0x2010)
            + b"\x6a\x08\x48\x8d\x05\x03\x00\x00\x00\x50\x48\xcb"
            + b"\xb8\x10\x00\x00\x00\x8e\xd0\xfb"
            + b"\x0f\x01\xc1\x48\xff\xc9\x75\xf7\xf4")  # fmt: skip
    uc.mem_write(0x4000, boot)
    f = FastUC(uc)
    f.write(X.UC_X86_REG_RSP, 0x80000)
    f.write(X.UC_X86_REG_RCX, n)
    frame = bytearray(40)

    def on_vmcall(uc, _):
        rip = f.read(X.UC_X86_REG_RIP) + 3
        rsp, rflags = f.read(X.UC_X86_REG_RSP), f.read(X.UC_X86_REG_RFLAGS)
        new = (rsp & ~0xF) - 40
        struct.pack_into("<5Q", frame, 0, rip, 0x08, rflags, rsp, 0x10)
        uc.mem_write(new, bytes(frame))
        f.write(X.UC_X86_REG_RSP, new)
        f.write(X.UC_X86_REG_RFLAGS, rflags & ~0x200)
        f.write(X.UC_X86_REG_RIP, gate)
        return True

    uc.hook_add(UC_HOOK_INSN_INVALID, on_vmcall)
    uc.hook_add(UC_HOOK_INTR, lambda uc, intno, ud: None)
    t0 = time.perf_counter()
    uc.emu_start(0x4000, 0)
    return (time.perf_counter() - t0) / n * 1e6


# 32-bit code, run with paging off both ways: a loop of ALU work, one store and one load per
# iteration over a 1 MiB buffer; ecx = iterations.
_LOOP = (b"\x31\xc0\x31\xd2\xbf\x00\x00\x20\x00"  # xor eax,eax; xor edx,edx; mov edi,0x200000
         b"\x01\xc8\xc1\xc0\x05\x89\x07\x03\x57\x04"  # 1: add eax,ecx; rol eax,5; mov [edi],eax; add edx,[edi+4]
         b"\x83\xc7\x08\x81\xe7\xff\xff\x2f\x00\x81\xcf\x00\x00\x20\x00"  # edi = next in buffer
         b"\x49\x75\xe4")  # dec ecx; jnz 1b  # fmt: skip


def native_vs_raw(n):
    """The same compute loop (no events) as a native PVH kernel under micropv and on a bare
    Unicorn instance: raw time / micropv time, each the best of REPEATS runs of the
    emulation alone (machine construction and loading excluded on both sides)."""
    import struct

    from unicorn import UC_ARCH_X86, UC_MODE_32, Uc

    from . import native
    from .loader import Image, Segment

    base = 0x100000
    reason = base + 0x800  # sched_shutdown.reason = SHUTDOWN_poweroff (0)
    head = b"\xb9" + struct.pack("<I", n)  # mov ecx, n
    # sched_op(SCHEDOP_shutdown, &reason) from 32-bit code: eax, ebx, ecx; vmcall
    tail = (b"\xb8\x1d\x00\x00\x00\xbb\x02\x00\x00\x00\xb9" + struct.pack("<I", reason)
            + b"\x0f\x01\xc1\xf4")  # fmt: skip
    kernel = head + _LOOP + tail
    segment = Segment(base, kernel.ljust(0x1000, b"\0"), 0x1000, True)
    image = Image("<native_vs_raw>", base, [segment], 64, "EM_X86_64", "built-in")
    best_native = best_raw = None
    for _ in range(REPEATS):
        machine = Machine(boards.get(BOARD), native=True)
        pc = native.boot(machine, image)
        t0 = time.perf_counter()
        result = native.run(machine, pc)
        elapsed = time.perf_counter() - t0
        if result.status != 0:
            raise RuntimeError(f"native_vs_raw kernel failed: {result.outcome.message}")
        best_native = elapsed if best_native is None else min(best_native, elapsed)

        uc = Uc(UC_ARCH_X86, UC_MODE_32)
        uc.mem_map(0, 0x400000)
        code = head + _LOOP + b"\xf4"  # the same loop, then hlt
        uc.mem_write(base, code)
        t0 = time.perf_counter()
        uc.emu_start(base, 0)
        elapsed = time.perf_counter() - t0
        best_raw = elapsed if best_raw is None else min(best_raw, elapsed)
    return best_raw / best_native


def _run(main):
    result = Machine(boards.get(BOARD), budget_ns=None).run_python(main)
    if result.status != 0:
        raise RuntimeError(f"bench guest failed: {result.outcome.message}")
    return result


def run(quick=False):
    scale = 50 if quick else 1
    return [
        _row("null_hypercalls_per_s", null_hypercalls(100000 // scale), "1/s"),
        _row("injections_per_s", injections(100000 // scale), "1/s"),
        _row("pingpong_roundtrips_per_s", pingpong(20000 // scale, "vector"), "1/s", "vector"),
        _row("pingpong_roundtrips_per_s", pingpong(20000 // scale, "lapic"), "1/s", "lapic"),
        _row("virtual_s_per_wall_s", timer_1khz(5000 // scale), "s/s", "vector"),
        _row("floor_hook_roundtrip_us", floor_hook_roundtrip_us(200000 // scale), "us"),
        _row("floor_upcall_us", floor_upcall_us(100000 // scale), "us"),
        _row("native_vs_raw", native_vs_raw(2_000_000 // scale), "x"),
        # riscv64: the CPU delivers through sip itself (goal: 40,000 round trips per second).
        _row("pingpong_roundtrips_per_s", pingpong(20000 // scale, "seip", RISCV), "1/s",
             "seip", RISCV),
        _row("pingpong_roundtrips_per_s", pingpong(20000 // scale, "ssip", RISCV), "1/s",
             "ssip", RISCV),
        _row("floor_upcall_us", bench_riscv.floor_upcall_us(100000 // scale), "us", "ssip",
             RISCV),
    ]


def main(args):
    rows = run(quick=args.quick)
    width = max(len(r["metric"]) for r in rows)
    for r in rows:
        print(f"{r['metric']:<{width}}  {r['value']:>12,.3f} {r['unit']:<4} "
              f"board={r['board']} callback={r['callback']}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
            f.write("\n")
    sys.stdout.flush()
    return 0
