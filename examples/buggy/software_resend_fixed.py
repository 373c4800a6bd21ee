# The fixed twin of software_resend.py: unmask as Linux (HVM) and Solo5 do -- clear the mask,
# and if the port is pending, set the mask again and call EVTCHNOP_unmask, so that Xen itself
# makes upcall_pending go 0->1 and raises the per-vCPU vector.
#   micropv explore examples/buggy/software_resend_fixed.py     (clean)
OPTIONS = {"callback": "lapic", "unmask": "hypercall-if-pending"}  # FIXED: Xen raises it
MS = 1000000
RING = 0x200000  # a page of guest RAM standing in for the driver's ring


def backend(machine, args):
    return {"backend_port": machine.backend.alloc_unbound(machine.domid)}


def main(rt):
    ev = rt.events
    port = ev.bind_interdomain(0, rt.config["backend_port"])
    rt.bind(port, lambda p: None)  # Xen marks a fresh port pending: one early handler run
    rt.arch.cli()  # a driver's critical section, as inside a handler: interrupts off...
    ev.mask(port)
    for i in range(16):
        rt.hal.w64(RING + 8 * i, rt.hal.r64(RING + 8 * i) + 1)
    ev.unmask(port)  # ...unmasked before it ends: an event sent meanwhile must get through
    rt.arch.sti()
    rt.sleep_until(rt.clock_monotonic() + 1 * MS)
    return 0
