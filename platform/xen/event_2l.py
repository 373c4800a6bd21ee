# The guest domain's event channels with the 2-level ABI: pending and mask bitmaps in
# shared_info, the selector word and upcall flag in each vcpu_info.
# Ref: xen/common/event_2l.c, xen/arch/x86/include/asm/event.h (vcpu_mark_events_pending).
from .bitops import test_and_clear_bit, test_and_set_bit, test_bit
from .evtchn import Domain


class GuestDomain(Domain):
    def __init__(self, xen, domid, nr_vcpus):
        super().__init__(domid, nr_vcpus)
        self.xen = xen
        self.trace = xen.machine.trace

    def _word(self, base_off, port):
        si = self.xen.shared_info
        return si.buf, si.base + base_off + 8 * (port >> 6)

    def set_pending(self, port):
        """evtchn_2l_set_pending: a port already pending coalesces (no notification, not even
        to pollers); otherwise a new selector bit makes the upcall pending, on its 0->1 edge."""
        lay = self.xen.layout
        buf, addr = self._word(lay.evtchn_pending, port)
        self.stats["set_pending"] += 1
        if test_and_set_bit(buf, addr, port & 63):
            self.stats["coalesced"] += 1
            self.trace.event("set_pending", -1, port=port, coalesced=True)
            return
        self.trace.event("set_pending", -1, port=port, coalesced=False)
        v = self.xen.vcpus[self.notify_vcpu_of(port)]
        mbuf, maddr = self._word(lay.evtchn_mask, port)
        if not test_bit(mbuf, maddr, port & 63):
            vbuf, vbase = v.vcpu_info()
            if not test_and_set_bit(vbuf, vbase + lay.pending_sel, port >> 6):
                v.mark_events_pending()
        self.xen.check_pollers(port)

    def unmask(self, port):
        """evtchn_2l_unmask: notify only if the mask bit *was* set and the port is pending --
        which is why guests re-mask before EVTCHNOP_unmask."""
        lay = self.xen.layout
        mbuf, maddr = self._word(lay.evtchn_mask, port)
        pbuf, paddr = self._word(lay.evtchn_pending, port)
        if test_and_clear_bit(mbuf, maddr, port & 63) and test_bit(pbuf, paddr, port & 63):
            v = self.xen.vcpus[self.notify_vcpu_of(port)]
            vbuf, vbase = v.vcpu_info()
            if not test_and_set_bit(vbuf, vbase + lay.pending_sel, port >> 6):
                v.mark_events_pending()

    def clear_pending(self, port):
        buf, addr = self._word(self.xen.layout.evtchn_pending, port)
        test_and_clear_bit(buf, addr, port & 63)

    def is_pending(self, port):
        if port >= 4096:
            return False
        buf, addr = self._word(self.xen.layout.evtchn_pending, port)
        return bool(test_bit(buf, addr, port & 63))

    def is_masked(self, port):
        if port >= 4096:
            return True
        buf, addr = self._word(self.xen.layout.evtchn_mask, port)
        return bool(test_bit(buf, addr, port & 63))
