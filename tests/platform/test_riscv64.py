# The sbi-riscv64 board: the shipped examples on both upcall methods, the SBI host function by
# function with its error codes, the timer (STIP and VIRQ_TIMER), sip.SSIP written by the
# guest, level (seip) against edge (ssip) delivery, and the wfi wake rule.
from pathlib import Path

import pytest
from micropv.platform import cli
from micropv.platform.launch import run_guest
from micropv.platform.xen.irqs_riscv import VcpuIrqs
from micropv.runtime.abi import hvm as H
from micropv.runtime.abi import sbi as B
from micropv.runtime.abi import xen as X

from micropv import boards

BOARD = "sbi-riscv64"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
METHODS = ("seip", "ssip")
MS = 1_000_000
ALL_ONES = (1 << 64) - 1


def run(main, callback=None, budget_ns=10**9, options=None, **kw):
    options = dict(options or {})
    if callback:
        options["callback"] = callback
    machine, result = run_guest(main, board=BOARD, options=options, budget_ns=budget_ns,
                                trace=True, **kw)  # fmt: skip
    result.machine = machine
    return result


def ok(result):
    assert (result.status, result.outcome.kind) == (0, "shutdown"), (
        f"{result.outcome.message}\n{result.console}\n{result.outcome.report}"
    )
    return result


def sbi_results(calls, callback=None):
    """Run the SBI calls [(eid, fid, args), ...] from a guest; their (error, value) pairs."""
    got = []

    def main(rt):
        for eid, fid, args in calls:
            got.append(rt.arch.sbi_call(eid, fid, args))

    result = ok(run(main, callback))
    result.got = got
    return result


# The examples ------------------------------------------------------------------------------
@pytest.mark.parametrize("callback", METHODS)
def test_hello(callback):
    result = ok(run(EXAMPLES / "hello.py", callback))
    lines = result.console.splitlines()
    assert lines[0] == "Hello from a Python guest on micropv!"
    assert lines[1] == "Xen 4.19-micropv found at SBI extension 0xa58454e"
    assert lines[2].startswith("pvclock: ")


@pytest.mark.parametrize("callback", METHODS)
def test_timer(callback):
    result = ok(run(EXAMPLES / "timer.py", callback))
    assert result.console.splitlines()[-1] == "timer: ok"
    assert len(result.trace.of_kind("timer_fire")) == 5  # VIRQ_TIMER via set_timer_op


@pytest.mark.parametrize("callback", METHODS)
@pytest.mark.parametrize("handlers", ("irq", "deferred"))
def test_pingpong(callback, handlers):
    result = ok(run(EXAMPLES / "pingpong.py", callback, options={"handlers": handlers},
                    args={"n": 300}))  # fmt: skip
    assert result.console.splitlines()[-1] == "round trips: 300"
    assert len(result.machine.backend.received) == 300
    assert result.virtual_ns < 300 * 5_000  # every reply came by upcall, none by a poll timeout


def test_pingpong_default_callback_is_seip():
    result = ok(run(EXAMPLES / "pingpong.py", args={"n": 50}))
    assert result.machine.vcpus[0].level is not None  # the level line: seip
    assert result.machine.hypervisor.hvm_params[H.HVM_PARAM_CALLBACK_IRQ] == (2 << 56) | 9


def test_cli_run_and_boards(capsys):
    assert cli.main(["boards"]) == 0
    out = capsys.readouterr().out
    assert "sbi-riscv64" in out and "callbacks: seip, ssip (default seip)" in out
    assert cli.main(["run", str(EXAMPLES / "hello.py"), "--board", BOARD,
                     "--callback", "ssip"]) == 0  # fmt: skip
    assert "found at SBI extension 0xa58454e" in capsys.readouterr().out


def test_board_data():
    b = boards.get(BOARD)
    assert (b.arch, b.callbacks, b.default_callback) == ("riscv64", ("seip", "ssip"), "seip")
    assert b.counter_hz == 10_000_000
    # pvclock's scale for 10 MHz is exact: 100 ns per tick.
    for ticks in (0, 1, 7, 10**7, 123456789012):
        assert ((ticks << b.pvclock_shift) * b.pvclock_mul) >> 32 == ticks * 100


