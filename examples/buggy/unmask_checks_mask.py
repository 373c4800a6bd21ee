# Solo5's first Xen binding unmasked a port like this (bindings/xen/evtchn.c, fixed in df0b6b5,
# 2020-06, after Roger Pau Monne pointed it out on xen-devel):
#
#     clear mask[port];
#     if (mask[port]) { set mask[port]; EVTCHNOP_unmask(port); }   /* meant: pending[port] */
#
# The test reads the bit it has just cleared, so it is always false. An event that arrived
# while the port was masked found the mask, so Xen set pending[port] and raised nothing; the
# unmask never re-raises it: no selector bit, no upcall, and the event is never handled.
# One event finds it -- a send while the port is masked:
#   micropv explore examples/buggy/unmask_checks_mask.py
# The fixed twin (unmask_checks_mask_fixed.py) tests pending[], as Solo5 does since.
MS = 1000000
RING = 0x200000  # a page of guest RAM standing in for the driver's ring


def backend(machine, args):
    return {"backend_port": machine.backend.alloc_unbound(machine.domid)}


def unmask(rt, port):
    hal, si = rt.hal, rt.shared_info
    w, b = port >> 6, port & 63
    hal.test_and_clear_bit(si.mask_word(w), b)
    if (hal.r64(si.mask_word(w)) >> b) & 1:  # BUG: tests mask[], not pending[]
        hal.test_and_set_bit(si.mask_word(w), b)  # re-mask, so that Xen's unmask notifies
        rt.events.hypercall_unmask(port)


def main(rt):
    ev = rt.events
    port = ev.bind_interdomain(0, rt.config["backend_port"])
    rt.bind(port, lambda p: None)  # Xen marks a fresh port pending: one early handler run
    ev.mask(port)  # the driver works on its ring with the port masked...
    for i in range(16):
        rt.hal.w64(RING + 8 * i, rt.hal.r64(RING + 8 * i) + 1)
    unmask(rt, port)  # ...then unmasks it: an event sent meanwhile must not be lost
    rt.sleep_until(rt.clock_monotonic() + 1 * MS)
    return 0
