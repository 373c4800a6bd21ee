# The Xen stub's event-channel, HVM-param, timer and scheduler semantics, one test per rule of
# guest-anchors §12.4 and xen-abi §15 / §18 ("Stub must reproduce"). The guests here make raw
# hypercalls with argument structs built in guest memory and look at the answers; the host
# side (machine.hypervisor.domain, machine.backend, machine.clock, machine.trace) is read or
# driven directly. Nothing here goes through the runtime's EventChannels/Upcall policies.
import dataclasses
import struct

import pytest
from micropv.platform.clock import Timer
from micropv.platform.machine import Machine
from micropv.platform.xen import evtchn as XE
from micropv.platform.xen.errors import XenError
from micropv.runtime.abi import event_channel as E
from micropv.runtime.abi import hvm as H
from micropv.runtime.abi import sched as S
from micropv.runtime.abi import vcpu as V
from micropv.runtime.abi import xen as X

from micropv import boards

BOARD = boards.get("pvh-x86_64")
BOARD2 = dataclasses.replace(BOARD, vcpus=2)
MS = 1_000_000
VEC = 0x20
U64 = (1 << 64) - 1


# Running ---------------------------------------------------------------------------------------
def run(main, board=BOARD, setup=None, budget_ns=10 * 10**9):
    """Run main(rt, m) on a fresh traced machine; setup(m) may return the guest's config."""
    m = Machine(board, budget_ns=budget_ns, trace=True)
    config = setup(m) if setup else None
    result = m.run_python(lambda rt: main(rt, m), None, config)
    return m, result


def assert_ok(result):
    assert (result.status, result.outcome.kind) == (0, "shutdown"), (
        result.outcome.message + "\n" + result.outcome.report
    )


def events(m, kind, **match):
    return [e for e in m.trace.of_kind(kind) if all(e[3].get(k) == v for k, v in match.items())]


# Raw hypercalls with structs in guest memory ----------------------------------------------------
def _op(rt, call, fmt, *values):
    """Pack fmt into guest memory, call(arg), return (rc, the struct as Xen left it)."""
    size = struct.calcsize(fmt)
    arg = rt.args.alloc(size)
    try:
        rt.hal.write(arg, struct.pack(fmt, *values))
        rc = call(arg)
        return rc, struct.unpack(fmt, rt.hal.read(arg, size))
    finally:
        rt.args.free(arg)


def _evtchn(rt, cmd, fmt, *values):
    return _op(rt, lambda a: rt.hc.event_channel_op(cmd, a), fmt, *values)


def _port_or_error(rc, out):
    return out if rc == 0 else rc


def alloc_unbound(rt, remote=X.DOMID_SELF, dom=X.DOMID_SELF):
    """The new port, or -errno (the same convention for every binder below)."""
    rc, v = _evtchn(rt, E.EVTCHNOP_alloc_unbound, "<HHI", dom, remote, 0xDEAD)
    return _port_or_error(rc, v[2])


def bind_interdomain(rt, remote_dom, remote_port):
    rc, v = _evtchn(rt, E.EVTCHNOP_bind_interdomain, "<HxxII", remote_dom, remote_port, 0xDEAD)
    return _port_or_error(rc, v[2])


def bind_virq(rt, virq, vcpu=0):
    rc, v = _evtchn(rt, E.EVTCHNOP_bind_virq, "<III", virq, vcpu, 0xDEAD)
    return _port_or_error(rc, v[2])


def bind_ipi(rt, vcpu=0):
    rc, v = _evtchn(rt, E.EVTCHNOP_bind_ipi, "<II", vcpu, 0xDEAD)
    return _port_or_error(rc, v[1])


def send(rt, port):
    return _evtchn(rt, E.EVTCHNOP_send, "<I", port)[0]


def close(rt, port):
    return _evtchn(rt, E.EVTCHNOP_close, "<I", port)[0]


def unmask(rt, port):
    return _evtchn(rt, E.EVTCHNOP_unmask, "<I", port)[0]


def bind_vcpu(rt, port, vcpu):
    return _evtchn(rt, E.EVTCHNOP_bind_vcpu, "<II", port, vcpu)[0]


def status(rt, port, dom=X.DOMID_SELF):
    """(EVTCHNSTAT_*, vcpu, u word 0, u word 1), or -errno."""
    rc, v = _evtchn(rt, E.EVTCHNOP_status, "<HxxIIIII", dom, port, 99, 99, 0, 0)
    return v[2:] if rc == 0 else rc


def set_param(rt, index, value, domid=X.DOMID_SELF):
    return _op(rt, lambda a: rt.hc.hvm_op(H.HVMOP_set_param, a), "<HxxIQ", domid, index, value)[0]


def get_param(rt, index):
    rc, v = _op(rt, lambda a: rt.hc.hvm_op(H.HVMOP_get_param, a), "<HxxIQ", X.DOMID_SELF, index,
                0xDEAD)  # fmt: skip
    return v[2] if rc == 0 else rc


def set_upcall_vector(rt, vcpu, vector):
    return _op(rt, lambda a: rt.hc.hvm_op(H.HVMOP_set_evtchn_upcall_vector, a), "<IB3x", vcpu,
               vector)[0]  # fmt: skip


def singleshot(rt, deadline, vcpu=0, flags=0):
    return _op(rt, lambda a: rt.hc.vcpu_op(V.VCPUOP_set_singleshot_timer, vcpu, a), "<QI4x",
               deadline & U64, flags)[0]  # fmt: skip


def periodic(rt, period, vcpu=0):
    return _op(rt, lambda a: rt.hc.vcpu_op(V.VCPUOP_set_periodic_timer, vcpu, a), "<Q",
               period & U64)[0]  # fmt: skip


def register_vcpu_info(rt, gfn, offset, vcpu=0):
    return _op(rt, lambda a: rt.hc.vcpu_op(V.VCPUOP_register_vcpu_info, vcpu, a), "<QII", gfn,
               offset, 0)[0]  # fmt: skip


def poll(rt, ports, timeout=0, nr=None, ports_ptr=None):
    """SCHEDOP_poll; nr and ports_ptr override what the struct says."""
    n = len(ports)
    buf = rt.args.alloc(S.POLL_SIZE + 4 * n)
    try:
        arr = buf + S.POLL_SIZE
        if n:
            rt.hal.write(arr, struct.pack("<%dI" % n, *ports))
        ptr = arr if ports_ptr is None else ports_ptr
        rt.hal.write(buf, struct.pack("<QIxxxxQ", ptr, n if nr is None else nr, timeout & U64))
        return rt.hc.sched_op(S.SCHEDOP_poll, buf)
    finally:
        rt.args.free(buf)


def set_timer(rt, deadline):
    return rt.hc.set_timer_op(deadline & U64)


def now(rt):
    return rt.clock_monotonic()


# Host-side views (no HAL call, so no interrupt window) ------------------------------------------
def vcpu_info(m, vcpu=0):
    """(upcall_pending, upcall_mask, pending_sel) of the vCPU's current vcpu_info."""
    lay = m.hypervisor.layout
    buf, base = m.hypervisor.vcpus[vcpu].vcpu_info()
    sel = struct.unpack_from("<Q", buf, base + lay.pending_sel)[0]
    return buf[base + lay.upcall_pending], buf[base + lay.upcall_mask], sel


def pending_words(m):
    si, lay = m.hypervisor.shared_info, m.hypervisor.layout
    return [si.u64(lay.evtchn_pending + 8 * w) for w in range(64)]