# Base ----------------------------------------------------------------------------------------
def test_base_extension():
    probes = (B.SBI_EXT_XEN, B.SBI_EXT_BASE, B.SBI_EXT_TIME, B.SBI_EXT_IPI, B.SBI_EXT_HSM,
              B.SBI_EXT_SRST, B.SBI_EXT_DBCN, B.SBI_EXT_LEGACY_SET_TIMER,
              B.SBI_EXT_LEGACY_CONSOLE_PUTCHAR, B.SBI_EXT_MICROPV,  # present
              B.SBI_EXT_RFENCE, B.SBI_EXT_PMU, B.SBI_EXT_SUSP, B.SBI_EXT_STA,
              B.SBI_EXT_LEGACY_SHUTDOWN, 0x12345678)  # absent  # fmt: skip
    calls = [(B.SBI_EXT_BASE, fid, ()) for fid in range(3)]
    calls += [(B.SBI_EXT_BASE, B.SBI_BASE_PROBE_EXT, (eid,)) for eid in probes]
    calls += [(B.SBI_EXT_BASE, fid, ()) for fid in (4, 5, 6, 7, 0x7FFFFFFF)]
    got = sbi_results(calls).got
    assert got[:3] == [(0, 0x02000000), (0, 7), (0, (4 << 16) | 19)]  # SBI 2.0, Xen's impl id
    assert [v for e, v in got[3 : 3 + len(probes)]] == [1] * 10 + [0] * 6
    assert all(e == 0 for e, v in got[3 : 3 + len(probes)])
    assert got[-5:] == [(0, 0), (0, 0), (0, 0), (-2, 0), (-2, 0)]


def test_unknown_extensions_not_supported():
    calls = [(eid, 0, ()) for eid in (B.SBI_EXT_RFENCE, B.SBI_EXT_PMU, B.SBI_EXT_SUSP,
                                      0x0A000000, 0x09000000, 0x08000000, 0x7FFFFFFF)]  # fmt: skip
    assert sbi_results(calls).got == [(-2, 0)] * 7


def test_xen_extension_unknown_hypercall_is_enosys():
    got = []

    def main(rt):
        got.append(rt.hc.raw(63, 1, 2))
        got.append(rt.hc.raw(0x7FFFFFFF))

    ok(run(main))
    assert got == [-X.ENOSYS, -X.ENOSYS]


# TIME and the legacy timer: STIP -------------------------------------------------------------
def test_set_timer_raises_stip_and_a_future_deadline_clears_it():
    seen = {}

    def main(rt):
        a = rt.arch
        a.sie_set(B.SIE_STIE)  # for the wfi below (sip shows STIP either way)
        now = a.rdtime()
        seen["unknown fid"] = a.sbi_call(B.SBI_EXT_TIME, 1, ())
        seen["past"] = a.sbi_call(B.SBI_EXT_TIME, B.SBI_TIME_SET_TIMER, (now - 1,))
        seen["sip after past"] = a.read_sip() & B.SIP_STIP
        seen["future"] = a.sbi_call(B.SBI_EXT_TIME, B.SBI_TIME_SET_TIMER, (now + 10_000,))
        seen["sip after future"] = a.read_sip() & B.SIP_STIP
        a.halt()  # wfi (SIE=0): wakes when STIP is pending, 1 ms later
        seen["woke at"] = a.rdtime()
        seen["sip after fire"] = a.read_sip() & B.SIP_STIP
        seen["stop"] = a.sbi_call(B.SBI_EXT_TIME, B.SBI_TIME_SET_TIMER, (ALL_ONES,))
        seen["sip after stop"] = a.read_sip() & B.SIP_STIP
        seen["start"] = now

    result = ok(run(main))
    assert seen["unknown fid"] == (-2, 0)
    assert seen["past"] == seen["future"] == seen["stop"] == (0, 0)
    assert seen["sip after past"] == B.SIP_STIP
    assert seen["sip after future"] == 0  # the spec's rule: a future deadline clears STIP
    assert seen["sip after fire"] == B.SIP_STIP
    assert seen["start"] + 10_000 <= seen["woke at"] <= seen["start"] + 10_010
    assert seen["sip after stop"] == 0
    assert [e[3]["timer"] for e in result.trace.of_kind("timer_fire")] == ["sbi"]


