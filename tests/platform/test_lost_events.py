# Two ways a guest loses events, each as a scripted, deterministic interleaving against the
# Xen-faithful stub, next to the guest policies that do not lose them (guest-anchors §7.4, §7.6):
#
# 1. Software resend with the per-vCPU LAPIC vector. The port is masked; the backend sends
#    (Xen sets pending, sees the mask, raises nothing); the guest unmasks with interrupts off
#    and, as Mini-OS does, raises the upcall itself by setting upcall_pending. The level-like
#    callback vector is injected because upcall_pending is 1; the LAPIC vector is raised only
#    on Xen's own 0->1 edge of upcall_pending, so it never comes. upcall_pending stays 1, and
#    every later event finds it set and raises nothing either.
# 2. Clearing a port's pending bit after its handler (Solo5). The backend re-sends while the
#    handler runs; Xen finds the bit still set and coalesces; then the guest clears it, and
#    the second event is gone. Clearing first (Mini-OS, Linux, FreeBSD) keeps it.
import pytest
from micropv.runtime.abi import xen as X

MS = 1_000_000
GO = 1  # sync stages: the host acts at each
RESEND = 2
LATER = 3


def backend_pair(machine):
    """Two channels to the backend (domain 0): returns rt.config with their backend ports."""
    be = machine.backend
    return {"bport": be.alloc_unbound(machine.domid), "bport2": be.alloc_unbound(machine.domid)}


def bind(rt, bport):
    ev = rt.events
    port = ev.bind_interdomain(0, bport)
    ev.clear(port)  # Xen marks a freshly bound local port pending; not an event here
    return port


# 1. software resend + lapic ------------------------------------------------------------------
@pytest.mark.parametrize("unmask", ("software-resend", "hypercall-if-pending", "always-hypercall"))
def test_unmask_after_a_masked_send(micropv_guest, callback_method, unmask):
    lost = callback_method == "lapic" and unmask == "software-resend"
    seen = {}

    def on_sync(m, msg):
        if msg.a in (GO, LATER):
            m.backend.send(m.backend_ports[0])  # lands on the guest's port
        if msg.a == LATER:
            m.backend.send(m.backend_ports[1])  # a second, unrelated channel

    def setup(m):
        cfg = backend_pair(m)
        m.backend_ports = (cfg["bport"], cfg["bport2"])
        m.on_sync = on_sync
        return cfg

    def main(rt):
        ev = rt.events  # callback registered, VIRQ_TIMER bound, interrupts on
        lay, vi = rt.layout, rt.shared_info.vcpu_info(0)
        hits = {}
        port = bind(rt, rt.config["bport"])
        port2 = bind(rt, rt.config["bport2"])
        for p in (port, port2):
            hits[p] = 0
            rt.bind(p, lambda p: hits.__setitem__(p, hits[p] + 1))
        seen["ports"] = (port, port2)
        up = rt.upcall
        upcalls0, hc0 = up.upcalls, ev.stats["unmask_hypercalls"]

        def state():
            # Guest memory first: each HAL call is an interrupt window, so an upcall that is
            # deliverable has run before the counters are read.
            mem = {
                "upcall_pending": rt.hal.r8(vi + lay.upcall_pending),
                "pending": ev.is_pending(port),
                "sel": rt.hal.r64(vi + lay.pending_sel),
            }
            mem.update(hits=hits[port], hits2=hits[port2], upcalls=up.upcalls - upcalls0)
            return mem

        ev.mask(port)
        rt.sync(GO)  # the backend sends while the port is masked
        seen["masked"] = state()
        # Unmask with interrupts off, as from an event handler (handlers run with IF=0).
        rt.arch.cli()
        ev.unmask(port)
        rt.arch.sti()
        seen["unmasked"] = state()
        seen["unmask_hypercalls"] = ev.stats["unmask_hypercalls"] - hc0
        rt.sync(LATER)  # the backend sends on both channels
        seen["later"] = state()
        # Wait 1 ms. With the upcall stuck, not even the timer VIRQ can wake the vCPU.
        rt.sleep_until(rt.clock_monotonic() + 1 * MS)
        seen["slept"] = state()

    result = micropv_guest(main, options={"unmask": unmask}, setup=setup, budget_ns=10**9)
    m = result.machine
    port, port2 = seen["ports"]
    # Xen saw the mask: pending set, nothing raised.
    assert seen["masked"] == {"hits": 0, "hits2": 0, "upcalls": 0, "upcall_pending": 0,
                              "pending": 1, "sel": 0}  # fmt: skip
    assert seen["unmask_hypercalls"] == {"software-resend": 0, "hypercall-if-pending": 1,
                                         "always-hypercall": 1}[unmask]  # fmt: skip
    if not lost:
        assert seen["unmasked"] == {"hits": 1, "hits2": 0, "upcalls": 1, "upcall_pending": 0,
                                    "pending": 0, "sel": 0}  # fmt: skip
        assert seen["later"]["hits"] == 2 and seen["later"]["hits2"] == 1
        assert seen["later"]["upcall_pending"] == 0 and seen["later"]["pending"] == 0
        assert (result.status, result.outcome.kind) == (0, "shutdown"), result.outcome.message
        assert seen["slept"]["hits"] == 2 and seen["slept"]["hits2"] == 1
        return
    # Lost: the guest raised upcall_pending itself; no vector was ever raised for it.
    assert seen["unmasked"] == {"hits": 0, "hits2": 0, "upcalls": 0, "upcall_pending": 1,
                                "pending": 1, "sel": 1 << (port >> 6)}  # fmt: skip
    assert not m.vcpus[0].lapic.irr  # nothing waiting in the LAPIC either
    # Later events: port is still pending (coalesced); port2 becomes pending, but
    # upcall_pending is already 1, so Xen's 0->1 edge never happens: silent too.
    assert seen["later"] == {"hits": 0, "hits2": 0, "upcalls": 0, "upcall_pending": 1,
                             "pending": 1, "sel": 1}  # fmt: skip
    assert m.hypervisor.domain.is_pending(port2)
    assert m.hypervisor.domain.stats["coalesced"] == 1
    # The 1 ms sleep never ends: the timer fires, its port goes pending, nothing is raised.
    assert "slept" not in seen
    assert (result.status, result.outcome.kind) == (4, "deadlock")
    assert len(m.trace.of_kind("timer_fire")) == 1
    assert m.hypervisor.domain.is_pending(m.hypervisor.domain.virq_to_port[0][X.VIRQ_TIMER])


