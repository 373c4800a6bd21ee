# The guest's event-channel layer over a MemHAL: the demultiplexer (clear order, round-robin,
# re-raised upcalls), the three unmask algorithms and struct packing. Runs under pytest and
# MicroPython: plain functions, plain asserts.
from _rt import rt

hal_mod = rt("hal")
evtchn = rt("evtchn")
argstack = rt("argstack")
hypercall = rt("hypercall")
shared_info = rt("shared_info")
SI = rt("abi.shared_info")
E = rt("abi.event_channel")
X = rt("abi.xen")

GFN = 0x10  # shared_info at 0x10000 in the MemHAL
LAY = SI.X86_64


class FakeArch:
    """Records hypercalls; `enabled` stands for RFLAGS.IF."""

    def __init__(self, hal):
        self.hal = hal
        self.calls = []
        self.enabled = False

    def hypercall(self, nr, args):
        cmd, arg = args
        port = self.hal.r32(arg) if cmd in (E.EVTCHNOP_unmask, E.EVTCHNOP_send) else None
        self.calls.append((nr, cmd, port))
        return 0

    def interrupts_enabled(self):
        return self.enabled

    def save_flags_cli(self):
        was = self.enabled
        self.enabled = False
        return was

    def restore_flags(self, flags):
        self.enabled = flags


class FakeUpcall:
    def __init__(self, rt_):
        self.rt = rt_
        self.runs = 0
        self.seen = []

    def handle(self):
        self.runs += 1
        return self.rt.events.demux(self.seen.append)


class FakeRT:
    def __init__(self, unmask="hypercall-if-pending", clear="first"):
        self.hal = hal_mod.MemHAL(0x22000)
        self.layout = LAY
        self.vcpu_id = 0
        self.shared_info = shared_info.SharedInfo(self.hal, LAY, GFN)
        self.args = argstack.ArgStack(0x20000, 0x1000)
        self.arch = FakeArch(self.hal)
        self.hc = hypercall.Hypercalls(self.arch)
        self.upcall = FakeUpcall(self)
        self.events = evtchn.EventChannels(self, unmask, clear)


def raise_port(r, port, masked=False):
    """What Xen's set_pending does, written straight into the MemHAL."""
    si, hal = r.shared_info, r.hal
    hal.test_and_set_bit(si.pending_word(port >> 6), port & 63)
    if masked:
        hal.test_and_set_bit(si.mask_word(port >> 6), port & 63)
        return
    vi = si.vcpu_info(0)
    hal.test_and_set_bit(vi + LAY.pending_sel, port >> 6)
    hal.w8(vi + LAY.upcall_pending, 1)


def pending(r, port):
    return r.events.is_pending(port)


def test_pack_is_little_endian_at_offsets():
    assert evtchn.pack(8, ((0, 2, 0x7FF0), (4, 4, 0x01020304))) == b"\xf0\x7f\0\0\x04\x03\x02\x01"


def test_demux_serves_pending_unmasked_ports_and_clears_state():
    r = FakeRT()
    raise_port(r, 3)
    raise_port(r, 70)
    raise_port(r, 71, masked=True)  # pending but masked: not served
    seen = []
    assert r.events.demux(seen.append) == 2
    assert seen == [3, 70]
    vi = r.shared_info.vcpu_info(0)
    assert r.hal.r8(vi + LAY.upcall_pending) == 0
    assert r.hal.r64(vi + LAY.pending_sel) == 0
    assert not pending(r, 3) and not pending(r, 70) and pending(r, 71)


def test_demux_clears_before_the_handler_by_default():
    r = FakeRT()
    raise_port(r, 5)
    during = []
    r.events.demux(lambda p: during.append(pending(r, p)))
    assert during == [0]


def test_demux_clear_after_runs_the_handler_with_the_bit_still_set():
    r = FakeRT(clear="after")
    raise_port(r, 5)
    during = []
    r.events.demux(lambda p: during.append(pending(r, p)))
    assert during == [1] and not pending(r, 5)


def test_demux_resumes_round_robin_after_the_last_port_served():
    r = FakeRT()
    for p in (1, 2, 3):
        raise_port(r, p)
    first = []
    r.events.demux(first.append)
    assert first == [1, 2, 3]
    raise_port(r, 1)
    raise_port(r, 5)
    second = []
    r.events.demux(second.append)
    assert second == [5, 1]  # resumes after port 3, wraps to 1


def test_demux_loops_while_the_upcall_was_raised_again():
    r = FakeRT()
    raise_port(r, 1)
    seen = []

    def dispatch(p):
        seen.append(p)
        if p == 1:
            raise_port(r, 200)  # another word, raised while we were busy

    assert r.events.demux(dispatch) == 2
    assert seen == [1, 200]


def test_demux_with_nothing_pending_is_spurious():
    r = FakeRT()
    vi = r.shared_info.vcpu_info(0)
    r.hal.w8(vi + LAY.upcall_pending, 1)
    assert r.events.demux(lambda p: None) == 0


def test_unmask_hypercall_if_pending_remasks_then_calls_xen():
    r = FakeRT("hypercall-if-pending")
    raise_port(r, 9, masked=True)
    r.events.unmask(9)
    assert r.events.is_masked(9)  # set again, so Xen's test_and_clear(mask) succeeds
    assert r.arch.calls == [(X.HYPERVISOR_event_channel_op, E.EVTCHNOP_unmask, 9)]


def test_unmask_hypercall_if_pending_skips_xen_when_nothing_is_pending():
    r = FakeRT("hypercall-if-pending")
    r.events.mask(9)
    r.events.unmask(9)
    assert not r.events.is_masked(9) and r.arch.calls == []


def test_unmask_always_hypercall_calls_xen_every_time():
    r = FakeRT("always-hypercall")
    r.events.mask(9)
    r.events.unmask(9)
    r.events.unmask(9)
    assert len(r.arch.calls) == 2 and r.events.is_masked(9)  # Xen clears the mask, not us


def test_unmask_software_resend_raises_the_upcall_itself():
    r = FakeRT("software-resend")
    raise_port(r, 9, masked=True)
    r.events.unmask(9)
    vi = r.shared_info.vcpu_info(0)
    assert r.arch.calls == []
    assert not r.events.is_masked(9)
    assert r.hal.r64(vi + LAY.pending_sel) == 1
    assert r.hal.r8(vi + LAY.upcall_pending) == 1  # interrupts were off: left for Xen
    assert r.upcall.runs == 0


def test_unmask_software_resend_runs_the_upcall_when_interrupts_are_on():
    r = FakeRT("software-resend")
    r.arch.enabled = True
    raise_port(r, 9, masked=True)
    r.events.unmask(9)
    assert r.upcall.runs == 1 and r.upcall.seen == [9]
    assert r.arch.enabled  # flags restored


def test_mask_all_masks_every_port():
    r = FakeRT()
    r.events.mask_all()
    assert r.events.is_masked(0) and r.events.is_masked(4095)


def test_unknown_policies_are_refused():
    for kwargs in ({"unmask": "sometimes"}, {"clear": "never"}):
        try:
            FakeRT(**kwargs)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % kwargs)
