# The fixed twin of clear_after_handler.py: the demux clears a port's pending bit before it
# runs the handler (Mini-OS, Linux, FreeBSD). A send that arrives while the handler runs
# finds the bit clear, so Xen notifies again, and the handler runs once more.
#   micropv explore examples/buggy/clear_after_handler_fixed.py     (clean)
OPTIONS = {"clear": "first"}  # FIXED: clear pending, then run the handler
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