def guest_mask(rt, port, on=True):
    """The guest sets or clears a mask bit itself, as its unmask code does."""
    addr = rt.shared_info.mask_word(port >> 6)
    if on:
        rt.hal.test_and_set_bit(addr, port & 63)
    else:
        rt.hal.test_and_clear_bit(addr, port & 63)


def vector_callback(rt, handler, vector=VEC):
    """HVM_PARAM_CALLBACK_IRQ type vector, with handler(vector) at that vector."""
    rt.arch.set_vector(vector, handler)
    assert set_param(rt, H.HVM_PARAM_CALLBACK_IRQ,
                     (H.HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | vector) == 0  # fmt: skip


def clear_upcall_pending(rt, m):
    rt.hal.w8(rt.shared_info.vcpu_info(0) + m.hypervisor.layout.upcall_pending, 0)


def at(m, t, fn, name="host"):
    """Run fn() on the host at virtual time t."""
    m.clock.set_timer(Timer(fn, name), t)


# Port allocation --------------------------------------------------------------------------------
def test_port_0_is_reserved_and_the_first_port_handed_out_is_1():
    seen = {}

    def main(rt, m):
        seen["first"] = alloc_unbound(rt)
        seen["status0"] = status(rt, 0)
        seen["close0"] = close(rt, 0)
        seen["send0"] = send(rt, 0)
        seen["bind_vcpu0"] = bind_vcpu(rt, 0, 0)

    m, result = run(main)
    assert_ok(result)
    assert seen["first"] == 1
    assert seen["status0"][0] == E.EVTCHNSTAT_closed
    assert seen["close0"] == seen["send0"] == seen["bind_vcpu0"] == -X.EINVAL
    assert m.hypervisor.domain.channels[0].state == XE.ECS_RESERVED


def test_alloc_hands_out_the_lowest_free_port_and_reuses_a_closed_one():
    seen = []

    def main(rt, m):
        seen.extend([bind_ipi(rt), alloc_unbound(rt), bind_virq(rt, X.VIRQ_TIMER)])  # 1, 2, 3
        seen.append(close(rt, 2))
        seen.append(alloc_unbound(rt))  # 2 again
        seen.append(close(rt, 1))
        seen.append(bind_virq(rt, X.VIRQ_DEBUG))  # 1 again
        seen.append(bind_ipi(rt))  # 4

    m, result = run(main)
    assert_ok(result)
    assert seen == [1, 2, 3, 0, 2, 0, 1, 4]


class _Table(XE.Domain):
    """A bare port table: no bitmaps behind it."""

    def clear_pending(self, port):
        pass


def test_alloc_is_enospc_when_ports_run_out_small_table():
    d = _Table(5, 1, max_port=3)
    assert [d.alloc_unbound(X.DOMID_SELF) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(XenError) as e:
        d.bind_ipi(0)
    assert e.value.errno == X.ENOSPC
    d.close(2)
    assert d.bind_ipi(0) == 2
    with pytest.raises(XenError) as e:
        d.alloc_unbound(X.DOMID_SELF)
    assert e.value.errno == X.ENOSPC


def test_alloc_is_enospc_when_the_guest_domain_max_port_is_reached():
    seen = []

    def setup(m):
        m.hypervisor.domain.max_port = 2

    def main(rt, m):
        seen.extend([bind_ipi(rt), alloc_unbound(rt), bind_virq(rt, X.VIRQ_TIMER), bind_ipi(rt)])

    m, result = run(main, setup=setup)
    assert_ok(result)
    assert seen == [1, 2, -X.ENOSPC, -X.ENOSPC]


def test_alloc_is_enospc_after_1023_ports_libxl_default():
    seen = {}

    def main(rt, m):
        ports = []
        while True:
            p = alloc_unbound(rt)
            if p < 0:
                seen["error"] = p
                break
            ports.append(p)
        seen["ports"] = ports
        seen["ipi"] = bind_ipi(rt)  # every allocator is out of space
        close(rt, 500)
        seen["reused"] = bind_ipi(rt)

    m, result = run(main)
    assert_ok(result)
    assert seen["ports"] == list(range(1, 1024))
    assert seen["error"] == seen["ipi"] == -X.ENOSPC
    assert seen["reused"] == 500


# Send ---------------------------------------------------------------------------------------
def test_send_on_an_unbound_port_returns_0_and_sets_nothing():
    seen = {}

    def setup(m):
        return {"bp": m.backend.alloc_unbound(m.domid)}

    def main(rt, m):
        p = alloc_unbound(rt, remote=0)  # unbound, for dom0
        seen["rc"] = send(rt, p)
        seen["pending"] = pending_words(m)
        seen["vi"] = vcpu_info(m)
        seen["backend_rc"] = m.backend.send(rt.config["bp"])  # dom0's unbound port, too

    m, result = run(main, setup=setup)
    assert_ok(result)
    assert seen["rc"] == 0 and seen["backend_rc"] == 0
    assert seen["pending"] == [0] * 64
    assert seen["vi"] == (0, 0, 0)
    assert m.trace.of_kind("set_pending") == []
    assert m.backend.received == []


def test_send_on_a_virq_port_is_einval():
    seen = {}

    def main(rt, m):
        p = bind_virq(rt, X.VIRQ_TIMER)
        seen["rc"] = send(rt, p)
        seen["pending"] = m.hypervisor.domain.is_pending(p)

    m, result = run(main)
    assert_ok(result)
    assert seen == {"rc": -X.EINVAL, "pending": False}


def test_send_on_an_invalid_or_free_port_is_einval():
    seen = []

    def main(rt, m):
        bind_ipi(rt)  # port 1; ports 2..63 are valid but free, 64+ not allocated
        seen.extend(
            [send(rt, 7), send(rt, 64), send(rt, 4095), send(rt, 4096), send(rt, U64 >> 32)]
        )

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EINVAL] * 5


def test_send_on_an_ipi_port_sets_it_pending_and_raises_the_upcall():
    seen = {}

    def main(rt, m):
        p = bind_ipi(rt)
        seen["rc"] = send(rt, p)
        seen["pending"] = m.hypervisor.domain.is_pending(p)
        seen["vi"] = vcpu_info(m)

    m, result = run(main)
    assert_ok(result)
    assert seen == {"rc": 0, "pending": True, "vi": (1, 0, 1)}
    assert len(m.trace.of_kind("upcall_pending")) == 1


# Close -----------------------------------------------------------------------------------------
def test_close_keeps_the_mask_bit_but_clears_pending():
    seen = {}

    def main(rt, m):
        d = m.hypervisor.domain
        p = bind_ipi(rt)
        guest_mask(rt, p)
        send(rt, p)
        seen["before"] = (d.is_pending(p), d.is_masked(p))
        seen["rc"] = close(rt, p)
        seen["after"] = (d.is_pending(p), d.is_masked(p))
        seen["rebound"] = bind_ipi(rt)
        seen["rebound_masked"] = d.is_masked(p)

    m, result = run(main)
    assert_ok(result)
    assert seen["before"] == (True, True)
    assert seen["rc"] == 0
    assert seen["after"] == (False, True)
    assert seen["rebound"] == 1 and seen["rebound_masked"]


def test_close_of_a_free_port_is_einval():
    seen = []

    def main(rt, m):
        p = bind_ipi(rt)
        seen.append(close(rt, 5))  # valid, never used
        seen.append(close(rt, p))
        seen.append(close(rt, p))  # twice
        seen.append(close(rt, 100))  # beyond the allocated bucket

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EINVAL, 0, -X.EINVAL, -X.EINVAL]


