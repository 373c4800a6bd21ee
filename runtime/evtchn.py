# Event channels, 2-level ABI, guest side: binding, sending, masking, the three unmask
# algorithms real guests use, and the demultiplexer the upcall runs.
# Ref: public/event_channel.h; Linux drivers/xen/events/events_2l.c; Solo5
# bindings/xen/evtchn.c; Mini-OS hypervisor.c; FreeBSD dev/xen/evtchn.
from ._compat import const
from .abi import event_channel as E
from .abi import xen as X

# Unmask algorithms (DESIGN §5).
UNMASK_HYPERCALL_IF_PENDING = "hypercall-if-pending"  # Linux HVM, Solo5
UNMASK_ALWAYS_HYPERCALL = "always-hypercall"  # FreeBSD
UNMASK_SOFTWARE_RESEND = "software-resend"  # Mini-OS, Unikraft
UNMASK_POLICIES = (UNMASK_HYPERCALL_IF_PENDING, UNMASK_ALWAYS_HYPERCALL, UNMASK_SOFTWARE_RESEND)
CLEAR_FIRST = "first"  # clear pending, then run the handler (Mini-OS, Linux, FreeBSD)
CLEAR_AFTER = "after"  # run the handler, then clear (Solo5: loses a re-sent event)
CLEAR_POLICIES = (CLEAR_FIRST, CLEAR_AFTER)

_WORDS = const(64)  # 64 words of 64 ports: 4096
_ALL_WORDS = (1 << 64) - 1


