# The shipped examples, run through the pytest plugin on every callback method that delivers
# (vector, lapic), with every unmask algorithm that is correct for the method and both handler
# policies. Software resend is correct only with the level-like callback vector (guest-anchors
# §7.6, §12.1); tests/platform/test_lost_events.py shows it losing events with lapic.
import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PINGPONG = EXAMPLES / "pingpong.py"
TIMER = EXAMPLES / "timer.py"
MS = 1_000_000
US = 1_000
BUDGET_NS = 10 * 10**9

VECTOR_UNMASKS = ("hypercall-if-pending", "always-hypercall", "software-resend")
LAPIC_UNMASKS = ("hypercall-if-pending", "always-hypercall")
HANDLERS = ("irq", "deferred")


def assert_ok(result):
    assert (result.status, result.outcome.kind) == (0, "shutdown"), (
        f"{result.outcome.message}\n{result.console}\n{result.outcome.report}"
    )


# pingpong ------------------------------------------------------------------------------------
def _pingpong(micropv_guest, unmask, handlers, n):
    result = micropv_guest(PINGPONG, options={"unmask": unmask, "handlers": handlers},
                           args={"n": n}, budget_ns=BUDGET_NS)  # fmt: skip
    assert_ok(result)
    assert result.console.splitlines()[-1] == f"round trips: {n}"
    # Every ping reached the backend, and every echo came back as exactly one event.
    be = result.machine.backend
    assert len(be.received) == n
    # Each round trip is a few hypercalls and an upcall: microseconds of virtual time. (A
    # deferred handler left queued until a 10 ms poll times out would cost 10 ms a round.)
    assert result.virtual_ns < n * 5 * US
    return result


@pytest.mark.callbacks("vector")
@pytest.mark.parametrize("handlers", HANDLERS)
@pytest.mark.parametrize("unmask", VECTOR_UNMASKS)
def test_pingpong_vector(micropv_guest, callback_method, unmask, handlers):
    result = _pingpong(micropv_guest, unmask, handlers, 200)
    assert result.machine.hypervisor.callback_type == 2  # HVM_PARAM_CALLBACK_TYPE_VECTOR


@pytest.mark.callbacks("lapic")
@pytest.mark.parametrize("handlers", HANDLERS)
@pytest.mark.parametrize("unmask", LAPIC_UNMASKS)
def test_pingpong_lapic(micropv_guest, callback_method, unmask, handlers):
    result = _pingpong(micropv_guest, unmask, handlers, 200)
    m = result.machine
    assert m.hypervisor.vcpus[0].upcall_vector == 0x20
    assert m.trace.of_kind("eoi")  # the per-vCPU vector goes through the LAPIC


def test_pingpong_default_n(micropv_guest, callback_method):
    """The example as shipped (n = 1000), default policies."""
    result = micropv_guest(PINGPONG, budget_ns=BUDGET_NS)
    assert_ok(result)
    assert result.console.splitlines()[-1] == "round trips: 1000"


@pytest.mark.parametrize("handlers", HANDLERS)
@pytest.mark.parametrize("callback", ("gsi", "intx"))
def test_pingpong_with_an_inert_callback_reports_no_upcall(micropv_guest, callback, handlers):
    """GSI and PCI INTx are stored but never raised on PVH (no vIOAPIC/vPIC): the reply is
    pending, no upcall reports it, and the guest says so and fails -- well within budget."""
    result = micropv_guest(PINGPONG, callback=callback, options={"handlers": handlers},
                           args={"n": 200}, budget_ns=BUDGET_NS)  # fmt: skip
    assert (result.status, result.outcome.kind) == (1, "shutdown")
    assert result.outcome.reason == 3  # SHUTDOWN_crash: a non-zero exit
    assert "no upcall arrived" in result.console
    assert f"round 1: the reply is pending but no upcall arrived (callback method {callback})" \
        in result.console  # fmt: skip
    assert result.console.splitlines()[-1] == "round trips: 0"
    assert result.virtual_ns < 1 * MS < BUDGET_NS  # SCHEDOP_poll saw it pending at once
    assert [e for e in result.trace.of_kind("inject") if e[3]["vector"] == 0x20] == []


# timer ---------------------------------------------------------------------------------------
WAKE = re.compile(r"wake (\d) at (\d+) ns \(deadline (\d+), \+(-?\d+) ns\)")


def _timer(micropv_guest, unmask, handlers):
    result = micropv_guest(TIMER, options={"unmask": unmask, "handlers": handlers},
                           budget_ns=BUDGET_NS)  # fmt: skip
    assert_ok(result)
    wakes = [tuple(map(int, m.groups())) for m in WAKE.finditer(result.console)]
    assert [w[0] for w in wakes] == [1, 2, 3, 4, 5]
    start = wakes[0][2] - 100 * MS
    for i, at, deadline, late in wakes:
        assert deadline == start + i * 100 * MS
        assert late == at - deadline
        assert deadline <= at <= deadline + 1 * MS
    assert result.console.splitlines()[-1] == "timer: ok"
    # Nothing but the timer woke it: five expiries of the single-shot timer.
    assert len(result.trace.of_kind("timer_fire")) == 5
    return result


@pytest.mark.callbacks("vector")
@pytest.mark.parametrize("handlers", HANDLERS)
@pytest.mark.parametrize("unmask", VECTOR_UNMASKS)
def test_timer_vector(micropv_guest, callback_method, unmask, handlers):
    _timer(micropv_guest, unmask, handlers)


@pytest.mark.callbacks("lapic")
@pytest.mark.parametrize("handlers", HANDLERS)
@pytest.mark.parametrize("unmask", LAPIC_UNMASKS)
def test_timer_lapic(micropv_guest, callback_method, unmask, handlers):
    _timer(micropv_guest, unmask, handlers)
