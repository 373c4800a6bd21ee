# `micropv compare`: what the tool measures, read back from its JSON the way a user reads it.
# The sweeps are small (the storm runs a few tens of virtual ms), so this file stays fast.
import io
import json
import struct
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from micropv.platform import cli
from micropv.platform.compare import metrics, report, sweep
from micropv.platform.launch import run_guest
from micropv.platform.machine import load_guest_module

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CORRECT = {("vector", "hypercall-if-pending"), ("vector", "always-hypercall"),
           ("vector", "software-resend"), ("lapic", "hypercall-if-pending"),
           ("lapic", "always-hypercall")}  # fmt: skip


def compare(tmp_path, *argv, name="out.json"):
    """Run `micropv compare ... --json F` in this process; returns (exit status, rows)."""
    out = tmp_path / name
    status = cli.main(["compare", *argv, "--quiet", "--json", str(out)])
    return status, json.loads(out.read_text()) if status == 0 else None


def pick(rows, **want):
    return [r for r in rows if all(r[k] == v for k, v in want.items())]


@pytest.fixture(scope="module")
def storm(tmp_path_factory):
    """storm, default seed: callbacks vector, lapic, gsi x every unmask x both clear orders."""
    status, rows = compare(tmp_path_factory.mktemp("storm"), "storm", "--clear", "first,after")
    assert status == 0
    return rows


# What the storm shows ----------------------------------------------------------------------
def test_software_resend_loses_with_lapic_only(storm):
    (stuck,) = pick(storm, callback="lapic", unmask="software-resend", clear="first")
    assert stuck["lost"] > 0 and stuck["delivered"] < stuck["sent"]
    assert stuck["outcome"] == "deadlock"  # upcall_pending stays 1: nothing wakes the guest
    for cb, um in (("vector", "software-resend"), ("lapic", "hypercall-if-pending")):
        (row,) = pick(storm, callback=cb, unmask=um, clear="first")
        assert (row["status"], row["lost"], row["withheld"]) == (0, 0, 0), row
        assert row["delivered"] == row["sent"] > 100


def test_riscv64_seip_and_ssip_lose_nothing_with_correct_policies(tmp_path):
    status, rows = compare(tmp_path, "storm", "--board", "sbi-riscv64")
    assert status == 0
    for cb in ("seip", "ssip"):
        for um in ("hypercall-if-pending", "always-hypercall"):
            (row,) = pick(rows, callback=cb, unmask=um)
            assert (row["status"], row["lost"], row["withheld"]) == (0, 0, 0), row
            assert row["delivered"] == row["sent"] > 100 and row["upcalls"] > 100
    # seip is held while upcall_pending is 1, so a software resend works, as with `vector`;
    # ssip fires only on Xen's 0->1 edge, so it gets stuck as `lapic` does.
    (level,) = pick(rows, callback="seip", unmask="software-resend")
    (edge,) = pick(rows, callback="ssip", unmask="software-resend")
    assert level["lost"] == 0 and level["status"] == 0
    assert edge["lost"] > 0 and edge["outcome"] == "deadlock"


def test_clear_after_loses_the_resent_events(storm):
    for cb, um in sorted(CORRECT):
        (first,) = pick(storm, callback=cb, unmask=um, clear="first")
        (after,) = pick(storm, callback=cb, unmask=um, clear="after")
        assert first["lost"] == 0
        # One re-send per port arrives while that port's handler runs, and is erased.
        assert after["lost"] == 4, (cb, um)
        # The guest cannot tell: its own checks pass.
        assert after["status"] == 0


def test_always_hypercall_costs_one_hypercall_per_unmask(storm):
    for row in pick(storm, unmask="always-hypercall"):
        assert row["unmasks"] > 0 and row["unmask_hypercalls"] == row["unmasks"]
        assert row["hypercalls_per_unmask"] == 1.0
    for row in pick(storm, unmask="hypercall-if-pending", callback="vector"):
        assert 0 < row["unmask_hypercalls"] < row["unmasks"]  # only when the port was pending
    for row in pick(storm, unmask="software-resend"):
        assert row["unmask_hypercalls"] == 0


def test_vector_needs_no_eoi_and_lapic_one_per_upcall(storm):
    for row in pick(storm, callback="vector"):
        assert row["upcalls"] > 100 and row["eois"] == 0 and row["eois_per_event"] == 0
    for row in pick(storm, callback="lapic"):
        assert row["upcalls"] > 0 and row["eois"] == row["upcalls"]
        assert row["spurious"] >= 1  # registering the vector raises one on purpose


def test_gsi_delivers_nothing(storm):
    rows = pick(storm, callback="gsi")
    assert len(rows) == 6
    for row in rows:
        assert (row["delivered"], row["upcalls"], row["eois"]) == (0, 0, 0)
        assert row["lost"] + row["withheld"] == row["sent"] > 0
        assert row["latency_p50_ns"] is None and row["hypercalls_per_event"] is None


