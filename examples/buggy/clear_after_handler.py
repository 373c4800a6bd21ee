# Solo5's demux ran a port's handler, then cleared its pending bit (the runtime's
# clear = "after"). If the backend sends again while the handler runs, Xen finds the bit
# still set and coalesces the send -- no new notification -- and then the guest clears it:
# the second event is gone (guest-anchors §7.4). Harmless for a timer flag, wrong for a ring.
# Mini-OS, Linux and FreeBSD clear first. It takes an event to start the handler and a send
# while it works on the ring; Xen provides the first itself (a freshly bound port is marked
# pending), so one injected send finds it:
#   micropv explore examples/buggy/clear_after_handler.py
# The fixed twin (clear_after_handler_fixed.py) clears first.
OPTIONS = {"clear": "after"}
MS = 1000000
RING = 0x200000  # a page of guest RAM standing in for the shared ring


def backend(machine, args):
    return {"backend_port": machine.backend.alloc_unbound(machine.domid)}


def main(rt):
    ev = rt.events
    port = ev.bind_interdomain(0, rt.config["backend_port"])

    def consume(p):  # the handler: take what the backend produced
        for i in range(8):
            rt.hal.w64(RING + 8 * i, 0)

    rt.bind(port, consume)  # Xen marks a fresh port pending: one early handler run
    rt.sleep_until(rt.clock_monotonic() + 1 * MS)  # serve events for 1 ms
    return 0