def test_close_of_a_virq_port_frees_the_binding():
    seen = []

    def main(rt, m):
        p = bind_virq(rt, X.VIRQ_TIMER)
        seen.append(bind_virq(rt, X.VIRQ_TIMER))  # -EEXIST while bound
        seen.append(close(rt, p))
        seen.append(bind_virq(rt, X.VIRQ_TIMER))  # same port again

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EEXIST, 0, 1]


def test_closing_one_end_of_an_interdomain_channel_returns_the_other_to_unbound():
    seen = {}

    def setup(m):
        return {"bp": m.backend.alloc_unbound(m.domid)}

    def main(rt, m):
        be, bp = m.backend, rt.config["bp"]
        lp = bind_interdomain(rt, 0, bp)
        seen["bound"] = (status(rt, lp), be.status(bp))
        seen["close"] = close(rt, lp)
        seen["backend_after_guest_close"] = be.status(bp)
        # The unbound end names the closer: only the guest may bind it again.
        try:
            be.bind_interdomain(X.DOMID_SELF, bp)
        except XenError as e:
            seen["backend_loopback"] = -e.errno
        lp = bind_interdomain(rt, 0, bp)
        seen["rebound"] = lp
        be.close(bp)
        seen["guest_after_backend_close"] = status(rt, lp)
        seen["send_on_orphan"] = send(rt, lp)  # now unbound: dropped, 0

    m, result = run(main, setup=setup)
    assert_ok(result)
    bp = 1
    guest, backend = seen["bound"]
    assert guest == (E.EVTCHNSTAT_interdomain, 0, 0, bp)
    assert backend == (E.EVTCHNSTAT_interdomain, 0, {"dom": m.domid, "port": 1})
    assert seen["close"] == 0
    assert seen["backend_after_guest_close"] == (E.EVTCHNSTAT_unbound, 0, {"dom": m.domid})
    assert seen["backend_loopback"] == -X.EINVAL
    assert seen["rebound"] == 1
    assert seen["guest_after_backend_close"] == (E.EVTCHNSTAT_unbound, 0, 0, 0)
    assert seen["send_on_orphan"] == 0


# set_pending -----------------------------------------------------------------------------------
def test_set_pending_on_a_pending_port_coalesces_with_no_second_upcall():
    seen = {}

    def main(rt, m):
        d = m.hypervisor.domain
        entries = []

        def handler(v):
            entries.append(v)
            clear_upcall_pending(rt, m)

        vector_callback(rt, handler)  # IF=0 since boot: nothing is delivered yet
        p = bind_ipi(rt)
        d.set_pending(p)
        d.set_pending(p)
        send(rt, p)
        seen["edges"] = len(m.trace.of_kind("upcall_pending"))
        seen["coalesced"] = [e[3]["coalesced"] for e in m.trace.of_kind("set_pending")]
        seen["stats"] = dict(d.stats)
        rt.arch.sti()
        for _ in range(3):
            rt.hal.r8(rt.shared_info.vcpu_info(0))
        seen["entries"] = entries

    m, result = run(main)
    assert_ok(result)
    assert seen["edges"] == 1
    assert seen["coalesced"] == [False, True, True]
    assert seen["stats"]["set_pending"] == 3 and seen["stats"]["coalesced"] == 2
    assert seen["entries"] == [VEC]


def test_set_pending_on_a_pending_port_does_not_wake_pollers():
    seen = {}

    def main(rt, m):
        d = m.hypervisor.domain
        a, b, c = bind_ipi(rt), bind_ipi(rt), bind_ipi(rt)
        # Control: polling several ports, any newly pending port wakes the poller.
        t0 = now(rt)
        at(m, t0 + 1 * MS, lambda: d.set_pending(a))
        poll(rt, [b, c], t0 + 5 * MS)
        seen["woken_at"] = m.trace.of_kind("wake")[-1][0] - t0
        # a is pending now: setting it again coalesces and wakes nobody.
        t0 = now(rt)
        at(m, t0 + 1 * MS, lambda: d.set_pending(a))
        poll(rt, [b, c], t0 + 5 * MS)
        seen["coalesced_wake"] = m.trace.of_kind("wake")[-1][0] - t0

    m, result = run(main)
    assert_ok(result)
    assert seen["woken_at"] == 1 * MS
    assert seen["coalesced_wake"] == 5 * MS


# bind_interdomain ------------------------------------------------------------------------------
def test_bind_interdomain_marks_the_new_local_port_pending():
    seen = {}

    def setup(m):
        return {"bp": m.backend.alloc_unbound(m.domid)}

    def main(rt, m):
        lp = bind_interdomain(rt, 0, rt.config["bp"])
        seen["lp"] = lp
        seen["pending"] = m.hypervisor.domain.is_pending(lp)
        seen["vi"] = vcpu_info(m)

    m, result = run(main, setup=setup)
    assert_ok(result)
    assert seen["lp"] == 1 and seen["pending"]
    assert seen["vi"] == (1, 0, 1)
    assert [e[3]["port"] for e in m.trace.of_kind("set_pending")] == [1]


def test_bind_interdomain_loopback_with_domid_self():
    seen = {}

    def main(rt, m):
        a = alloc_unbound(rt)  # remote DOMID_SELF: translated to our own id
        seen["unbound"] = status(rt, a)
        b = bind_interdomain(rt, X.DOMID_SELF, a)
        seen["ends"] = (status(rt, a), status(rt, b))
        m.hypervisor.domain.clear_pending(b)
        send(rt, b)
        seen["a_pending"] = m.hypervisor.domain.is_pending(a)

    m, result = run(main)
    assert_ok(result)
    assert seen["unbound"] == (E.EVTCHNSTAT_unbound, 0, m.domid, 0)
    assert seen["ends"] == ((E.EVTCHNSTAT_interdomain, 0, m.domid, 2),
                            (E.EVTCHNSTAT_interdomain, 0, m.domid, 1))  # fmt: skip
    assert seen["a_pending"]


def test_bind_interdomain_to_a_port_not_unbound_for_us_is_einval():
    seen = []

    def setup(m):
        be = m.backend
        return {"other": be.alloc_unbound(7), "ours": be.alloc_unbound(m.domid)}

    def main(rt, m):
        seen.append(bind_interdomain(rt, 0, rt.config["other"]))  # unbound for domain 7
        seen.append(bind_interdomain(rt, 0, rt.config["ours"]))  # fine
        seen.append(bind_interdomain(rt, 0, rt.config["ours"]))  # already interdomain
        seen.append(bind_interdomain(rt, 0, 9))  # free
        seen.append(bind_interdomain(rt, 0, 0))  # reserved
        seen.append(bind_interdomain(rt, 0, 500))  # not a valid port of dom0
        seen.append(bind_ipi(rt))  # the failures used up no local port

    m, result = run(main, setup=setup)
    assert_ok(result)
    assert seen == [-X.EINVAL, 1, -X.EINVAL, -X.EINVAL, -X.EINVAL, -X.EINVAL, 2]


def test_bind_interdomain_to_an_unknown_domain_is_esrch():
    seen = []

    def main(rt, m):
        seen.append(bind_interdomain(rt, 42, 1))
        seen.append(bind_interdomain(rt, X.DOMID_INVALID, 1))

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.ESRCH, -X.ESRCH]


