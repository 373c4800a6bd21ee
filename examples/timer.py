# Sleep through the Solo5-style API and check every wake-up against its deadline. By default
# 5 x 100 ms, printing each wake; `--arg hz=1000 --arg ticks=200` makes it 1 kHz ticks (one
# line per wake only for 10 ticks or fewer).
#   micropv run examples/timer.py [--callback vector|lapic] [--arg hz=H] [--arg ticks=N]
MS = 1000000


def main(rt):
    hz = rt.config.get("hz", 10)
    ticks = rt.config.get("ticks", 5)
    period = 1000000000 // hz
    # A wake may be late by the cost of getting there (microseconds of virtual time); more
    # than 1 ms, or half a period at high rates, means a timer went missing.
    slack = min(1 * MS, period // 2)
    late = 0
    start = rt.clock_monotonic()
    for i in range(1, ticks + 1):
        deadline = start + i * period
        rt.sleep_until(deadline)
        now = rt.clock_monotonic()
        if ticks <= 10:
            rt.console_write("wake %d at %d ns (deadline %d, +%d ns)\n"
                             % (i, now, deadline, now - deadline))  # fmt: skip
        if now < deadline or now - deadline > slack:
            late += 1
    rt.console_write("timer: %s\n" % ("ok" if late == 0 else "%d wakes off" % late))
    return 0 if late == 0 else 1
