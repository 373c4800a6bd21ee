# The trace: what a run records (virtual time, vCPU, decoded hypercalls, handlers, timers) and
# its Chrome trace-event export (`micropv run --trace`), which must be byte-identical across
# identical runs and well-formed enough for the Perfetto UI to open.
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from micropv.platform.chrome_trace import HOST_TID, to_chrome, write_chrome_trace
from micropv.platform.clock import COST_HYPERCALL_NS
from micropv.platform.launch import run_guest
from micropv.platform.machine import Machine
from micropv.platform.trace import Trace
from micropv.runtime.abi import xen as X

from micropv import boards

REPO = Path(__file__).resolve().parents[2]
PINGPONG = REPO / "examples" / "pingpong.py"
BOARD = boards.get("pvh-x86_64")
MS = 1_000_000


def _run_cli(out, *extra):
    r = subprocess.run([sys.executable, "-m", "micropv.platform.cli", "run", str(PINGPONG),
                        "--arg", "n=50", "--trace", str(out), *extra],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def pingpong_traces(tmp_path_factory):
    d = tmp_path_factory.mktemp("trace")
    return _run_cli(d / "a.json"), _run_cli(d / "b.json")


def _tracks(events):
    out = {}
    for e in events:
        if e["ph"] != "M":
            out.setdefault(e["tid"], []).append(e)
    return out


def _spans(track):
    """[(start, end, name)] of a track's X events and matched B/E pairs (in file order)."""
    spans, open_ = [], []
    for e in track:
        if e["ph"] == "X":
            spans.append((e["ts"], e["ts"] + e["dur"], e["name"]))
        elif e["ph"] == "B":
            open_.append(e)
        elif e["ph"] == "E":
            b = open_.pop()
            assert b["name"] == e["name"]
            spans.append((b["ts"], e["ts"], b["name"]))
    assert open_ == [], "a B event without its E"
    return spans


def _assert_well_nested(track):
    """Slices on one track must nest or be disjoint; overlapping ones Perfetto cannot draw."""
    spans = sorted(_spans(track), key=lambda s: (s[0], -s[1]))
    stack = []
    for start, end, name in spans:
        assert end >= start, name
        while stack and stack[-1][1] <= start:
            stack.pop()
        if stack:
            assert end <= stack[-1][1], f"{name} [{start}, {end}] overlaps {stack[-1]}"
        stack.append((start, end, name))


# The file `micropv run --trace` writes -------------------------------------------------------
def test_identical_runs_write_byte_identical_traces(pingpong_traces):
    a, b = pingpong_traces
    assert a.read_bytes() == b.read_bytes()
    assert a.stat().st_size > 0


def test_trace_file_is_chrome_trace_event_json(pingpong_traces):
    doc = json.loads(pingpong_traces[0].read_text())
    assert doc["displayTimeUnit"] == "ns"
    assert doc["otherData"]["board"] == "pvh-x86_64"
    assert doc["otherData"]["version"]
    events = doc["traceEvents"]
    for e in events:
        assert {"name", "ph", "ts", "pid", "tid"} <= e.keys(), e
        assert e["pid"] == 1
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
    meta = {(e["name"], e["tid"]): e["args"] for e in events if e["ph"] == "M"}
    assert meta[("process_name", 0)] == {"name": "domU 1 (pvh-x86_64)"}
    assert meta[("thread_name", 0)] == {"name": "vCPU0"}
    assert meta[("thread_name", HOST_TID)] == {"name": "host"}

    sends = [e for e in events if e["ph"] == "X" and e["name"] == "event_channel_op"]
    assert len(sends) >= 50
    sent = [e for e in sends if e["args"]["op"] == 4]  # EVTCHNOP_send, one per round trip
    assert len(sent) == 50
    assert all(e["dur"] == COST_HYPERCALL_NS / 1000 and e["args"]["result"] == 0 for e in sent)
    assert all(e["tid"] == 0 and e["args"]["nr"] == X.HYPERVISOR_event_channel_op for e in sent)

    injects = [e for e in events if e["ph"] == "i" and e["name"] == "inject"]
    begins = [e for e in events if e["ph"] == "B" and e["name"] == "handler"]
    ends = [e for e in events if e["ph"] == "E" and e["name"] == "handler"]
    assert len(injects) >= 50 and all(e["s"] == "t" for e in injects)
    assert len(begins) == len(ends) == len(injects)  # one handler per upcall
    assert all(b["args"]["vector"] == injects[0]["args"]["vector"] for b in begins)
    assert {e["tid"] for e in events if e["name"] in ("set_pending", "backend_event")} == {
        HOST_TID
    }
    for track in _tracks(events).values():
        _assert_well_nested(track)
        # Instants and B/E come in recorded order, so their times never go back.
        times = [e["ts"] for e in track if e["ph"] in "iBE"]
        assert times == sorted(times)


# What a run records ---------------------------------------------------------------------------
def test_tracing_off_records_nothing():
    _, result = run_guest(str(PINGPONG), args={"n": 5}, trace=False)
    assert result.ok
    assert result.trace.events == []
    doc = to_chrome(result.trace)
    assert {e["ph"] for e in doc["traceEvents"]} == {"M"}


def test_run_records_decoded_hypercalls_handlers_timers_and_halts():
    m = Machine(BOARD, budget_ns=10**9, trace=True)

    def main(rt):
        rt.hc.raw(99)  # no such hypercall: -ENOSYS
        xv = m.hypervisor.vcpus[0]
        xv.set_periodic(MS)
        xv.set_periodic(0)
        ev = rt.events  # sets up the upcall (one spurious), binds VIRQ_TIMER, sti
        rt.hc.set_timer_op(rt.clock_monotonic() + MS)
        rt.arch.safe_halt()  # the timer's upcall wakes it
        port = ev.bind_ipi()
        rt.poll([port], rt.clock_monotonic() + 2 * MS)  # sleeps until the timeout

    result = m.run_python(main, {"callback": "lapic"})
    assert result.ok, result.outcome.message
    t = result.trace
    bad = [e for e in t.of_kind("hypercall") if e[3]["nr"] == 99]
    assert [e[3] for e in bad] == [{"nr": 99, "name": "hypercall_99", "op": None, "args": (),
                                    "result": -X.ENOSYS, "slept": 0}]  # fmt: skip
    (poll,) = [e for e in t.of_kind("hypercall") if e[3]["name"] == "sched_op" and e[3]["op"] == 3]
    assert poll[3]["slept"] > 0 and poll[3]["result"] == 0
    periodic, singleshot = t.of_kind("timer_set")
    assert periodic[3] == {"timer": "periodic", "deadline": periodic[0] + MS, "period": MS}
    assert singleshot[3]["timer"] == "singleshot"
    assert [e[3]["timer"] for e in t.of_kind("timer_stop")] == ["periodic"]
    assert [e[3]["timer"] for e in t.of_kind("timer_fire")] == ["singleshot"]
    assert len(t.of_kind("poll_timeout")) == 1
    kinds = [e[2] for e in t.events if e[2] in ("hlt", "wake", "inject", "handler_start",
                                                 "handler_end", "eoi", "block")]  # fmt: skip
    starts, ends = t.of_kind("handler_start"), t.of_kind("handler_end")
    assert len(starts) == len(ends) == len(t.of_kind("inject")) >= 2  # spurious + timer
    assert [e[3]["rip"] for e in starts] == [e[3]["rip"] for e in ends]
    i = kinds.index("hlt")
    # The lapic upcall's entry code writes EOI before it calls into the Python handler.
    assert kinds[i : i + 6] == ["hlt", "wake", "inject", "eoi", "handler_start", "handler_end"]
    assert "block" in kinds
    for when, vcpu, _, _ in t.events:
        assert vcpu in (-1, 0) and 0 <= when <= result.virtual_ns
    doc = to_chrome(t, m)
    names = {(e["ph"], e["name"]) for e in doc["traceEvents"]}
    assert {("X", "halted"), ("X", "blocked"), ("X", "sched_op"), ("B", "handler")} <= names
    for track in _tracks(doc["traceEvents"]).values():
        _assert_well_nested(track)


# The exporter on a hand-made trace -------------------------------------------------------------
def _hand_made():
    clock = SimpleNamespace(now=0)
    t = Trace(clock, enabled=True)

    def at(ns, what, vcpu, /, **fields):
        clock.now = ns
        t.event(what, vcpu, **fields)

    at(1250, "hypercall", 0, nr=32, name="event_channel_op", op=4, args=(4, 0x114000),
       result=-22, slept=0)  # fmt: skip
    at(1250, "set_pending", -1, port=2, coalesced=False)
    at(2000, "hlt", 0, rip=0x100031)
    at(5000, "timer_fire", 0, timer="singleshot")
    at(5000, "wake", 0)
    at(5100, "inject", 0, vector=0xF3, rip=0x100032)
    at(5160, "handler_start", 0, rip=0x10015E)
    at(6000, "block", 0, what="SCHEDOP_poll")
    at(9000, "wake", 0, what="SCHEDOP_poll")
    at(9000, "hypercall", 0, nr=29, op=3, args=(3, 0x114000), result=0, slept=3000)
    at(9500, "hypercall", 1, nr=77, op=None, args=(), result=-38, slept=0)
    at(9600, "end", 0, kind="shutdown", status=0)
    return t


def test_to_chrome_on_a_hand_made_trace():
    doc = to_chrome(_hand_made())
    assert doc["displayTimeUnit"] == "ns"
    ev = doc["traceEvents"]
    meta = [(e["name"], e["tid"], e["args"]) for e in ev if e["ph"] == "M"]
    assert meta == [
        ("process_name", 0, {"name": "domU 1"}), ("process_sort_index", 0, {"sort_index": 1}),
        ("thread_name", 0, {"name": "vCPU0"}), ("thread_sort_index", 0, {"sort_index": 0}),
        ("thread_name", 1, {"name": "vCPU1"}), ("thread_sort_index", 1, {"sort_index": 1}),
        ("thread_name", HOST_TID, {"name": "host"}),
        ("thread_sort_index", HOST_TID, {"sort_index": HOST_TID}),
    ]  # fmt: skip
    body = [{k: v for k, v in e.items() if k not in ("pid", "cat")} for e in ev if e["ph"] != "M"]
    assert body == [
        {"name": "event_channel_op", "ph": "X", "ts": 1, "dur": 0.25, "tid": 0,
         "args": {"nr": 32, "op": 4, "args": ["0x4", "0x114000"], "result": -22, "slept": 0}},
        {"name": "set_pending", "ph": "i", "s": "t", "ts": 1.25, "tid": HOST_TID,
         "args": {"port": 2, "coalesced": False}},
        {"name": "timer_fire", "ph": "i", "s": "t", "ts": 5, "tid": 0,
         "args": {"timer": "singleshot"}},
        {"name": "halted", "ph": "X", "ts": 2, "dur": 3, "tid": 0, "args": {"rip": "0x100031"}},
        {"name": "inject", "ph": "i", "s": "t", "ts": 5.1, "tid": 0,
         "args": {"vector": 0xF3, "rip": "0x100032"}},
        {"name": "handler", "ph": "B", "ts": 5.16, "tid": 0,
         "args": {"rip": "0x10015e", "vector": 0xF3}},
        {"name": "blocked", "ph": "X", "ts": 6, "dur": 3, "tid": 0,
         "args": {"what": "SCHEDOP_poll"}},
        {"name": "sched_op", "ph": "X", "ts": 5.75, "dur": 3.25, "tid": 0,
         "args": {"nr": 29, "op": 3, "args": ["0x3", "0x114000"], "result": 0, "slept": 3000}},
        {"name": "hypercall_77", "ph": "X", "ts": 9.25, "dur": 0.25, "tid": 1,
         "args": {"nr": 77, "op": None, "args": [], "result": -38, "slept": 0}},
        {"name": "end", "ph": "i", "s": "t", "ts": 9.6, "tid": 0,
         "args": {"kind": "shutdown", "status": 0}},
        {"name": "handler", "ph": "E", "ts": 9.6, "tid": 0},  # still open at the end
    ]  # fmt: skip
    assert doc["otherData"]["virtual_ns"] == 9600


def test_to_chrome_names_the_machine_and_writes_stable_bytes(tmp_path):
    machine = SimpleNamespace(domid=3, board=BOARD, vcpus=[object(), object()])
    doc = to_chrome(Trace(SimpleNamespace(now=0), enabled=True), machine)
    meta = {(e["name"], e["tid"]): e["args"]["name"] for e in doc["traceEvents"]
            if e["name"] in ("process_name", "thread_name")}  # fmt: skip
    assert meta == {("process_name", 0): "domU 3 (pvh-x86_64)", ("thread_name", 0): "vCPU0",
                    ("thread_name", 1): "vCPU1", ("thread_name", HOST_TID): "host"}  # fmt: skip
    assert {e["pid"] for e in doc["traceEvents"]} == {3}
    assert doc["otherData"]["vcpus"] == 2
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_chrome_trace(_hand_made(), a)
    write_chrome_trace(_hand_made(), b)
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert json.loads(text) == to_chrome(_hand_made())
    assert ", " not in text and text.index('"displayTimeUnit"') < text.index('"traceEvents"')