def test_alloc_unbound_for_another_domain_is_refused():
    seen = []

    def main(rt, m):
        seen.append(alloc_unbound(rt, dom=0))  # dom0 exists: not ours to allocate in
        seen.append(alloc_unbound(rt, dom=42))  # no such domain
        seen.append(alloc_unbound(rt, dom=m.domid))  # our own id is fine

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EPERM, -X.ESRCH, 1]


# bind_virq ---------------------------------------------------------------------------------------
def test_bind_virq_24_or_more_is_einval():
    seen = []

    def main(rt, m):
        seen.extend(
            [bind_virq(rt, X.NR_VIRQS), bind_virq(rt, 1000), bind_virq(rt, X.NR_VIRQS - 1)]
        )

    m, result = run(main)
    assert_ok(result)
    assert seen[:2] == [-X.EINVAL, -X.EINVAL]
    assert seen[2] == -X.EBUSY  # VIRQ_ARCH_7 is global (and not ours): valid number, though


def test_bind_virq_global_on_a_vcpu_other_than_0_is_einval():
    seen = []

    def main(rt, m):
        seen.append(bind_virq(rt, X.VIRQ_CONSOLE, 1))
        seen.append(bind_virq(rt, X.VIRQ_ARGO, 1))  # per-domain counts as global
        seen.append(bind_virq(rt, X.VIRQ_CONSOLE, 7))  # checked before the vCPU exists

    m, result = run(main, board=BOARD2)
    assert_ok(result)
    assert seen == [-X.EINVAL] * 3


def test_bind_virq_on_a_missing_vcpu_is_enoent():
    seen = []

    def main(rt, m):
        seen.append(bind_virq(rt, X.VIRQ_TIMER, 1))
        seen.append(bind_virq(rt, X.VIRQ_DEBUG, 0xFFFFFFFF))

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.ENOENT, -X.ENOENT]


def test_bind_virq_global_is_ebusy_but_per_domain_and_per_vcpu_bind():
    seen = []

    def main(rt, m):
        seen.append(bind_virq(rt, X.VIRQ_CONSOLE))
        seen.append(bind_virq(rt, X.VIRQ_DOM_EXC))
        seen.append(bind_virq(rt, X.VIRQ_ARGO))
        seen.append(bind_virq(rt, X.VIRQ_TIMER, 1))  # per-vCPU: any existing vCPU

    m, result = run(main, board=BOARD2)
    assert_ok(result)
    assert seen == [-X.EBUSY, -X.EBUSY, 1, 2]


def test_bind_virq_twice_on_the_same_vcpu_is_eexist():
    seen = []

    def main(rt, m):
        seen.append(bind_virq(rt, X.VIRQ_TIMER, 0))
        seen.append(bind_virq(rt, X.VIRQ_TIMER, 0))
        seen.append(bind_virq(rt, X.VIRQ_TIMER, 1))  # another vCPU has its own
        seen.append(bind_virq(rt, X.VIRQ_ARGO))
        seen.append(bind_virq(rt, X.VIRQ_ARGO))

    m, result = run(main, board=BOARD2)
    assert_ok(result)
    assert seen == [1, -X.EEXIST, 2, 3, -X.EEXIST]


def test_virq_timer_is_delivered_only_when_bound():
    seen = {}

    def main(rt, m):
        d = m.hypervisor.domain
        ipi = bind_ipi(rt)
        set_timer(rt, 1)  # in the past: fires at once, but nothing listens
        t0 = now(rt)
        set_timer(rt, t0 + 1 * MS)
        poll(rt, [ipi], t0 + 3 * MS)
        seen["fired_unbound"] = len(m.trace.of_kind("timer_fire"))
        seen["pending_unbound"] = pending_words(m)
        seen["vi_unbound"] = vcpu_info(m)
        seen["set_pending_unbound"] = len(m.trace.of_kind("set_pending"))
        p = bind_virq(rt, X.VIRQ_TIMER)
        set_timer(rt, 1)
        seen["pending_bound"] = d.is_pending(p)

    m, result = run(main)
    assert_ok(result)
    assert seen["fired_unbound"] == 2
    assert seen["pending_unbound"] == [0] * 64
    assert seen["vi_unbound"] == (0, 0, 0)
    assert seen["set_pending_unbound"] == 0
    assert seen["pending_bound"]


# bind_vcpu and status ------------------------------------------------------------------------
def test_bind_vcpu_moves_unbound_interdomain_and_global_virq_ports_only():
    seen = {}

    def setup(m):
        return {"bp": m.backend.alloc_unbound(m.domid)}

    def main(rt, m):
        unbound = alloc_unbound(rt, remote=0)
        inter = bind_interdomain(rt, 0, rt.config["bp"])
        argo = bind_virq(rt, X.VIRQ_ARGO)
        timer = bind_virq(rt, X.VIRQ_TIMER, 1)
        ipi = bind_ipi(rt, 1)
        seen["ok"] = [bind_vcpu(rt, p, 1) for p in (unbound, inter, argo)]
        seen["vcpus"] = [status(rt, p)[1] for p in (unbound, inter, argo)]
        seen["refused"] = [bind_vcpu(rt, timer, 0), bind_vcpu(rt, ipi, 0), bind_vcpu(rt, 30, 1),
                           bind_vcpu(rt, 0, 1), bind_vcpu(rt, 500, 1)]  # fmt: skip
        seen["no_vcpu"] = bind_vcpu(rt, unbound, 2)
        # Events follow the binding: the interdomain port now notifies vCPU 1.
        m.hypervisor.domain.clear_pending(inter)
        m.backend.send(rt.config["bp"])
        seen["vcpu1_sel"] = vcpu_info(m, 1)[2]

    m, result = run(main, board=BOARD2, setup=setup)
    assert_ok(result)
    assert seen["ok"] == [0, 0, 0]
    assert seen["vcpus"] == [1, 1, 1]
    assert seen["refused"] == [-X.EINVAL] * 5
    assert seen["no_vcpu"] == -X.ENOENT
    assert seen["vcpu1_sel"] == 1


def test_status_reports_each_state():
    seen = {}

    def setup(m):
        return {"bp": m.backend.alloc_unbound(m.domid)}

    def main(rt, m):
        seen["reserved"] = status(rt, 0)
        seen["free"] = status(rt, 10)
        seen["invalid"] = status(rt, 200)
        seen["unbound_self"] = status(rt, alloc_unbound(rt))  # port 1
        seen["unbound_dom0"] = status(rt, alloc_unbound(rt, remote=0))  # port 2
        seen["interdomain"] = status(rt, bind_interdomain(rt, 0, rt.config["bp"]))  # 3
        seen["virq"] = status(rt, bind_virq(rt, X.VIRQ_DEBUG, 1))  # 4
        seen["ipi"] = status(rt, bind_ipi(rt, 1))  # 5
        seen["other_dom"] = status(rt, 1, dom=0)
        seen["unknown_dom"] = status(rt, 1, dom=42)

    m, result = run(main, board=BOARD2, setup=setup)
    assert_ok(result)
    assert seen["reserved"][:2] == (E.EVTCHNSTAT_closed, 0)
    assert seen["free"][:2] == (E.EVTCHNSTAT_closed, 0)
    assert seen["invalid"] == -X.EINVAL
    assert seen["unbound_self"] == (E.EVTCHNSTAT_unbound, 0, m.domid, 0)
    assert seen["unbound_dom0"] == (E.EVTCHNSTAT_unbound, 0, 0, 0)
    assert seen["interdomain"] == (E.EVTCHNSTAT_interdomain, 0, 0, 1)
    assert seen["virq"] == (E.EVTCHNSTAT_virq, 1, X.VIRQ_DEBUG, 0)
    assert seen["ipi"][:2] == (E.EVTCHNSTAT_ipi, 1)
    assert seen["other_dom"] == -X.EPERM
    assert seen["unknown_dom"] == -X.ESRCH


