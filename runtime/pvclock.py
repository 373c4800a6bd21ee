# pvclock: system time from vcpu_time_info and wall time from shared_info, both read under
# Xen's seqlock (version odd while Xen writes; retry if it changed). Ref: public/xen.h,
# Linux arch/x86/kernel/pvclock.c.
from .abi import vcpu as V

_MASK64 = (1 << 64) - 1


def system_time(hal, t, rdtsc):
    """ns since boot, from the vcpu_time_info at t and the CPU's TSC (rdtsc())."""
    while True:
        version = hal.r32(t + V.TIME_INFO_version)
        if version & 1:
            continue  # Xen is mid-update
        tsc_timestamp = hal.r64(t + V.TIME_INFO_tsc_timestamp)
        base = hal.r64(t + V.TIME_INFO_system_time)
        mul = hal.r32(t + V.TIME_INFO_tsc_to_system_mul)
        shift = hal.r8(t + V.TIME_INFO_tsc_shift)
        tsc = rdtsc()
        if hal.r32(t + V.TIME_INFO_version) == version:
            break
    return base + scale_delta((tsc - tsc_timestamp) & _MASK64, mul, shift)


def scale_delta(delta, mul, shift):
    if shift >= 128:
        shift -= 256  # tsc_shift is a signed byte
    if shift >= 0:
        delta <<= shift
    else:
        delta >>= -shift
    return (delta * mul) >> 32


def wallclock_base(hal, si):
    """Wall time (ns since the Unix epoch) at system time zero, from shared_info."""
    lay = si.layout
    base = si.gpa
    while True:
        version = hal.r32(base + lay.wc_version)
        if version & 1:
            continue
        sec = hal.r32(base + lay.wc_sec)
        nsec = hal.r32(base + lay.wc_nsec)
        sec_hi = hal.r32(base + lay.wc_sec_hi)
        if hal.r32(base + lay.wc_version) == version:
            break
    return ((sec_hi << 32) | sec) * 1000000000 + nsec
