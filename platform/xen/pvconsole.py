# The PV devices a toolstack gives every domain before it starts: the console ring and the
# xenstore ring, each a special page plus an event channel bound to a backend in domain 0,
# announced through HVM params (libxl/xc_dom for a PVH guest; xenconsoled on the other end).
# The console backend here plays xenconsoled: it drains the output ring to the machine's
# console when the guest notifies its port or yields, advances out_cons, then notifies back.
# The xenstore page is set up the same way with no daemon behind it yet: requests stay in
# the ring and the backend port only records the guest's notifications.
from micropv.runtime.abi import hvm as H

# struct xencons_interface (xen/include/public/io/console.h)
CONS_IN = 0  # char in[1024]
CONS_IN_SIZE = 1024
CONS_OUT = 1024  # char out[2048]
CONS_OUT_SIZE = 2048
CONS_in_cons = 3072
CONS_in_prod = 3076
CONS_out_cons = 3080
CONS_out_prod = 3084


class PVChannel:
    """A special page and an interdomain channel: guest port (alloc_unbound by the
    toolstack, remote dom0) bound by the backend, as libxl and the daemons do it."""

    def __init__(self, xen, gpa, pfn_param, evtchn_param):
        self.xen = xen
        self.ram = xen.machine.ram
        self.gpa = gpa
        self.ram.write(gpa, bytes(4096))
        backend = xen.backend
        self.guest_port = xen.domain.alloc_unbound(backend.domid)
        self.backend_port = backend.bind_interdomain(xen.machine.domid, self.guest_port)
        xen.hvm_params[pfn_param] = gpa >> 12
        xen.hvm_params[evtchn_param] = self.guest_port


class PVConsole(PVChannel):
    def __init__(self, xen, gpa):
        super().__init__(xen, gpa, H.HVM_PARAM_CONSOLE_PFN, H.HVM_PARAM_CONSOLE_EVTCHN)
        self.drained = 0  # bytes taken from the ring
        self.notified = 0  # guest notifications on the console port
        xen.backend.on_event(self.backend_port, self._notified)
        xen.on_yield.append(lambda vcpu: self.drain())
        # Binding left the backend's port pending (Xen does, so no event is lost): the
        # daemon's first look at the ring consumes it.
        xen.backend.unmask(self.backend_port)

    def _notified(self, port):
        self.notified += 1
        self.drain()

    def drain(self):
        """Consume everything between out_cons and out_prod (xenconsoled's
        handle_ring_read): copy it out, publish the new out_cons, notify the guest."""
        ram, base = self.ram, self.gpa
        cons = ram.u32(base + CONS_out_cons)
        prod = ram.u32(base + CONS_out_prod)
        n = (prod - cons) & 0xFFFFFFFF
        if n == 0:
            return
        if n > CONS_OUT_SIZE:  # a corrupt ring: take what one ring can hold, as the daemon
            cons = (prod - CONS_OUT_SIZE) & 0xFFFFFFFF
            n = CONS_OUT_SIZE
        start = cons % CONS_OUT_SIZE
        first = min(n, CONS_OUT_SIZE - start)
        data = ram.read(base + CONS_OUT + start, first) + ram.read(base + CONS_OUT, n - first)
        ram.set32(base + CONS_out_cons, prod)
        self.drained += n
        self.xen.machine.trace.event("console_ring", -1, bytes=n)
        self.xen.machine.console_write(data)
        self.xen.backend.send(self.backend_port)  # "there is room again"


class XenStorePage(PVChannel):
    def __init__(self, xen, gpa):
        super().__init__(xen, gpa, H.HVM_PARAM_STORE_PFN, H.HVM_PARAM_STORE_EVTCHN)


def setup(xen, console_gpa, store_gpa):
    """Give the domain its console and xenstore pages; returns (console, store)."""
    return PVConsole(xen, console_gpa), XenStorePage(xen, store_gpa)