# unmask --------------------------------------------------------------------------------------
def test_unmask_reraises_only_if_the_mask_bit_was_still_set():
    seen = {}

    def main(rt, m):
        entries = []

        def handler(v):
            entries.append(v)
            clear_upcall_pending(rt, m)

        vector_callback(rt, handler)
        p = bind_ipi(rt)
        guest_mask(rt, p)
        send(rt, p)  # masked: pending, but no selector bit and no upcall
        seen["masked_send"] = vcpu_info(m)
        guest_mask(rt, p, on=False)  # the guest clears the mask itself...
        seen["rc1"] = unmask(rt, p)  # ...so Xen finds it clear and raises nothing
        seen["after_plain_unmask"] = vcpu_info(m)
        guest_mask(rt, p)  # Linux/Solo5: set it again first
        seen["rc2"] = unmask(rt, p)
        seen["after_remask_unmask"] = vcpu_info(m)
        seen["masked"] = m.hypervisor.domain.is_masked(p)
        seen["edges"] = len(m.trace.of_kind("upcall_pending"))
        rt.arch.sti()
        rt.hal.r8(rt.shared_info.vcpu_info(0))
        rt.hal.r8(rt.shared_info.vcpu_info(0))
        seen["entries"] = list(entries)

    m, result = run(main)
    assert_ok(result)
    assert seen["masked_send"] == (0, 0, 0)
    assert seen["rc1"] == 0 and seen["after_plain_unmask"] == (0, 0, 0)
    assert seen["rc2"] == 0 and seen["after_remask_unmask"] == (1, 0, 1)
    assert not seen["masked"]
    assert seen["edges"] == 1
    assert seen["entries"] == [VEC]


def test_unmask_of_an_invalid_port_is_einval():
    seen = []

    def main(rt, m):
        seen.extend([unmask(rt, 63), unmask(rt, 64), unmask(rt, 4096)])

    m, result = run(main)
    assert_ok(result)
    assert seen == [0, -X.EINVAL, -X.EINVAL]  # 63: valid (first bucket), free: harmless


# HVM params ----------------------------------------------------------------------------------
def test_hvm_set_param_on_a_param_the_guest_may_not_set_is_eperm():
    seen = []

    def main(rt, m):
        for index in (H.HVM_PARAM_STORE_PFN, H.HVM_PARAM_CONSOLE_PFN, H.HVM_PARAM_IDENT_PT):
            seen.append(set_param(rt, index, 0x1234))
        seen.append(set_param(rt, H.HVM_PARAM_ALTP2M, 1))

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EPERM] * 3 + [-X.EEXIST]


def test_hvm_param_index_39_or_more_is_einval():
    seen = []

    def main(rt, m):
        seen.append(set_param(rt, H.HVM_NR_PARAMS, 1))
        seen.append(get_param(rt, H.HVM_NR_PARAMS))
        seen.append(set_param(rt, 0xFFFFFFFF, 1))
        seen.append(get_param(rt, H.HVM_NR_PARAMS - 1))

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EINVAL, -X.EINVAL, -X.EINVAL, 0]


def test_hvm_get_param_returns_what_was_set():
    seen = []

    def main(rt, m):
        for index, value in ((H.HVM_PARAM_CALLBACK_IRQ, 1),
                             (H.HVM_PARAM_STORE_EVTCHN, 7),
                             (H.HVM_PARAM_CONSOLE_EVTCHN, 0x1122334455667788),
                             (H.HVM_PARAM_CALLBACK_IRQ, (2 << 56) | 0x33)):  # fmt: skip
            seen.append((set_param(rt, index, value), get_param(rt, index), value))

    m, result = run(main)
    assert_ok(result)
    assert all(rc == 0 and got == value for rc, got, value in seen)


def test_hvm_set_upcall_vector_below_0x10_is_einval_and_unknown_vcpu_enoent():
    seen = []

    def main(rt, m):
        seen.append(set_upcall_vector(rt, 0, 0x0F))
        seen.append(set_upcall_vector(rt, 1, 0x40))
        seen.append(set_upcall_vector(rt, 0xFFFFFFFF, 0x40))
        seen.append(m.hypervisor.vcpus[0].upcall_vector)

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EINVAL, -X.ENOENT, -X.ENOENT, 0]


# set_timer_op ----------------------------------------------------------------------------------
def _timer_guest(body):
    """A guest with VIRQ_TIMER bound, interrupts off and no callback: body(rt, m, port)."""

    def main(rt, m):
        port = bind_virq(rt, X.VIRQ_TIMER)
        body(rt, m, port)

    return main


def test_set_timer_op_0_cancels_an_armed_timer():
    seen = {}

    def body(rt, m, port):
        ipi = bind_ipi(rt)
        t0 = now(rt)
        set_timer(rt, t0 + 1 * MS)
        seen["rc"] = set_timer(rt, 0)
        poll(rt, [ipi], t0 + 3 * MS)
        seen["pending"] = m.hypervisor.domain.is_pending(port)

    m, result = run(_timer_guest(body))
    assert_ok(result)
    assert seen == {"rc": 0, "pending": False}
    assert m.trace.of_kind("timer_fire") == []
    assert len(m.trace.of_kind("timer_stop")) == 1


def test_set_timer_op_past_deadline_fires_at_once():
    seen = {}

    def body(rt, m, port):
        seen["rc"] = set_timer(rt, 1)
        seen["pending"] = m.hypervisor.domain.is_pending(port)  # host view: no HAL call yet
        seen["now"] = m.clock.now

    m, result = run(_timer_guest(body))
    assert_ok(result)
    assert seen["rc"] == 0 and seen["pending"]
    (fire,) = m.trace.of_kind("timer_fire")
    hc = events(m, "hypercall", nr=X.HYPERVISOR_set_timer_op)[0]
    assert fire[0] == hc[0]  # fired at the hypercall's own time, on the way back


def test_set_timer_op_past_deadline_is_delivered_at_the_hypercall_return():
    seen = {}

    def main(rt, m):
        entries = []

        def handler(v):
            entries.append(m.vcpus[0].reg("rsp"))
            clear_upcall_pending(rt, m)

        vector_callback(rt, handler)
        bind_virq(rt, X.VIRQ_TIMER)
        rt.arch.sti()
        set_timer(rt, 1)
        seen["entries_when_it_returned"] = len(entries)  # no HAL call since the hypercall

    m, result = run(main)
    assert_ok(result)
    assert seen["entries_when_it_returned"] == 1
    (inject,) = m.trace.of_kind("inject")
    slot = BOARD.runtime_layout["hypercall_page"] + 32 * X.HYPERVISOR_set_timer_op
    assert inject[3]["rip"] == slot + 8  # the `ret` right after the vmcall


