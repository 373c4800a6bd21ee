# Time as a guest sees it: the pvclock record in vcpu_info, the guest's rdtsc against the
# virtual clock, and the wallclock in shared_info (reference/xen-abi.md §4.1, §4.3).
from micropv.platform.clock import TSC_PER_NS
from micropv.platform.machine import DEFAULT_WALLCLOCK_EPOCH_NS, Machine
from micropv.runtime.abi import vcpu as V

from micropv import boards

BOARD = boards.get("pvh-x86_64")
EPOCH_NS = 1767225600 * 10**9


def run(main):
    m = Machine(BOARD, budget_ns=10**9, trace=True)
    return m, m.run_python(main)


def record(rt):
    """The vcpu_time_info of vCPU 0, field by field, read through the HAL."""
    t = rt.shared_info.time(0)
    h = rt.hal
    return {
        "version": h.r32(t + V.TIME_INFO_version),
        "tsc_timestamp": h.r64(t + V.TIME_INFO_tsc_timestamp),
        "system_time": h.r64(t + V.TIME_INFO_system_time),
        "mul": h.r32(t + V.TIME_INFO_tsc_to_system_mul),
        "shift": h.r8(t + V.TIME_INFO_tsc_shift),
        "flags": h.r8(t + V.TIME_INFO_flags),
    }


def watch_rdtsc(rt, seen):
    """Wrap the machine's TSC so each guest rdtsc records the virtual time it executed at."""
    clock = rt.hal.machine.clock
    tsc = clock.tsc

    def recorded():
        seen.append(clock.now)
        return tsc()

    clock.tsc = recorded
    return lambda: delattr(clock, "tsc")


def test_epoch_constant():
    assert DEFAULT_WALLCLOCK_EPOCH_NS == EPOCH_NS  # 2026-01-01T00:00:00Z


def test_pvclock_record_after_boot():
    got = {}

    def main(rt):
        got.update(record(rt))
        got["time offset"] = rt.shared_info.time(0) - rt.shared_info.gpa

    _, result = run(main)
    assert result.status == 0
    assert got["version"] % 2 == 0 and got["version"] > 0
    assert got["mul"] == 0x80000000
    assert got["shift"] == 0
    assert got["flags"] & V.XEN_PVCLOCK_TSC_STABLE_BIT
    assert got["tsc_timestamp"] == got["system_time"] * TSC_PER_NS  # one clock, two units
    assert got["time offset"] == 32  # vcpu_info[0].time on x86_64


def test_monotonic_is_strictly_increasing():
    readings = []

    def main(rt):
        for _ in range(20):
            readings.append(rt.clock_monotonic())

    _, result = run(main)
    assert result.status == 0
    assert readings[0] > 0
    assert all(a < b for a, b in zip(readings, readings[1:]))


def test_monotonic_equals_virtual_time_at_rdtsc():
    readings, seen, tscs = [], [], []

    def main(rt):
        undo = watch_rdtsc(rt, seen)
        for _ in range(5):
            readings.append(rt.clock_monotonic())
        tscs.append(rt.arch.rdtsc())
        undo()

    _, result = run(main)
    assert result.status == 0
    assert len(seen) == 6  # one rdtsc per reading, and the bare one
    assert readings == seen[:5]
    assert tscs == [seen[5] * TSC_PER_NS]


def test_monotonic_across_host_updates():
    # Xen rewrites the record (vCPU scheduled in, shared_info moved); readings stay exact.
    readings, seen, versions = [], [], []

    def main(rt):
        xen = rt.hal.machine.hypervisor
        vcpu = rt.hal.vcpu
        undo = watch_rdtsc(rt, seen)
        for _ in range(4):
            readings.append(rt.clock_monotonic())
            versions.append(record(rt)["version"])
            xen.update_vcpu_system_time(vcpu)
        undo()

    _, result = run(main)
    assert result.status == 0
    # Only the guest's rdtsc goes through tsc(); Xen stamps the record from the board's
    # counter frequency directly.
    assert readings == seen
    assert all(a < b for a, b in zip(readings, readings[1:]))
    assert [b - a for a, b in zip(versions, versions[1:])] == [2, 2, 2]
    assert all(v % 2 == 0 for v in versions)


def test_wallclock_is_epoch_plus_monotonic():
    walls, monos, seen, wc = [], [], [], {}

    def main(rt):
        si, lay = rt.shared_info, rt.layout
        wc["version"] = rt.hal.r32(si.gpa + lay.wc_version)
        undo = watch_rdtsc(rt, seen)
        for _ in range(3):
            walls.append(rt.clock_wall())
            monos.append(rt.clock_monotonic())
        undo()

    _, result = run(main)
    assert result.status == 0
    assert wc["version"] % 2 == 0 and wc["version"] > 0
    assert len(seen) == 6
    assert walls == [EPOCH_NS + t for t in seen[0::2]]
    assert monos == seen[1::2]
    assert walls[0] < walls[1] < walls[2]


def test_wallclock_epoch_is_configurable():
    walls, seen = [], []
    epoch = 946684800 * 10**9 + 123456789  # 2000-01-01 plus some ns: wc_nsec is used

    def main(rt):
        undo = watch_rdtsc(rt, seen)
        walls.append(rt.clock_wall())
        undo()

    m = Machine(BOARD, budget_ns=10**9, wallclock_epoch_ns=epoch)
    result = m.run_python(main)
    assert result.status == 0
    assert walls == [epoch + seen[0]]


def test_wallclock_epoch_past_2106_uses_wc_sec_hi():
    walls, seen = [], []
    epoch = (1 << 32) * 10**9 + 5 * 10**9 + 7  # wc_sec wraps; wc_sec_hi = 1

    def main(rt):
        si, lay = rt.shared_info, rt.layout
        walls.append(rt.hal.r32(si.gpa + lay.wc_sec_hi))
        walls.append(rt.hal.r32(si.gpa + lay.wc_sec))
        walls.append(rt.hal.r32(si.gpa + lay.wc_nsec))
        undo = watch_rdtsc(rt, seen)
        walls.append(rt.clock_wall())
        undo()

    m = Machine(BOARD, budget_ns=10**9, wallclock_epoch_ns=epoch)
    result = m.run_python(main)
    assert result.status == 0
    assert walls == [1, 5, 7, epoch + seen[0]]
