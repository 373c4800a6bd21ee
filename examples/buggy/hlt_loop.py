# Solo5's first Xen binding slept until its timer like this (fixed in 8bf0bff, 2020-06, after
# a xen-devel discussion and a look at Mirage/Xen):
#
#     while (!fired) hlt;
#
# If the timer fires after the `fired` test but before the `hlt`, its handler sets `fired`
# too late: the `hlt` then sleeps with nothing armed to wake it, past its deadline, for good.
# One event finds it -- the timer expiring at exactly that boundary:
#   micropv explore examples/buggy/hlt_loop.py
# The fixed twin (hlt_loop_fixed.py) tests with interrupts off and sleeps with `sti; hlt`.
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
        rt.arch.sti()
        while not rt.timer_fired:  # BUG: the timer may fire right here, before the hlt
            rt.arch.halt()
        rt.hal.note("woke", 1)
    return 0
