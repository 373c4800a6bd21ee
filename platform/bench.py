# `micropv bench`: round-trip throughput of Python guests on pvh-x86_64, with the cost of an
# empty guest->Python->guest hook measured in the same run as the floor to compare against.
# Wall-clock figures: this is the one place micropv reads the wall clock, and nothing in a
# run's behaviour depends on it.
import json
import sys
import time

from micropv import boards

from .emu.irq import host_irq
from .machine import Machine

BOARD = "pvh-x86_64"


def _row(metric, value, unit, callback="none"):
    return {"metric": metric, "board": BOARD, "callback": callback,
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
        _row("floor_hook_roundtrip_us", floor_hook_roundtrip_us(200000 // scale), "us"),
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
