# Bounce an event N times over an interdomain event channel between this guest and the host
# backend (domain 0), which echoes every event straight back.
#   micropv run examples/pingpong.py [--arg n=1000] [--callback vector|lapic] [--unmask ...]
MS = 1000000
# `micropv explore examples/pingpong.py` bounces 5 events, not 1000: every round adds choice
# points, and five rounds already cover the first, the middle ones and the last.
EXPLORE = {"args": {"n": 5}}


def backend(machine, args):
    """Host side: offer an unbound port to the guest and echo whatever arrives on it."""
    be = machine.backend
    port = be.alloc_unbound(machine.domid)
    be.on_event(port, be.send)
    return {"backend_port": port}


def main(rt):
    n = rt.config.get("n", 1000)
    ev = rt.events
    port = ev.bind_interdomain(0, rt.config["backend_port"])
    # Xen marks a freshly bound local port pending; that is not a reply, so drop it.
    ev.clear(port)
    replies = [0]

    def on_reply(p):
        replies[0] += 1

    rt.bind(port, on_reply)
    for i in range(n):
        ev.send(port)
        if replies[0] <= i:
            rt.yield_until(0)  # handlers = deferred: the reply waits for the bottom half
        if replies[0] <= i:
            # Not back yet. SCHEDOP_poll returns once the reply is pending -- even if no
            # upcall reports it -- or after 10 ms; then let a bottom half run.
            rt.poll([port], rt.clock_monotonic() + 10 * MS)
            rt.yield_until(0)
        if replies[0] <= i:
            if ev.is_pending(port):
                rt.console_write("round %d: the reply is pending but no upcall arrived "
                                 "(callback method %s)\n" % (i + 1, rt.options["callback"]))
            else:
                rt.console_write("round %d: the reply never arrived\n" % (i + 1))
            break
    rt.console_write("round trips: %d\n" % replies[0])
    # An event channel carries no count: the backend may notify more often than it echoes
    # (`micropv explore` injects such sends), and extra notifications are not failures.
    return 0 if replies[0] >= n else 1