def test_rows_have_the_documented_keys_in_combination_order(storm):
    keys = {"board", "callback", "unmask", "handlers", "clear", "seed", "sent", "delivered",
            "coalesced", "lost", "upcalls", "spurious", "eois", "hypercalls_per_event",
            "latency_p50_ns", "latency_p99_ns", "latency_max_ns", "wall_s"}  # fmt: skip
    assert all(keys <= set(r) for r in storm)
    order = [(r["callback"], r["unmask"], r["clear"]) for r in storm]
    assert order[:3] == [("vector", "hypercall-if-pending", "first"),
                         ("vector", "hypercall-if-pending", "after"),
                         ("vector", "always-hypercall", "first")]  # fmt: skip
    assert [r["callback"] for r in storm[::6]] == ["vector", "lapic", "gsi"]


# Trace-based counts agree with the guest's own ---------------------------------------------
@pytest.mark.parametrize("callback, handlers", [("lapic", "irq"), ("vector", "deferred")])
def test_counts_match_the_runtime_counters(callback, handlers):
    storm = load_guest_module(str(EXAMPLES / "storm.py"))
    seen = {}

    def main(rt):
        try:
            return storm.main(rt)
        finally:
            up = rt.upcall
            seen.update(upcalls=up.upcalls, spurious=up.spurious, eois=up.eois)

    guest = SimpleNamespace(main=main, backend=storm.backend)
    machine, result = run_guest(guest, options={"callback": callback, "handlers": handlers},
                                trace=True)  # fmt: skip
    assert result.status == 0, result.outcome.message
    row, latencies = metrics.measure(machine, result)
    assert {k: row[k] for k in seen} == seen
    assert len(latencies) == row["delivered"] and latencies == sorted(latencies)


def test_lost_and_withheld_follow_the_definition():
    """Synthetic trace: port 5 is sent to twice, its handler runs after the first send only;
    port 6 is sent to while masked and never unmasked. A timer expiry with no VIRQ bound (no
    set_pending after it) never reached the guest."""
    ev = [
        (10, -1, "backend_send", {"port": 1}), (10, -1, "set_pending", {"port": 5, "coalesced": False}),
        (30, 0, "note", {"what": "dispatch", "value": 5}), (30, 0, "note", {"what": "handler", "value": 5}),
        (40, -1, "backend_send", {"port": 1}), (40, -1, "set_pending", {"port": 5, "coalesced": True}),
        (50, 0, "timer_fire", {"timer": "singleshot"}), (60, 0, "hlt", {}),
        (70, -1, "backend_send", {"port": 2}), (70, -1, "set_pending", {"port": 6, "coalesced": False}),
    ]  # fmt: skip
    masked = {6}
    hv = SimpleNamespace(domain=SimpleNamespace(is_masked=lambda p: p in masked), vcpus=[],
                         callback_type=None)  # fmt: skip
    row, latencies = metrics.measure(
        SimpleNamespace(hypervisor=hv), SimpleNamespace(trace=SimpleNamespace(events=ev))
    )
    assert (row["sent"], row["delivered"], row["coalesced"]) == (3, 1, 1)
    assert (row["lost"], row["withheld"], latencies) == (1, 1, [20])
    assert row["hlts"] == 1 and row["latency_p99_ns"] == 20


# The other workloads -------------------------------------------------------------------------
@pytest.mark.parametrize("workload, args, summary", [
    ("storm.py", {}, "storm: "), ("mixed.py", {}, "mixed: 100 ticks at 1000 Hz, 50 of 50"),
    ("timer.py", {"hz": 1000, "ticks": 200}, "timer: ok"),
])  # fmt: skip
def test_workloads_pass_their_own_checks(workload, args, summary):
    _, result = run_guest(str(EXAMPLES / workload), args=args)
    assert result.status == 0, result.outcome.message + result.console
    last = result.console.splitlines()[-1]
    assert last.startswith(summary) and len(result.console.splitlines()) == 1


def test_timer_at_1khz_and_pingpong(tmp_path):
    status, rows = compare(
        tmp_path,
        "timer",
        "--callbacks",
        "vector,lapic",
        "--unmask",
        "hypercall-if-pending",
        "--arg",
        "hz=1000",
        "--arg",
        "ticks=200",
    )
    assert status == 0
    for row in rows:
        assert (row["sent"], row["delivered"], row["lost"], row["status"]) == (200, 200, 0, 0)
        assert row["hlts_per_event"] == 1.0  # each tick wakes the guest from one hlt
    status, rows = compare(tmp_path, "pingpong", "--callbacks", "vector", "--unmask",
                           "always-hypercall", "--handlers", "irq,deferred", "--arg", "n=50",
                           name="pp.json")  # fmt: skip
    assert status == 0 and [r["handlers"] for r in rows] == ["irq", "deferred"]
    assert all(r["delivered"] == 50 and r["hlts"] == 0 for r in rows)
    assert rows[0]["latency_p50_ns"] < rows[1]["latency_p50_ns"]  # the bottom half waits