def test_stip_taken_by_a_handler_and_legacy_set_timer():
    seen = {"handled": 0}

    def main(rt):
        a = rt.arch

        def on_timer(cause):
            seen["cause"] = cause
            seen["handled"] += 1
            # Acknowledge as a supervisor does: re-program far away (legacy call this time).
            seen["legacy"] = a.sbi_call(B.SBI_EXT_LEGACY_SET_TIMER, 0, (ALL_ONES, 0xDEAD))

        a.set_vector(B.IRQ_S_TIMER, on_timer)
        a.sbi_call(B.SBI_EXT_TIME, B.SBI_TIME_SET_TIMER, (a.rdtime() + 500,))
        a.safe_halt()  # wfi; csrsi sstatus, SIE: taken right after the wfi wakes
        a.cli()

    ok(run(main))
    assert seen["handled"] == 1 and seen["cause"] == B.IRQ_S_TIMER
    assert seen["legacy"] == (0, 0xDEAD)  # legacy calls set a0 only; a1 is left alone


def test_legacy_calls():
    calls = [(B.SBI_EXT_LEGACY_CONSOLE_PUTCHAR, 0, (ord("K"), 0x1234))]
    calls += [(eid, 0, (0, 0x1234)) for eid in (2, 3, 4, 5, 6, 7, 8, 9, 0x0F)]
    result = sbi_results(calls)
    assert result.got == [(0, 0x1234)] + [(-2, 0x1234)] * 9
    assert "K" in result.console


# IPI: SSIP -----------------------------------------------------------------------------------
def test_send_ipi():
    seen = {"ipis": 0}

    def main(rt):
        a = rt.arch

        def on_ipi(cause):
            seen["ipis"] += 1

        a.set_vector(B.IRQ_S_SOFT, on_ipi, ack=B.SIP_SSIP)
        seen["bad hart"] = a.sbi_call(B.SBI_EXT_IPI, 0, (0b10, 0))
        seen["bad base"] = a.sbi_call(B.SBI_EXT_IPI, 0, (1, 1))
        seen["no harts"] = a.sbi_call(B.SBI_EXT_IPI, 0, (0, 0))
        seen["bad fid"] = a.sbi_call(B.SBI_EXT_IPI, 1, (1, 0))
        seen["after errors"] = a.read_sip() & B.SIP_SSIP
        seen["self"] = a.sbi_call(B.SBI_EXT_IPI, 0, (1, 0))
        seen["pending"] = a.read_sip() & B.SIP_SSIP
        a.sti()  # taken now
        seen["taken"] = seen["ipis"]
        seen["all"] = a.sbi_call(B.SBI_EXT_IPI, 0, (0, ALL_ONES))  # base -1: every hart
        a.cli()

    ok(run(main))
    assert seen["bad hart"] == seen["bad base"] == (B.SBI_ERR_INVALID_PARAM, 0)
    assert seen["no harts"] == (0, 0) and seen["bad fid"] == (-2, 0)
    assert seen["after errors"] == 0
    assert seen["self"] == (0, 0) and seen["pending"] == B.SIP_SSIP
    assert seen["taken"] == 1 and seen["all"] == (0, 0) and seen["ipis"] == 2


# HSM -----------------------------------------------------------------------------------------
def test_hsm_status_and_start():
    calls = [
        (B.SBI_EXT_HSM, B.SBI_HSM_HART_GET_STATUS, (0,)),
        (B.SBI_EXT_HSM, B.SBI_HSM_HART_GET_STATUS, (1,)),
        (B.SBI_EXT_HSM, B.SBI_HSM_HART_START, (0, 0x100000, 0)),
        (B.SBI_EXT_HSM, B.SBI_HSM_HART_START, (1, 0x100000, 0)),
        (B.SBI_EXT_HSM, B.SBI_HSM_HART_START, (0, 0xFFFF_FFFF_0000, 0)),
        (B.SBI_EXT_HSM, B.SBI_HSM_HART_SUSPEND, (0, 0, 0)),
        (B.SBI_EXT_HSM, B.SBI_HSM_HART_SUSPEND, (0x80000000, 0, 0)),
        (B.SBI_EXT_HSM, B.SBI_HSM_HART_SUSPEND, (5, 0, 0)),
        (B.SBI_EXT_HSM, B.SBI_HSM_HART_SUSPEND, (0x10000000, 0, 0)),
        (B.SBI_EXT_HSM, 4, ()),
    ]
    assert sbi_results(calls).got == [
        (0, B.SBI_HSM_STATE_STARTED),
        (B.SBI_ERR_INVALID_PARAM, 0),
        (B.SBI_ERR_ALREADY_AVAILABLE, 0),
        (B.SBI_ERR_INVALID_PARAM, 0),
        (B.SBI_ERR_INVALID_ADDRESS, 0),
        (B.SBI_ERR_NOT_SUPPORTED, 0),  # defined suspend types, not provided
        (B.SBI_ERR_NOT_SUPPORTED, 0),
        (B.SBI_ERR_INVALID_PARAM, 0),  # reserved
        (B.SBI_ERR_INVALID_PARAM, 0),  # platform-specific, not implemented
        (B.SBI_ERR_NOT_SUPPORTED, 0),
    ]