# 2. clear-after-handler ----------------------------------------------------------------------
@pytest.mark.parametrize("resend", ("echo", "host"))
@pytest.mark.parametrize("clear", ("first", "after"))
def test_resend_while_the_handler_runs(micropv_guest, callback_method, clear, resend):
    """The backend sends once; while the guest's handler for that port runs, a second event
    arrives on the same port -- either because the handler itself sends to the backend, which
    echoes straight back (resend=echo), or because the host sends at a HAL boundary inside the
    handler (resend=host). Clear-first runs the handler twice; clear-after once."""
    seen = {"calls": [], "resent_at": None}

    def on_sync(m, msg):
        if msg.a == GO:
            m.backend.send(m.bport)

    def setup(m):
        cfg = backend_pair(m)
        m.bport = cfg["bport"]
        m.on_sync = on_sync
        if resend == "echo":
            m.backend.on_event(m.bport, m.backend.send)  # echo whatever the guest sends
        return cfg

    def main(rt):
        ev = rt.events
        m = rt.hal.machine
        port = bind(rt, rt.config["bport"])
        state = {"in_handler": False}

        def handler(p):
            seen["calls"].append(rt.clock_monotonic())
            if len(seen["calls"]) == 1:
                state["in_handler"] = True
                if resend == "echo":
                    ev.send(p)  # the echo lands on p before this returns
                else:
                    rt.hal.r64(rt.shared_info.pending_word(0))  # some work: a HAL boundary
                state["in_handler"] = False

        def boundary(hal, op, addr, size, rw):
            if state["in_handler"] and seen["resent_at"] is None:
                seen["resent_at"] = m.clock.now
                m.backend.send(m.bport)

        if resend == "host":
            rt.hal.boundary_hook = boundary
        rt.bind(port, handler)
        seen["port"] = port
        rt.sync(GO)
        rt.sleep_until(rt.clock_monotonic() + 1 * MS)
        seen["pending_at_end"] = ev.is_pending(port)
        seen["dispatched"] = ev.stats["dispatched"] - 1  # the sleep's own timer event

    result = micropv_guest(main, options={"clear": clear, "handlers": "irq"}, setup=setup,
                           budget_ns=10**9)  # fmt: skip
    assert (result.status, result.outcome.kind) == (0, "shutdown"), result.outcome.message
    m = result.machine
    dom = m.hypervisor.domain
    sends_to_guest = m.backend.stats["sends"]
    assert sends_to_guest == 2  # the first event and the re-send
    if resend == "echo":
        assert [p for _, p in m.backend.received] == [m.bport]  # the handler's one send
    else:
        assert seen["resent_at"] is not None
    assert seen["pending_at_end"] == 0
    if clear == "first":
        assert len(seen["calls"]) == 2  # the re-send found the bit clear: a new event
        assert dom.stats["coalesced"] == 0
    else:
        assert len(seen["calls"]) == 1  # the re-send found the bit still set: coalesced...
        assert dom.stats["coalesced"] == 1  # ...and the clear after the handler erased it
    assert seen["dispatched"] == len(seen["calls"])
