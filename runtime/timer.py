# Blocking until an event or a deadline: set_timer_op + `sti; hlt`, and SCHEDOP_poll.
# Ref: Solo5 bindings/xen/time.c (solo5_yield), Mini-OS arch/x86/time.c (block_domain),
# public/sched.h (sched_poll).
from .abi import sched as S


def block_until(rt, deadline, ready):
    """Solo5's discipline: cli; if there is work, stop; else arm the timer and `sti; hlt`
    (adjacent: the STI shadow keeps an interrupt from slipping in between, so a wake-up
    cannot be lost); cli and check again. The timer is cancelled on an early wake.
    Returns with interrupts enabled; True if ready() became true, False at the deadline."""
    arch = rt.arch
    hc = rt.hc
    armed = False
    # For the host (the race explorer's deadline check): a wait is open until `deadline`.
    rt.hal.note("wait", deadline)
    while True:
        rt.upcall.run_deferred()  # a bottom half runs with interrupts on
        arch.cli()
        if ready():
            result = True
            break
        if rt.clock_monotonic() >= deadline:
            result = False
            break
        if not armed:
            hc.set_timer_op(deadline)
            armed = True
        arch.safe_halt()
    if armed and result:
        hc.set_timer_op(0)  # early wake: cancel
    rt.hal.note("woke", 1 if result else 0)
    arch.sti()
    return result


def block_domain(rt, until):
    """Mini-OS's block_domain (interrupts must be off): arm, `sti; hlt`, cli, cancel."""
    if rt.clock_monotonic() < until:
        rt.hal.note("wait", until)
        rt.hc.set_timer_op(until)
        rt.arch.safe_halt()
        rt.arch.cli()
        rt.hc.set_timer_op(0)
        rt.hal.note("woke", 1)


def poll(rt, ports, timeout=0):
    """SCHEDOP_poll: sleep until one of ports is pending (even masked), an interrupt can be
    delivered, or the absolute timeout (ns of system time; 0 = none) passes."""
    n = len(ports)
    buf = rt.args.alloc(4 * n + S.POLL_SIZE)
    try:
        arr = buf + S.POLL_SIZE
        for i in range(n):
            rt.hal.w32(arr + 4 * i, ports[i])
        rt.hal.w64(buf + S.POLL_ports, arr)
        rt.hal.w32(buf + S.POLL_nr_ports, n)
        rt.hal.w32(buf + S.POLL_nr_ports + 4, 0)
        rt.hal.w64(buf + S.POLL_timeout, timeout)
        return rt.hc.sched_op(S.SCHEDOP_poll, buf)
    finally:
        rt.args.free(buf)