def test_hart_stop_ends_the_run():
    def main(rt):
        rt.arch.sbi_call(B.SBI_EXT_HSM, B.SBI_HSM_HART_STOP, ())
        rt.console_write("not reached\n")

    result = run(main)
    assert (result.status, result.outcome.kind) == (4, "deadlock")
    assert "hart_stop" in result.outcome.message
    assert "not reached" not in result.console


# SRST ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, reason, status, name", [
    (0, 0, 0, "poweroff"), (0, 1, 1, "crash"), (1, 0, 0, "reboot"), (2, 1, 0, "reboot"),
])  # fmt: skip
def test_system_reset(kind, reason, status, name):
    def main(rt):
        rt.arch.sbi_call(B.SBI_EXT_SRST, B.SBI_SRST_SYSTEM_RESET, (kind, reason))
        rt.console_write("not reached\n")

    result = run(main)
    assert (result.status, result.outcome.kind) == (status, "shutdown")
    assert result.outcome.message == f"domain shut down ({name})"
    assert "not reached" not in result.console


def test_system_reset_errors():
    calls = [(B.SBI_EXT_SRST, 0, args) for args in
             ((3, 0), (0xEFFFFFFF, 0), (0xF0000000, 0), (0, 2), (0, 0xE0000000), (0, 0xF0000000))]  # fmt: skip
    calls.append((B.SBI_EXT_SRST, 1, (0, 0)))
    assert sbi_results(calls).got == [(B.SBI_ERR_INVALID_PARAM, 0)] * 6 + [(-2, 0)]


# DBCN ----------------------------------------------------------------------------------------
def test_debug_console():
    got = []

    def main(rt):
        a = rt.arch
        buf = rt.args.alloc(16)
        rt.hal.write(buf, b"dbcn says hi\n")
        got.append(a.sbi_call(B.SBI_EXT_DBCN, B.SBI_DBCN_CONSOLE_WRITE, (13, buf, 0)))
        got.append(a.sbi_call(B.SBI_EXT_DBCN, B.SBI_DBCN_CONSOLE_WRITE, (0, buf, 0)))
        got.append(a.sbi_call(B.SBI_EXT_DBCN, B.SBI_DBCN_CONSOLE_WRITE_BYTE, (0x121,)))
        got.append(a.sbi_call(B.SBI_EXT_DBCN, B.SBI_DBCN_CONSOLE_WRITE, (13, buf, 1)))
        got.append(a.sbi_call(B.SBI_EXT_DBCN, B.SBI_DBCN_CONSOLE_WRITE, (16, 32 << 20, 0)))
        got.append(a.sbi_call(B.SBI_EXT_DBCN, B.SBI_DBCN_CONSOLE_WRITE, (1 << 40, buf, 0)))
        got.append(a.sbi_call(B.SBI_EXT_DBCN, B.SBI_DBCN_CONSOLE_READ, (8, buf, 0)))
        got.append(a.sbi_call(B.SBI_EXT_DBCN, B.SBI_DBCN_CONSOLE_READ, (8, 1 << 40, 0)))
        got.append(a.sbi_call(B.SBI_EXT_DBCN, 3, ()))
        rt.args.free(buf)

    result = ok(run(main))
    assert got == [(0, 13), (0, 0), (0, 0)] + [(B.SBI_ERR_INVALID_PARAM, 0)] * 3 + [
        (0, 0), (B.SBI_ERR_INVALID_PARAM, 0), (-2, 0)]  # fmt: skip
    assert "dbcn says hi\n!" in result.console


def test_micropv_extension():
    assert sbi_results([(B.SBI_EXT_MICROPV, 1, ())]).got == [(-2, 0)]