# Determinism, errors, output formats ----------------------------------------------------------
def test_same_command_twice_gives_the_same_json(tmp_path):
    argv = ("storm", "--callbacks", "lapic", "--unmask", "software-resend,hypercall-if-pending",
            "--seeds", "2", "--arg", "ms=5")  # fmt: skip
    _, a = compare(tmp_path, *argv, name="a.json")
    _, b = compare(tmp_path, *argv, "--jobs", "1", name="b.json")  # in-process this time
    for r in a + b:
        assert r.pop("wall_s") >= 0
    assert a == b and len(a) == 4 and [r["seed"] for r in a] == [0, 1, 0, 1]


@pytest.mark.parametrize("argv, message", [
    (["storm", "--callbacks", "seip"], "board pvh-x86_64 has no callback method 'seip'"),
    (["storm", "--unmask", "sometimes"], "unknown unmask algorithm 'sometimes'"),
    (["storm", "--handlers", "irq,irq"], "listed twice"),
    (["storm", "--board", "nope"], "unknown board 'nope'"),
    (["nosuchworkload"], "unknown workload 'nosuchworkload'"),
    (["storm", "--seeds", "0"], "--seeds must be at least 1"),
])  # fmt: skip
def test_invalid_requests_exit_2(capsys, argv, message):
    assert cli.main(["compare", *argv]) == 2
    assert message in capsys.readouterr().err


def test_table_csv_and_progress(tmp_path, capsys):
    out = tmp_path / "rows.csv"
    argv = ["compare", "pingpong", "--callbacks", "vector,gsi", "--unmask",
            "hypercall-if-pending", "--arg", "n=20", "--csv", str(out), "--jobs", "1"]  # fmt: skip
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "pingpong on pvh-x86_64: unmask hypercall-if-pending, handlers irq, " \
                       "clear first, seed 0"  # fmt: skip
    assert lines[1].split()[:6] == ["callback", "end", "sent", "deliv", "coal", "lost"]
    assert lines[3].split()[:6] == ["vector", "ok", "20", "20", "0", "0"]
    assert lines[4].split()[:3] == ["gsi", "exit", "1"]
    assert "compare: [2/2] gsi hypercall-if-pending irq first seed 0: shutdown" in captured.err
    header, *rows = out.read_text().splitlines()
    assert header.startswith("workload,board,callback,unmask,handlers,clear,seed,status")
    assert len(rows) == 2 and ",,," in rows[1]  # gsi: no latency, no per-event ratios


# Optional extras ------------------------------------------------------------------------------
def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and zlib.crc32(data[12 : 16 + length]) == struct.unpack(
        ">I", data[16 + length : 20 + length])[0]  # fmt: skip
    return struct.unpack(">II", data[16:24])


def test_plot_renders(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    png = tmp_path / "cmp.png"
    status = cli.main(
        [
            "compare",
            "storm",
            "--callbacks",
            "vector,lapic,gsi",
            "--unmask",
            "software-resend",
            "--arg",
            "ms=5",
            "--quiet",
            "--plot",
            str(png),
        ]
    )
    assert status == 0
    assert _png_size(png) == (1400, 600)
    assert png.stat().st_size > 20_000  # curves and bars, not an empty canvas


def test_works_without_the_optional_extras(tmp_path, monkeypatch, capsys):
    # None in sys.modules makes `import rich` / `import matplotlib` raise ImportError.
    for name in [m for m in sys.modules if m.split(".")[0] in ("rich", "matplotlib")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    png = tmp_path / "x.png"
    argv = ["compare", "pingpong", "--callbacks", "vector", "--unmask", "always-hypercall",
            "--arg", "n=10", "--quiet"]  # fmt: skip
    assert cli.main([*argv, "--plot", str(png)]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err and not png.exists()
    assert cli.main(argv) == 0
    assert "always-hypercall" in capsys.readouterr().out

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    rows = [dict(r, wall_s=0.0) for r, _ in sweep.run_all(
        sweep.combinations("pingpong", callbacks=["vector"], unmask=["always-hypercall"],
                           args={"n": 5}), progress=None)]  # fmt: skip
    term = Terminal()
    report.print_table(rows, term)  # a terminal, but no rich: plain text
    assert term.getvalue() == report.plain_table(rows)


def test_rich_table_on_a_terminal():
    pytest.importorskip("rich", reason="the cli extra (rich) is not installed")
    row = {"workload": "w", "board": "b", "callback": "vector", "unmask": "u", "handlers": "irq",
           "clear": "first", "seed": 0, "status": 0, "outcome": "shutdown", "sent": 1,
           "delivered": 1, "coalesced": 0, "lost": 0, "withheld": 0, "upcalls": 1,
           "spurious": 0, "eois": 0, "hypercalls_per_event": 1.0, "hlts_per_event": 0.0,
           "eois_per_event": 0.0, "mmio_per_event": 0.0, "hypercalls_per_unmask": 1.0,
           "latency_p50_ns": 185,
           "latency_p99_ns": 185, "latency_max_ns": 185, "wall_s": 0.01}  # fmt: skip

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    report.print_table([row], term)
    text = term.getvalue()
    assert text != report.plain_table([row]) and "185 ns" in text and "w on b" in text
