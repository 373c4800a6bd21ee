# The fixed twin of hlt_loop.py, Solo5's sleep since 8bf0bff: test with interrupts off, then
# `sti; hlt`. The hlt sits in sti's one-instruction interrupt shadow, so a timer that fires
# after the test is taken by the hlt -- it wakes at once -- never before it.
#   micropv explore examples/buggy/hlt_loop_fixed.py     (clean)
MS = 1000000
TICKS = 3
RING = 0x200000  # a page of guest RAM standing in for a device ring


def poll_ring(rt):
    for i in range(8):
        rt.hal.r64(RING + 8 * i)


def main(rt):
    rt.events  # interrupts on, VIRQ_TIMER bound: its handler sets rt.timer_fired
    for _ in range(TICKS):
        deadline = rt.clock_monotonic() + 1 * MS
        rt.timer_fired = False
        rt.hal.note("wait", deadline)  # declare the wait: the explorer checks it ends in time
        rt.hc.set_timer_op(deadline)
        rt.arch.cli()
        poll_ring(rt)  # look for work with interrupts off, as Solo5's yield does
        while not rt.timer_fired:  # FIXED: tested with interrupts off...
            rt.arch.safe_halt()  # ...then `sti; hlt`: no window between enabling and halting
            rt.arch.cli()
        rt.arch.sti()
        rt.hal.note("woke", 1)
    return 0