# The time CSR and pvclock ---------------------------------------------------------------------
def test_time_csr_follows_the_virtual_clock_at_10_mhz():
    seen = []

    def main(rt):
        clock = rt.hal.machine.clock
        for _ in range(3):
            before = clock.now
            ticks = rt.arch.rdtime()
            seen.append((before, ticks, clock.now, rt.clock_monotonic()))
        rt.sleep_until(rt.clock_monotonic() + 3 * MS)
        seen.append((0, rt.arch.rdtime(), clock.now, rt.clock_monotonic()))

    ok(run(main, "ssip"))
    for before, ticks, after, mono in seen:
        assert before // 100 <= ticks <= after // 100
        assert mono % 100 == 0 and ticks * 100 <= mono <= after  # pvclock: the counter, scaled
    assert seen[-1][1] - seen[0][1] >= 30_000


# Upcall delivery: level (seip) against edge (ssip) ------------------------------------------------
@pytest.mark.parametrize("callback", METHODS)
def test_a_guest_that_leaves_upcall_pending_set(callback):
    """A handler that never clears upcall_pending. seip is a level line re-evaluated at every
    entry: the upcall comes straight back (the handler gives up after 5). ssip is an edge on
    upcall_pending's 0->1 change: one upcall, then silence however many events follow."""
    seen = {"upcalls": 0}

    def backend(machine, args):
        be = machine.backend
        port = be.alloc_unbound(machine.domid)
        be.on_event(port, be.send)
        return {"backend_port": port}

    def main(rt):
        ev = rt.events
        port = ev.bind_interdomain(0, rt.config["backend_port"])
        ev.clear(port)
        ev.unmask(port)
        vi = rt.shared_info.vcpu_info(0)
        cause = B.IRQ_S_EXT if callback == "seip" else B.IRQ_S_SOFT

        def lazy(c):
            seen["upcalls"] += 1
            if seen["upcalls"] == 5:
                rt.hal.w8(vi, 0)  # enough: clear upcall_pending after all

        ack = B.SIP_SSIP if callback == "ssip" else 0
        rt.arch.set_vector(cause, lazy, ack=ack)  # replace the runtime's upcall
        for _ in range(3):
            ev.send(port)  # the backend echoes: the port becomes pending, upcall_pending 1
        seen["upcall_pending"] = rt.hal.r8(vi)

    mod = type("G", (), {"main": staticmethod(main), "backend": staticmethod(backend)})
    ok(run(mod, callback))
    if callback == "seip":
        assert seen["upcalls"] == 5 and seen["upcall_pending"] == 0
    else:
        assert seen["upcalls"] == 1 and seen["upcall_pending"] == 1


@pytest.mark.parametrize("callback", METHODS)
def test_callback_param(callback):
    got = {}

    def main(rt):
        got["registered"] = rt.events and rt.upcall.get_param(H.HVM_PARAM_CALLBACK_IRQ)
        for bad in ((2 << 56) | 5, (2 << 56) | 0x109, (1 << 56) | 9, 9):
            try:
                rt.upcall.set_param(H.HVM_PARAM_CALLBACK_IRQ, bad)
            except Exception as e:  # HypercallError
                got.setdefault("errors", []).append(e.errno)
        got["kept"] = rt.upcall.get_param(H.HVM_PARAM_CALLBACK_IRQ)
        try:
            rt.upcall.set_upcall_vector(0, 0x20)
        except Exception as e:
            got["vector"] = e.errno

    ok(run(main, callback))
    cause = 9 if callback == "seip" else 1
    assert got["registered"] == got["kept"] == (2 << 56) | cause
    assert got["errors"] == [X.EINVAL] * 4
    assert got["vector"] == X.ENOSYS  # HVMOP_set_evtchn_upcall_vector is x86-only


def test_callback_zero_disables_delivery():
    seen = {}

    def main(rt):
        ev = rt.events
        rt.upcall.set_param(H.HVM_PARAM_CALLBACK_IRQ, 0)
        port = ev.bind_ipi(0)
        ev.unmask(port)
        ev.send(port)
        seen["upcalls"] = rt.upcall.upcalls
        seen["pending"] = ev.is_pending(port)
        seen["sip"] = rt.arch.read_sip()

    ok(run(main))
    assert seen["upcalls"] == 0 and seen["pending"] == 1 and seen["sip"] == 0