@pytest.mark.parametrize("how", ["negative", "2^51 ahead", "-1"])
def test_set_timer_op_negative_or_more_than_2_50_ahead_fires_100ms_later(how):
    seen = {}

    def body(rt, m, port):
        ipi = bind_ipi(rt)
        t0 = now(rt)
        deadline = {"negative": -5 * MS, "2^51 ahead": t0 + (1 << 51), "-1": -1}[how]
        set_timer(rt, deadline)
        seen["hc_time"] = events(m, "hypercall", nr=X.HYPERVISOR_set_timer_op)[-1][0]
        poll(rt, [ipi], t0 + 300 * MS)  # the timer port is not listed: sleeps to the timeout
        seen["pending"] = m.hypervisor.domain.is_pending(port)

    m, result = run(_timer_guest(body))
    assert_ok(result)
    (armed,) = m.trace.of_kind("timer_set")
    (fire,) = m.trace.of_kind("timer_fire")
    assert armed[3]["deadline"] == seen["hc_time"] + 100 * MS
    assert fire[0] == seen["hc_time"] + 100 * MS
    assert seen["pending"]


def test_set_timer_op_less_than_2_50_ahead_is_armed_as_given():
    seen = {}

    def body(rt, m, port):
        seen["deadline"] = now(rt) + (1 << 49)
        set_timer(rt, seen["deadline"])

    m, result = run(_timer_guest(body))
    assert_ok(result)
    (armed,) = m.trace.of_kind("timer_set")
    assert armed[3]["deadline"] == seen["deadline"]


def test_set_timer_op_cancel_does_not_clear_an_already_pending_event():
    seen = {}

    def body(rt, m, port):
        set_timer(rt, 1)
        seen["before"] = m.hypervisor.domain.is_pending(port)
        set_timer(rt, 0)
        seen["after"] = (m.hypervisor.domain.is_pending(port), vcpu_info(m))

    m, result = run(_timer_guest(body))
    assert_ok(result)
    assert seen["before"]
    assert seen["after"] == (True, (1, 0, 1))


# VCPUOP timers ---------------------------------------------------------------------------------
def test_singleshot_timer_past_deadline_delivers_now():
    seen = {}

    def body(rt, m, port):
        seen["rc"] = singleshot(rt, 1)
        seen["pending"] = m.hypervisor.domain.is_pending(port)
        seen["future_flag"] = singleshot(rt, 1, flags=V.VCPU_SSHOTTMR_future)  # no -ETIME now

    m, result = run(_timer_guest(body))
    assert_ok(result)
    assert seen == {"rc": 0, "pending": True, "future_flag": 0}
    hc = events(m, "hypercall", nr=X.HYPERVISOR_vcpu_op)[0]
    assert events(m, "set_pending", port=1)[0][0] == hc[0]  # inside the hypercall


def test_singleshot_timer_future_deadline_fires_then():
    seen = {}

    def body(rt, m, port):
        ipi = bind_ipi(rt)
        t0 = now(rt)
        seen["deadline"] = t0 + 2 * MS
        singleshot(rt, seen["deadline"])
        poll(rt, [ipi], t0 + 5 * MS)
        seen["pending"] = m.hypervisor.domain.is_pending(port)

    m, result = run(_timer_guest(body))
    assert_ok(result)
    (fire,) = m.trace.of_kind("timer_fire")
    assert fire[0] == seen["deadline"] and seen["pending"]


def test_singleshot_timer_for_another_vcpu_is_einval():
    seen = []

    def main(rt, m):
        seen.append(singleshot(rt, 1, vcpu=1))
        seen.append(rt.hc.vcpu_op(V.VCPUOP_stop_singleshot_timer, 1, 0))
        seen.append(singleshot(rt, 1, vcpu=2))  # no such vCPU

    m, result = run(main, board=BOARD2)
    assert_ok(result)
    assert seen == [-X.EINVAL, -X.EINVAL, -X.ENOENT]


def test_stop_singleshot_timer_cancels_it():
    seen = {}

    def body(rt, m, port):
        ipi = bind_ipi(rt)
        t0 = now(rt)
        singleshot(rt, t0 + 1 * MS)
        seen["rc"] = rt.hc.vcpu_op(V.VCPUOP_stop_singleshot_timer, 0, 0)
        poll(rt, [ipi], t0 + 3 * MS)
        seen["pending"] = m.hypervisor.domain.is_pending(port)

    m, result = run(_timer_guest(body))
    assert_ok(result)
    assert seen == {"rc": 0, "pending": False}
    assert m.trace.of_kind("timer_fire") == []


def test_set_periodic_timer_below_1ms_is_einval():
    seen = []

    def main(rt, m):
        seen.append(periodic(rt, 1 * MS - 1))
        seen.append(periodic(rt, 0))
        seen.append(periodic(rt, 1 << 63))  # more than STIME_DELTA_MAX
        seen.append(m.hypervisor.vcpus[0].period_ns)

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EINVAL, -X.EINVAL, -X.EINVAL, 0]


def test_periodic_timer_fires_repeatedly_while_the_vcpu_runs_until_stopped():
    seen = {}

    def body(rt, m, port):
        d = m.hypervisor.domain
        seen["rc"] = periodic(rt, 1 * MS)
        seen["t0"] = t0 = events(m, "hypercall", nr=X.HYPERVISOR_vcpu_op)[-1][0]
        ticks = []
        for _ in range(3):
            m.clock.advance(1 * MS)  # the guest computes for 1 ms: it stays running
            ticks.append(d.is_pending(port))
            d.clear_pending(port)
        rt.hc.vcpu_op(V.VCPUOP_stop_periodic_timer, 0, 0)
        seen["stopped_at"] = m.clock.now
        m.clock.advance(5 * MS)
        seen["ticks"] = ticks
        seen["pending_after_stop"] = d.is_pending(port)
        seen["fires"] = [e[0] - t0 for e in events(m, "timer_fire", periodic=True)]

    m, result = run(_timer_guest(body))
    assert_ok(result)
    assert seen["rc"] == 0
    assert seen["ticks"] == [True, True, True]
    fires = seen["fires"]
    assert len(fires) >= 3 and fires[-3:] == [fires[-3], fires[-3] + MS, fires[-3] + 2 * MS]
    assert all(f <= seen["stopped_at"] - seen["t0"] for f in fires)
    assert not seen["pending_after_stop"]


