# Sleep 5 x 100 ms through the Solo5-style API and check every wake-up against its deadline.
#   micropv run examples/timer.py [--callback vector|lapic]
MS = 1000000


def main(rt):
    late = 0
    start = rt.clock_monotonic()
    for i in range(1, 6):
        deadline = start + i * 100 * MS
        rt.sleep_until(deadline)
        now = rt.clock_monotonic()
        rt.console_write("wake %d at %d ns (deadline %d, +%d ns)\n"
                         % (i, now, deadline, now - deadline))  # fmt: skip
        if now < deadline or now - deadline > 1 * MS:
            late += 1
    rt.console_write("timer: %s\n" % ("ok" if late == 0 else "%d wakes off" % late))
    return 0 if late == 0 else 1