# sip.SSIP written by the guest ------------------------------------------------------------------
@pytest.mark.parametrize("sync", (True, False))
def test_guest_written_ssip_is_synced_not_lost(sync, monkeypatch):
    """The guest raises SSIP itself (csrs sip); then Xen flushes a timer interrupt into hvip.
    vcpu_sync_interrupts copies the guest's SSIP into irqs_pending first, so the flush keeps
    it. Without the sync (the second run) the flush writes Xen's stale view and the guest's
    interrupt is lost."""
    seen = {}

    if not sync:
        monkeypatch.setattr(VcpuIrqs, "sync", lambda self, guest_hvip: None)

    def main(rt):
        a = rt.arch
        a.sip_set(B.SIP_SSIP)  # a self-IPI, written straight into sip
        seen["before"] = a.read_sip()
        a.sbi_call(B.SBI_EXT_TIME, 0, (0,))  # deadline passed: STIP raised and flushed
        seen["after"] = a.read_sip()
        a.sip_clear(B.SIP_SSIP)  # the guest acknowledges its IPI
        a.sbi_call(B.SBI_EXT_TIME, 0, (ALL_ONES,))  # STIP dropped: another flush
        seen["cleared"] = a.read_sip()

    ok(run(main))
    assert seen["before"] == B.SIP_SSIP
    if sync:
        assert seen["after"] == B.SIP_SSIP | B.SIP_STIP
        assert seen["cleared"] == 0  # the guest's clear is synced too: SSIP does not come back
    else:
        assert seen["after"] == B.SIP_STIP  # lost


# The wfi wake rule ------------------------------------------------------------------------------
@pytest.mark.parametrize("callback", METHODS)
def test_wfi_wakes_on_an_interrupt_that_arrived_after_the_check(callback):
    """Check-then-block with SIE=0: the event lands between the check and `wfi`. wfi wakes
    because the interrupt is pending and enabled in sie (SIE=0 notwithstanding) and is taken
    only once SIE is set. Nothing else is armed: had wfi slept, the run would deadlock."""
    seen = {}

    def main(rt):
        ev = rt.events
        port = ev.bind_ipi(0)
        rt.bind(port, lambda p: seen.setdefault("handled at", rt.upcall.upcalls))
        a = rt.arch
        a.cli()
        seen["ready"] = ev.is_pending(port)  # the check: nothing to do
        ev.send(port)  # ... and now the event arrives, interrupts off
        before = rt.upcall.upcalls
        a.halt()  # wfi with SIE=0: must not sleep
        seen["after wfi"] = rt.upcall.upcalls - before
        a.sti()  # taken here
        seen["after sti"] = rt.upcall.upcalls - before

    result = ok(run(main, callback))
    assert seen["ready"] == 0
    assert seen["after wfi"] == 0 and seen["after sti"] == 1
    assert result.virtual_ns < 1 * MS


def test_wfi_with_the_source_disabled_in_sie_sleeps():
    """The same, with the upcall's interrupt disabled in sie: pending is not enough, the wfi
    sleeps, and with nothing armed the run ends in a deadlock report."""

    def main(rt):
        ev = rt.events
        port = ev.bind_ipi(0)
        rt.bind(port, lambda p: None)
        a = rt.arch
        a.cli()
        a.sie_clear(B.SIE_SEIE)
        ev.send(port)
        a.halt()

    result = run(main, "seip")
    assert (result.status, result.outcome.kind) == (4, "deadlock")
    assert "in wfi" in result.outcome.message


def test_ebreak_and_unrouted_interrupts_fault_with_a_report():
    def main(rt):
        rt.arch.sie_set(B.SIE_STIE)  # enabled, but no vector routed: its slot is an ebreak
        rt.arch.sbi_call(B.SBI_EXT_TIME, 0, (0,))
        rt.arch.sti()

    result = run(main)
    assert (result.status, result.outcome.kind) == (3, "fault")
    assert "ebreak" in result.outcome.message
    assert "scause=0x8000000000000005" in result.outcome.report


def test_ucalls_travel_over_the_micropv_extension():
    synced = []

    def main(rt):
        rt.sync(3, 7)
        rt.check(1 == 2, "one is not two")

    result = run(main, setup=lambda m: setattr(m, "on_sync", lambda m, msg: synced.append(msg)))
    assert [(m.kind, m.a, m.b) for m in synced] == [("sync", 3, 7)]
    assert (result.status, result.outcome.kind) == (1, "check")
    assert "one is not two" in result.outcome.message
    assert result.machine.hypervisor.sbi.counts[(B.SBI_EXT_MICROPV, 0)] == 2