def test_periodic_timer_does_not_wake_a_blocked_vcpu():
    seen = {}

    def body(rt, m, port):
        rt.arch.set_vector(VEC, lambda v: None)
        set_param(rt, H.HVM_PARAM_CALLBACK_IRQ, (H.HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | VEC)
        t0 = now(rt)
        singleshot(rt, t0 + 5 * MS)
        periodic(rt, 1 * MS)
        rt.hc.sched_op(S.SCHEDOP_block, 0)  # IF=0: only a new notification returns
        seen["woken"] = m.clock.now - t0

    m, result = run(_timer_guest(body))
    assert_ok(result)
    assert seen["woken"] >= 5 * MS  # the single-shot timer, not a periodic tick
    # On wake-up the overdue periodic ticks collapse into one (vcpu_periodic_timer_work).
    periodic_fires = [e for e in m.trace.of_kind("timer_fire") if e[3].get("periodic")]
    assert len(periodic_fires) == 1


def test_pvh_vcpu_starts_with_no_periodic_tick():
    seen = {}

    def body(rt, m, port):
        ipi = bind_ipi(rt)
        seen["period"] = m.hypervisor.vcpus[0].period_ns
        poll(rt, [ipi], now(rt) + 50 * MS)  # 5 PV ticks' worth of time
        seen["pending"] = m.hypervisor.domain.is_pending(port)

    m, result = run(_timer_guest(body))
    assert_ok(result)
    assert seen == {"period": 0, "pending": False}
    assert m.trace.of_kind("timer_fire") == []


# register_vcpu_info ------------------------------------------------------------------------
NEW_GFN = 0x200
NEW_OFF = 0x40


def test_register_vcpu_info_copies_contents_and_later_updates_go_to_the_new_place():
    seen = {}

    def main(rt, m):
        lay = m.hypervisor.layout
        old = rt.shared_info.vcpu_info(0)
        new = (NEW_GFN << 12) + NEW_OFF
        p = bind_ipi(rt)
        send(rt, p)  # old slot: upcall_pending 1, selector bit 0
        before = rt.hal.read(old, lay.vcpu_info_size)
        seen["rc"] = register_vcpu_info(rt, NEW_GFN, NEW_OFF)
        moved = rt.hal.read(new, lay.vcpu_info_size)
        seen["copied"] = (before, moved)
        # Clean the new place and the port, then raise an event: it lands in the new place.
        m.hypervisor.domain.clear_pending(p)
        rt.hal.w64(new + lay.pending_sel, 0)
        rt.hal.w8(new + lay.upcall_pending, 0)
        old_before_send = rt.hal.read(old, lay.vcpu_info_size)
        send(rt, p)
        seen["new_after_send"] = (rt.hal.r8(new + lay.upcall_pending),
                                  rt.hal.r64(new + lay.pending_sel))  # fmt: skip
        seen["old_untouched"] = rt.hal.read(old, lay.vcpu_info_size) == old_before_send
        # Time: Xen keeps vcpu_info(v, time) current in the new place only.
        t_old = rt.hal.read(old + lay.time, 32)
        ipi = bind_ipi(rt)
        poll(rt, [ipi], now(rt) + 1 * MS)  # a wake refreshes the time record
        seen["new_time"] = rt.hal.r64(new + lay.time + V.TIME_INFO_system_time)
        seen["old_time_untouched"] = rt.hal.read(old + lay.time, 32) == t_old

    m, result = run(main)
    assert_ok(result)
    lay = m.hypervisor.layout
    assert seen["rc"] == 0
    before, moved = seen["copied"]
    sel = lay.pending_sel
    # Everything copied, except the selector, which Xen sets to all ones, and the time record,
    # which it refreshes in the new place (force_update_vcpu_system_time).
    assert moved[:sel] == before[:sel] and moved[sel + 8 : lay.time] == before[sel + 8 : lay.time]
    assert moved[sel : sel + 8] == b"\xff" * 8
    t = lay.time
    version, stamp = struct.unpack_from("<I", before, t)[0], struct.unpack_from("<I", moved, t)[0]
    assert stamp == version + 2
    hc = events(m, "hypercall", nr=X.HYPERVISOR_vcpu_op)[0]
    assert struct.unpack_from("<Q", moved, t + V.TIME_INFO_system_time)[0] == hc[0]
    assert moved[t + 24 :] == before[t + 24 :]  # mul, shift, flags
    assert moved[lay.upcall_pending] == 1
    assert seen["new_after_send"] == (1, 1)
    assert seen["old_untouched"]
    wake = m.trace.of_kind("wake")[-1][0]
    assert seen["new_time"] == wake
    assert seen["old_time_untouched"]


def test_register_vcpu_info_marks_everything_pending_and_gives_one_spurious_upcall():
    seen = {}

    def main(rt, m):
        lay = m.hypervisor.layout
        new = (NEW_GFN << 12) + NEW_OFF
        entries = []

        def handler(v):
            # What the guest's demux would find: every selector bit, but no pending port.
            entries.append((rt.hal.r64(new + lay.pending_sel), pending_words(m)))
            rt.hal.w8(new + lay.upcall_pending, 0)
            rt.hal.w64(new + lay.pending_sel, 0)

        vector_callback(rt, handler)
        rt.arch.sti()
        rt.hal.r8(new)
        seen["before"] = len(entries)
        register_vcpu_info(rt, NEW_GFN, NEW_OFF)
        for _ in range(3):
            rt.hal.r8(new)
        seen["entries"] = entries

    m, result = run(main)
    assert_ok(result)
    assert seen["before"] == 0
    ((sel, words),) = seen["entries"]
    assert sel == U64 and words == [0] * 64
    assert len(m.trace.of_kind("upcall_pending")) == 1


def test_register_vcpu_info_with_upcall_already_pending_raises_no_new_edge():
    # vcpu_mark_events_pending after the copy: upcall_pending was already 1, so no new
    # assertion -- with the per-vCPU LAPIC vector, no second IRR edge.
    seen = {}

    def main(rt, m):
        lapic = m.vcpus[0].lapic
        base = rt.arch.rdmsr(0x1B)
        rt.arch.wrmsr(0x1B, base | (1 << 11))
        rt.arch.mmio_write32(lapic.base + 0xF0, 0x1FF)
        rt.arch.set_vector(VEC, lambda v: None)
        set_upcall_vector(rt, 0, VEC)  # IRR bit 0x20 (the registration's spurious upcall)
        lapic.irr = 0  # as if taken and EOI'd
        p = bind_ipi(rt)
        send(rt, p)  # 0->1: IRR again
        lapic.irr = 0
        register_vcpu_info(rt, NEW_GFN, NEW_OFF)
        seen["irr"] = lapic.irr
        seen["edges"] = len(m.trace.of_kind("upcall_pending"))

    m, result = run(main)
    assert_ok(result)
    assert seen == {"irr": 0, "edges": 1}


def test_register_vcpu_info_second_registration_is_ebusy():
    seen = []

    def main(rt, m):
        seen.append(register_vcpu_info(rt, NEW_GFN, NEW_OFF))
        seen.append(register_vcpu_info(rt, NEW_GFN, NEW_OFF + 64))
        seen.append(register_vcpu_info(rt, NEW_GFN, 4))  # EBUSY is checked before alignment

    m, result = run(main)
    assert_ok(result)
    assert seen == [0, -X.EBUSY, -X.EBUSY]


def test_register_vcpu_info_misaligned_or_page_crossing_is_enxio():
    seen = []

    def main(rt, m):
        seen.append(register_vcpu_info(rt, NEW_GFN, 4))
        seen.append(register_vcpu_info(rt, NEW_GFN, 4096 - 32))
        seen.append(register_vcpu_info(rt, NEW_GFN, 4096))  # leaves the frame: -EINVAL
        seen.append(register_vcpu_info(rt, 1 << 52, 0))  # address overflows: -EINVAL
        seen.append(register_vcpu_info(rt, 0x100000, 0))  # not guest RAM: -EINVAL
        seen.append(m.hypervisor.vcpus[0].vcpu_info_gpa)
        seen.append(register_vcpu_info(rt, NEW_GFN, 4096 - 64))  # last slot that fits

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.ENXIO, -X.ENXIO, -X.EINVAL, -X.EINVAL, -X.EINVAL, None, 0]


# SCHEDOP_poll ----------------------------------------------------------------------------------
def test_poll_timeout_is_absolute():
    seen = {}

    def main(rt, m):
        p = bind_ipi(rt)
        t = now(rt) + 7 * MS
        seen["t"] = t
        seen["rc"] = poll(rt, [p], t)
        seen["past_rc"] = poll(rt, [p], 1)  # an absolute time already past: back at once

    m, result = run(main)
    assert_ok(result)
    block, wake = m.trace.of_kind("block")[0], m.trace.of_kind("wake")[0]
    assert wake[0] == seen["t"] and block[0] < seen["t"]
    assert seen["rc"] == 0 and seen["past_rc"] == 0