class EventChannels:
    def __init__(self, rt, unmask=UNMASK_HYPERCALL_IF_PENDING, clear=CLEAR_FIRST):
        if unmask not in UNMASK_POLICIES:
            raise ValueError("unknown unmask algorithm %r" % unmask)
        if clear not in CLEAR_POLICIES:
            raise ValueError("unknown clear policy %r" % clear)
        self.rt = rt
        self.hal = rt.hal
        self.si = rt.shared_info
        self.unmask_policy = unmask
        self.clear_after = clear == CLEAR_AFTER
        self.vcpu = rt.vcpu_id
        self.vi = self.si.vcpu_info(self.vcpu)
        self.lay = rt.layout
        self.handlers = {}
        self._rr_word = 0  # round-robin resume point of the demux
        self._rr_bit = 0
        self.stats = {"dispatched": 0, "unmask_hypercalls": 0, "demux_passes": 0}

    # Hypercalls -------------------------------------------------------------------------------
    def _op(self, name, cmd, size, fields, out=None):
        """Build the argument struct on the argument stack, call, read the OUT field."""
        rt = self.rt
        arg = rt.args.alloc(size)
        try:
            self.hal.write(arg, pack(size, fields))  # one guest store, not one per field
            rt.hc.check(name, rt.hc.event_channel_op(cmd, arg))
            return self.hal.r32(arg + out) if out is not None else 0
        finally:
            rt.args.free(arg)

    def alloc_unbound(self, remote_dom=X.DOMID_SELF):
        return self._op("EVTCHNOP_alloc_unbound", E.EVTCHNOP_alloc_unbound, E.ALLOC_UNBOUND_SIZE,
                        ((E.ALLOC_UNBOUND_dom, 2, X.DOMID_SELF),
                         (E.ALLOC_UNBOUND_remote_dom, 2, remote_dom)), E.ALLOC_UNBOUND_port)  # fmt: skip

    def bind_interdomain(self, remote_dom, remote_port):
        return self._op("EVTCHNOP_bind_interdomain", E.EVTCHNOP_bind_interdomain,
                        E.BIND_INTERDOMAIN_SIZE,
                        ((E.BIND_INTERDOMAIN_remote_dom, 2, remote_dom),
                         (E.BIND_INTERDOMAIN_remote_port, 4, remote_port)),
                        E.BIND_INTERDOMAIN_local_port)  # fmt: skip

    def bind_virq(self, virq, vcpu=0):
        return self._op("EVTCHNOP_bind_virq", E.EVTCHNOP_bind_virq, E.BIND_VIRQ_SIZE,
                        ((E.BIND_VIRQ_virq, 4, virq), (E.BIND_VIRQ_vcpu, 4, vcpu)),
                        E.BIND_VIRQ_port)  # fmt: skip

    def bind_ipi(self, vcpu=0):
        return self._op("EVTCHNOP_bind_ipi", E.EVTCHNOP_bind_ipi, E.BIND_IPI_SIZE,
                        ((E.BIND_IPI_vcpu, 4, vcpu),), E.BIND_IPI_port)  # fmt: skip

    def send(self, port):
        self._op("EVTCHNOP_send", E.EVTCHNOP_send, E.PORT_ARG_SIZE, ((E.PORT_ARG_port, 4, port),))

    def close(self, port):
        self.handlers.pop(port, None)
        self._op("EVTCHNOP_close", E.EVTCHNOP_close, E.PORT_ARG_SIZE,
                 ((E.PORT_ARG_port, 4, port),))  # fmt: skip

    def bind_vcpu(self, port, vcpu):
        self._op("EVTCHNOP_bind_vcpu", E.EVTCHNOP_bind_vcpu, E.BIND_VCPU_SIZE,
                 ((E.BIND_VCPU_port, 4, port), (E.BIND_VCPU_vcpu, 4, vcpu)))  # fmt: skip

    def status(self, port):
        """(EVTCHNSTAT_*, notified vCPU, first u-word, second u-word)."""
        rt = self.rt
        arg = rt.args.alloc(E.STATUS_SIZE)
        try:
            self.hal.write(arg, bytes(E.STATUS_SIZE))
            self.hal.w16(arg + E.STATUS_dom, X.DOMID_SELF)
            self.hal.w32(arg + E.STATUS_port, port)
            rt.hc.check("EVTCHNOP_status", rt.hc.event_channel_op(E.EVTCHNOP_status, arg))
            return (self.hal.r32(arg + E.STATUS_status), self.hal.r32(arg + E.STATUS_vcpu),
                    self.hal.r32(arg + 16), self.hal.r32(arg + 20))  # fmt: skip
        finally:
            rt.args.free(arg)

    def hypercall_unmask(self, port):
        self.stats["unmask_hypercalls"] += 1
        self._op("EVTCHNOP_unmask", E.EVTCHNOP_unmask, E.PORT_ARG_SIZE,
                 ((E.PORT_ARG_port, 4, port),))  # fmt: skip

    # Bitmaps ----------------------------------------------------------------------------------
    def mask(self, port):
        self.hal.test_and_set_bit(self.si.mask_word(port >> 6), port & 63)

    def mask_all(self):
        for w in range(_WORDS):
            self.hal.w64(self.si.mask_word(w), 0xFFFFFFFFFFFFFFFF)

    def is_pending(self, port):
        return (self.hal.r64(self.si.pending_word(port >> 6)) >> (port & 63)) & 1

    def is_masked(self, port):
        return (self.hal.r64(self.si.mask_word(port >> 6)) >> (port & 63)) & 1

    def clear(self, port):
        self.hal.test_and_clear_bit(self.si.pending_word(port >> 6), port & 63)

    def unmask(self, port):
        """Unmask with the chosen algorithm. Xen's EVTCHNOP_unmask notifies only when the mask
        bit is still set, so the hypercall paths keep (or re-set) it before calling."""
        hal, si = self.hal, self.si
        hal.note("unmask", port)  # for the host's trace: hypercalls per unmask
        w, b = port >> 6, port & 63
        policy = self.unmask_policy
        if policy == UNMASK_ALWAYS_HYPERCALL:
            self.hypercall_unmask(port)
            return
        hal.test_and_clear_bit(si.mask_word(w), b)
        if not (hal.r64(si.pending_word(w)) >> b) & 1:
            return
        if policy == UNMASK_HYPERCALL_IF_PENDING:
            # An event arrived while masked: Xen saw the mask and raised nothing. Re-mask so
            # its test_and_clear(mask) succeeds, and let it re-raise the upcall.
            hal.test_and_set_bit(si.mask_word(w), b)
            self.hypercall_unmask(port)
            return
        # Software resend (Mini-OS): raise the upcall ourselves. This relies on Xen injecting
        # because upcall_pending is 1 -- true for the level-like callback vector, false for the
        # per-vCPU LAPIC vector, which fires only on Xen's own 0->1 edge: events get stuck.
        if not hal.test_and_set_bit(self.vi + self.lay.pending_sel, w):
            hal.w8(self.vi + self.lay.upcall_pending, 1)
            arch = self.rt.arch
            if arch.interrupts_enabled():
                flags = arch.save_flags_cli()  # force_evtchn_callback
                while hal.r8(self.vi + self.lay.upcall_pending):
                    self.rt.upcall.handle()
                arch.restore_flags(flags)

    # The demultiplexer ------------------------------------------------------------------------
    def demux(self, dispatch):
        """Run with interrupts off. Clear upcall_pending, take the selector word, and hand
        each pending unmasked port to dispatch(port), resuming round-robin after the last
        port served; loop while Xen raised upcall_pending again meanwhile. Returns how many
        ports were dispatched (0 means the upcall was spurious)."""
        hal, si, lay = self.hal, self.si, self.lay
        vi = self.vi
        served = 0
        while True:
            self.stats["demux_passes"] += 1
            hal.w8(vi + lay.upcall_pending, 0)  # first, or a level callback would re-fire
            sel = hal.xchg64(vi + lay.pending_sel, 0)
            start = self._rr_word
            # The selected words only, round-robin from start: rotate sel so that bit 0 is
            # word start, then take its set bits lowest first (a 64-step scan costs more
            # than the rest of an upcall).
            rot = ((sel >> start) | (sel << (_WORDS - start))) & _ALL_WORDS
            while rot:
                i = _lowest(rot)
                rot &= rot - 1
                w = (start + i) % _WORDS
                from_bit = self._rr_bit if i == 0 else 0
                while True:  # reload each time: events that arrive meanwhile are seen
                    bits = hal.r64(si.pending_word(w)) & ~hal.r64(si.mask_word(w))
                    if not bits:
                        break
                    above = bits >> from_bit
                    b = _lowest(above) + from_bit if above else _lowest(bits)
                    port = (w << 6) | b
                    from_bit = (b + 1) & 63
                    self._rr_word, self._rr_bit = w, from_bit
                    if self.clear_after:
                        dispatch(port)
                        hal.test_and_clear_bit(si.pending_word(w), b)
                    else:
                        hal.test_and_clear_bit(si.pending_word(w), b)
                        dispatch(port)
                    served += 1
                    self.stats["dispatched"] += 1
            if not hal.r8(vi + lay.upcall_pending):
                return served


def pack(size, fields):
    """A little-endian struct of `size` bytes from (offset, width, value) triples."""
    buf = bytearray(size)
    for off, width, value in fields:
        for i in range(width):
            buf[off + i] = (value >> (8 * i)) & 0xFF
    return bytes(buf)


def _lowest(x):
    """Index of the lowest set bit of x > 0 (no int.bit_length on MicroPython)."""
    n = 0
    while not (x >> n) & 0xFFFF:
        n += 16
    while not (x >> n) & 1:
        n += 1
    return n
