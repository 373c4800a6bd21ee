# Mini-OS and Unikraft unmask a port by "software resend": clear the mask and, if the port is
# pending, set its selector bit and upcall_pending themselves, then -- with interrupts on --
# run the upcall in software (the runtime's unmask = "software-resend"). With interrupts off,
# as in a handler, they leave upcall_pending set for the hardware to notice. The level-like
# callback vector (Mini-OS's choice) is injected while upcall_pending is 1, so that works. The
# per-vCPU LAPIC vector is raised only on Xen's own 0->1 change of upcall_pending: a flag the
# guest set itself raises nothing, and every later event finds it set and stays silent too
# (guest-anchors §7.6). One event finds it -- a send while the port is masked:
#   micropv explore examples/buggy/software_resend.py              (callback lapic)
#   micropv explore examples/buggy/software_resend.py --callback vector    (clean)
# The fixed twin (software_resend_fixed.py) unmasks as Linux does: re-mask and
# EVTCHNOP_unmask when the port is pending, so Xen makes the 0->1 change itself.
OPTIONS = {"callback": "lapic", "unmask": "software-resend"}
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