def test_poll_returns_at_once_if_a_listed_port_is_pending_even_masked():
    seen = {}

    def main(rt, m):
        a, b = bind_ipi(rt), bind_ipi(rt)
        guest_mask(rt, b)
        send(rt, b)
        seen["rc"] = poll(rt, [a, b], 0)  # no timeout: would sleep forever otherwise
        seen["rc1"] = poll(rt, [b], 0)

    m, result = run(main)
    assert_ok(result)
    assert seen == {"rc": 0, "rc1": 0}
    assert m.trace.of_kind("block") == []


def test_poll_masked_ports_still_wake_pollers():
    seen = {}

    def main(rt, m):
        p = bind_ipi(rt)
        guest_mask(rt, p)
        t0 = now(rt)
        at(m, t0 + 2 * MS, lambda: m.hypervisor.domain.send(p))
        seen["rc"] = poll(rt, [p], t0 + 50 * MS)
        seen["woken"] = m.trace.of_kind("wake")[-1][0] - t0
        seen["vi"] = vcpu_info(m)  # masked: no upcall was raised

    m, result = run(main)
    assert_ok(result)
    assert seen == {"rc": 0, "woken": 2 * MS, "vi": (0, 0, 0)}


def test_poll_one_port_sleeps_through_other_ports():
    seen = {}

    def main(rt, m):
        a, b = bind_ipi(rt), bind_ipi(rt)
        t0 = now(rt)
        at(m, t0 + 1 * MS, lambda: m.hypervisor.domain.send(b))
        at(m, t0 + 3 * MS, lambda: m.hypervisor.domain.send(a))
        poll(rt, [a], t0 + 50 * MS)
        seen["woken"] = m.trace.of_kind("wake")[-1][0] - t0

    m, result = run(main)
    assert_ok(result)
    assert seen["woken"] == 3 * MS


def test_poll_more_than_128_ports_is_einval():
    seen = []

    def main(rt, m):
        p = bind_ipi(rt)
        send(rt, p)  # pending: a valid poll returns at once
        seen.append(poll(rt, [p] * 129))
        seen.append(poll(rt, [p] * 128))

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EINVAL, 0]


def test_poll_port_4096_or_unusable_is_einval():
    seen = []

    def main(rt, m):
        p = bind_ipi(rt)
        seen.append(poll(rt, [p, 4096], now(rt) + MS))
        seen.append(poll(rt, [0xFFFFFFFF], now(rt) + MS))
        seen.append(poll(rt, [200], now(rt) + MS))  # beyond the allocated bucket
        seen.append(poll(rt, [0], now(rt) + MS))  # reserved (evtchn_usable)
        seen.append(poll(rt, [9], now(rt) + MS))  # free
        seen.append(poll(rt, [p], now(rt) + MS))  # fine: times out

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EINVAL] * 5 + [0]


def test_poll_bad_ports_pointer_is_efault():
    seen = []

    def main(rt, m):
        p = bind_ipi(rt)
        seen.append(poll(rt, [p], now(rt) + MS, ports_ptr=BOARD.ram_size))
        seen.append(poll(rt, [p], now(rt) + MS, ports_ptr=1 << 62))
        seen.append(poll(rt, [p, p], now(rt) + MS, ports_ptr=BOARD.ram_size - 4))  # runs off RAM

    m, result = run(main)
    assert_ok(result)
    assert seen == [-X.EFAULT] * 3


# SCHEDOP_block ---------------------------------------------------------------------------------
def test_sched_block_with_if0_returns_only_on_a_new_notification_with_interrupts_off():
    seen = {}

    def setup(m):
        return {"bp": m.backend.alloc_unbound(m.domid)}

    def main(rt, m):
        entries = []

        def handler(v):
            entries.append(m.clock.now)
            clear_upcall_pending(rt, m)

        vector_callback(rt, handler)
        lp = bind_interdomain(rt, 0, rt.config["bp"])  # marked pending: upcall_pending 1
        m.hypervisor.domain.clear_pending(lp)
        rt.hal.w64(rt.shared_info.vcpu_info(0) + m.hypervisor.layout.pending_sel, 0)
        clear_upcall_pending(rt, m)
        t0 = now(rt)
        m.backend.send_at(rt.config["bp"], t0 + 4 * MS)
        seen["rc"] = rt.hc.sched_op(S.SCHEDOP_block, 0)
        seen["returned"] = m.clock.now - t0
        seen["if"] = rt.arch.interrupts_enabled()
        seen["vi"] = vcpu_info(m)
        seen["entries"] = list(entries)

    m, result = run(main, setup=setup)
    assert_ok(result)
    assert seen["rc"] == 0
    assert 4 * MS <= seen["returned"] < 5 * MS
    assert seen["if"] is False
    assert seen["vi"] == (1, 0, 1)
    assert seen["entries"] == []


def test_sched_block_with_if0_ignores_an_event_already_pending():
    # upcall_pending is already 1 and IF=0: nothing is deliverable and no new 0->1 edge can
    # kick the vCPU, so Xen leaves it blocked for good.
    def setup(m):
        return {"bp": m.backend.alloc_unbound(m.domid)}

    def main(rt, m):
        vector_callback(rt, lambda v: None)
        bind_interdomain(rt, 0, rt.config["bp"])  # pending, upcall_pending 1
        m.backend.send_at(rt.config["bp"], now(rt) + 1 * MS)  # coalesces
        rt.hc.sched_op(S.SCHEDOP_block, 0)

    m, result = run(main, setup=setup)
    assert (result.status, result.outcome.kind) == (4, "deadlock")
    assert "SCHEDOP_block" in result.outcome.message


def test_sched_block_with_a_deliverable_event_and_if1_returns_at_once():
    seen = {}

    def main(rt, m):
        entries = []

        def handler(v):
            entries.append(v)
            clear_upcall_pending(rt, m)

        vector_callback(rt, handler)
        p = bind_ipi(rt)
        send(rt, p)  # upcall_pending 1, IF=0: deliverable as soon as IF=1
        # sti; mov eax, sched_op; mov edi, SCHEDOP_block; xor esi, esi; vmcall; ret
        code = (b"\xfb\xb8" + X.HYPERVISOR_sched_op.to_bytes(4, "little") + b"\xbf"
                + S.SCHEDOP_block.to_bytes(4, "little") + b"\x31\xf6\x0f\x01\xc1\xc3")  # fmt: skip
        stub = rt.arch._emit(code)
        t0 = m.clock.now
        seen["rc"] = rt.arch.call(stub)
        seen["elapsed"] = m.clock.now - t0
        seen["entries"] = list(entries)

    m, result = run(main)
    assert_ok(result)
    assert seen["rc"] == 0
    assert m.trace.of_kind("block") == []
    assert seen["elapsed"] < 10_000
    assert seen["entries"] == [VEC]


# HLT --------------------------------------------------------------------------------------------
def test_hlt_with_if0_is_a_dead_vcpu():
    def main(rt, m):
        p = bind_ipi(rt)
        set_timer(rt, now(rt) + MS)
        send(rt, p)
        rt.arch.halt()

    m, result = run(main)
    assert (result.status, result.outcome.kind) == (3, "fault")
    assert "halted with interrupts disabled" in result.outcome.message
