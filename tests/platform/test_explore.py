# The race explorer (platform/explore/): the planted historical bugs are found with at most two
# injected events and their printed schedules replay by themselves; the fixed twins are clean
# under the exhaustive k <= 2 search, which pruning cuts at least 10x; the reduction agrees with
# the plain enumeration; schedule strings round-trip; PCT, Hypothesis, ddmin, the pytest
# replay option, sharding, the monitors, and the RISC-V host-step seam.
import json
from pathlib import Path

import pytest
from micropv.platform import cli
from micropv.platform.explore import events as E
from micropv.platform.explore import hoststeps, monitors
from micropv.platform.explore.conflict import segments
from micropv.platform.explore.record import P_ADDR, P_ST, Placement, Target, execute, label_str
from micropv.platform.explore.schedule import Schedule
from micropv.platform.explore.search import ExploreError, Explorer
from micropv.platform.xen.irqs_riscv import MASK_FIRST, PENDING_FIRST

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parents[2]
BUGGY = ROOT / "examples" / "buggy"
PLANTED = {  # guest -> the check that catches it
    "unmask_checks_mask": "lost-wakeup",
    "hlt_loop": "deadline",
    "clear_after_handler": "lost-wakeup",
    "software_resend": "lost-wakeup",
}


def explorer(name, **kw):
    return Explorer(Target(str(BUGGY / f"{name}.py")), **kw)


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # schedule strings name guests relative to the current directory


# Planted bugs and their fixed twins ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PLANTED))
def test_planted_bug_is_found_and_replays(name, capsys):
    rep = explorer(name).exhaustive()
    f = rep.finding
    assert f is not None and f.violation.kind == PLANTED[name]
    assert 1 <= f.k <= 2
    assert f.violation.why  # the line saying why
    # The k = 2 search, counted when k = 1 finished: pruning cuts it at least 10x.
    assert rep.plain[2] >= 10 * rep.space[2], (rep.plain, rep.space)
    # The schedule string replays by itself.
    assert cli.main(["explore", "--replay", rep.schedule, "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"  {PLANTED[name]}: " in out and f"schedule: {rep.schedule}" in out


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_fixed_twin_is_clean_under_k2(name):
    rep = explorer(f"{name}_fixed").exhaustive()
    assert rep.finding is None, rep.finding and rep.finding.violation
    assert rep.levels[2] == rep.space[2] > 0
    assert rep.plain[2] >= 10 * rep.space[2], (rep.plain, rep.space)


def test_cli_prints_counterexample_and_the_printed_line_replays(capsys):
    status = cli.main(["explore", "examples/buggy/hlt_loop.py"])
    out = capsys.readouterr().out
    assert status == 1
    lines = out.splitlines()
    sched = next(ln for ln in lines if ln.startswith("schedule: "))[len("schedule: ") :]
    assert sched.startswith("mpv1;guest=examples/buggy/hlt_loop.py#")
    assert "why: its timer fired" in out  # the monitor's reason
    assert any("| vCPU0" in ln and "| host" in ln for ln in lines)  # the two columns
    assert any("steps touching no event state" in ln for ln in lines)  # folded stretches
    assert "without pruning" in out
    assert cli.main(["explore", "--replay", sched]) == 1
    assert "deadline: " in capsys.readouterr().out


def test_cli_clean_exit_status_and_counts(capsys):
    assert cli.main(["explore", "examples/buggy/hlt_loop_fixed.py"]) == 0
    out = capsys.readouterr().out
    assert "clean: no counterexample with up to 2 injected events" in out
    assert "runs:" in out and "with pruning" in out and "without" in out


def test_callback_method_decides_software_resend():
    # Mini-OS's choice, the level-like callback vector, survives its own software resend.
    rep = Explorer(Target(str(BUGGY / "software_resend.py"), options={"callback": "vector"}),
                   max_events=1).exhaustive()  # fmt: skip
    assert rep.finding is None


# The reduction ------------------------------------------------------------------------------------
def test_segments_agree_with_the_plain_enumeration():
    """Every placement inside a segment gives the verdict of the segment's representative:
    checked one by one for k = 1, with every stub instruction stored as its own point."""
    t = Target(str(BUGGY / "unmask_checks_mask.py"))
    ex = Explorer(t, max_events=1)
    ex.run_base()
    full = execute(t, ex.kinds, [], skip_plain=False)

    def verdict(placement):
        rec = execute(t, ex.kinds, [placement])
        return sorted(v.kind for v in monitors.check(rec, ex.base_kind))

    checked = differ = 0
    for ki, kind in enumerate(ex.kinds):
        for s, e in segments(full, ki, kind, 0, True):
            if not full.points[e][P_ST][ki] & E.ENABLED or s == e:
                continue
            want = verdict(Placement(kind, full.label(e)))
            for j in (s, (s + e) // 2):
                checked += 1
                differ += verdict(Placement(kind, full.label(j))) != want
    assert checked > 20 and differ == 0


def test_plain_counts_match_the_plain_enumeration():
    pruned = explorer("hlt_loop_fixed", max_events=1).exhaustive()
    plain = explorer("hlt_loop_fixed", max_events=1, prune=False).exhaustive()
    assert plain.mode == "plain" and plain.finding is None
    assert plain.levels[1] == pruned.plain[1] > 3 * pruned.levels[1]


def test_no_delivery_in_the_sti_shadow():
    """A timer expiring between `sti` and `hlt` is taken by the hlt (it wakes at once), never
    before it: the fixed twin's sleep stays correct at that exact boundary."""
    t = Target(str(BUGGY / "hlt_loop_fixed.py"))
    kinds = [E.Timer()]
    base = execute(t, kinds, [], skip_plain=False)
    stubs = {name: addr for addr, name in base.layout["stubs"].items()}
    hlt = stubs["safe_halt"] + 1  # sti; hlt; ret
    j = next(j for j, p in enumerate(base.points) if p[P_ADDR] == hlt and p[P_ST][0])
    rec = execute(t, kinds, [Placement(kinds[0], base.label(j))])
    assert rec.fired[0][2] == "fired" and not monitors.check(rec)
    whats = [ev[2] for ev in rec.trace[rec.points[rec.index(base.label(j))][4] :]]
    assert whats.index("hlt") < whats.index("inject")  # the hlt ran first, then woke


# Schedule strings ---------------------------------------------------------------------------------
def test_schedule_string_round_trips():
    s = Schedule("examples/buggy/x.py", "0123456789", "abcdef0123", "pvh-x86_64",
                 {"callback": "lapic", "unmask": "software-resend", "handlers": "irq",
                  "clear": "first"}, {"n": 3, "name": "x"}, 7,
                 [Placement(E.Send(1), (12, 0)), Placement(E.Timer(), (40, 3)),
                  Placement(E.Send(2), (40, 3))])  # fmt: skip
    text = s.format()
    assert ";" in text and "\n" not in text
    assert "ev=send(1)@b12,timer@b40.3,send(2)@b40.3" in text
    back = Schedule.parse("schedule: " + text)
    assert back.format() == text
    assert back.args == {"n": 3, "name": "x"} and back.seed == 7
    assert [str(p) for p in back.events] == [str(p) for p in s.events]
    assert label_str(back.events[1].label) == "b40.3"


@pytest.mark.parametrize("bad", ["", "mpv0;guest=x#1;board=b;ev=", "mpv1;board=b;ev=",
                                 "mpv1;guest=x#1;board=b;ev=send(1)", "mpv1;guest=x#1;board=b;"
                                 "ev=warp@b3"])  # fmt: skip
def test_bad_schedule_strings_are_refused(bad):
    with pytest.raises(ValueError):
        Schedule.parse(bad)


# PCT, Hypothesis, ddmin ---------------------------------------------------------------------------
def test_pct_finds_the_resend_and_minimises_it():
    rep = explorer("clear_after_handler").pct(runs=200, seed=1)
    assert rep.finding is not None and rep.finding.violation.kind == "lost-wakeup"
    assert rep.finding.k == 1  # ddmin / exhaustive re-search down to the fewest events


def test_random_mode_uses_hypothesis_and_shrinks():
    pytest.importorskip("hypothesis")
    rep = explorer("unmask_checks_mask").random(runs=150, seed=3)
    assert rep.finding is not None and rep.finding.violation.kind == "lost-wakeup"
    assert rep.finding.k == 1
    _, found = explorer("unmask_checks_mask").execute(rep.finding.placements)
    assert monitors.covers(found, "lost-wakeup")


def test_random_mode_without_hypothesis_says_so(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(ExploreError, match="Hypothesis"):
        explorer("unmask_checks_mask").random(runs=5)


def test_ddmin_is_one_minimal():
    from micropv.platform.explore.minimise import ddmin

    calls = []

    def fails(sub):
        calls.append(sub)
        return {3, 7} <= set(sub)

    assert ddmin(list(range(10)), fails) == [3, 7]


# Sharding and JSONL -------------------------------------------------------------------------------
def test_shards_split_the_search_and_jsonl_records_every_run(tmp_path, capsys):
    whole = explorer("hlt_loop_fixed").exhaustive()
    runs = []
    for i in range(2):
        out = tmp_path / f"shard{i}.jsonl"
        assert cli.main(["explore", "examples/buggy/hlt_loop_fixed.py", "--shard", f"{i}/2",
                         "--jsonl", str(out)]) == 0  # fmt: skip
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert lines[-1]["summary"] is True
        runs.append(lines[-1]["runs"] - 1)  # without the event-free run every shard makes
        assert len(lines) - 1 == lines[-1]["runs"]
    capsys.readouterr()
    assert sum(runs) == whole.runs - 1


def test_events_option_and_bad_values(capsys):
    assert cli.main(["explore", "examples/buggy/hlt_loop.py", "--events", "send:9",
                     "--max-events", "1"]) == 0  # fmt: skip
    assert cli.main(["explore", "examples/buggy/hlt_loop.py", "--events", "warp"]) == 2
    assert cli.main(["explore", "examples/buggy/hlt_loop.py", "--shard", "3/2"]) == 2
    assert cli.main(["explore"]) == 2
    capsys.readouterr()


# Monitors -----------------------------------------------------------------------------------------
def _guest(tmp_path, body, options=None):
    path = tmp_path / "g.py"
    path.write_text((f"OPTIONS = {options!r}\n" if options else "") + body)
    return str(path)


def test_hlt_with_interrupts_off_is_reported(tmp_path):
    path = _guest(tmp_path, "def main(rt):\n    rt.arch.cli()\n    rt.arch.halt()\n")
    rep = Explorer(Target(path), kinds=[E.Timer()]).exhaustive()
    assert rep.finding.k == 0 and rep.finding.violation.kind == "hlt-if0"


def test_handler_with_interrupts_on_is_reported(tmp_path):
    body = "def main(rt):\n    rt.events\n    rt.upcall._run_handler(rt.timer_port)\n"
    rep = Explorer(Target(_guest(tmp_path, body)), kinds=[E.Timer()]).exhaustive()
    assert rep.finding.violation.kind == "handler-if1"


def test_an_extra_eoi_is_reported(tmp_path):
    body = ("def main(rt):\n    rt.events\n"
            "    rt.arch.mmio_write32(0xFEE000B0, 0)  # EOI with nothing in service\n")  # fmt: skip
    rep = Explorer(Target(_guest(tmp_path, body, {"callback": "lapic"})),
                   kinds=[E.Timer()]).exhaustive()  # fmt: skip
    assert rep.finding.violation.kind == "eoi"


def test_guest_check_failures_are_reported(tmp_path):
    body = "def main(rt):\n    rt.check(False, 'planted')\n"
    rep = Explorer(Target(_guest(tmp_path, body)), kinds=[E.Timer()]).exhaustive()
    assert rep.finding.violation.kind == "guest-check"


# The pytest replay option -------------------------------------------------------------------------
def test_pytest_replay_option(pytester):
    rep = explorer("hlt_loop", max_events=1).exhaustive()
    quiet = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    pytester.makepyfile("def test_other():\n    pass\n")
    pytester.chdir()
    guest = pytester.path / "examples" / "buggy"
    guest.mkdir(parents=True)
    for name in ("hlt_loop.py", "hlt_loop_fixed.py"):
        (guest / name).write_text((BUGGY / name).read_text())
    res = pytester.runpytest_inprocess(*quiet, f"--micropv-replay={rep.schedule}")
    res.assert_outcomes(failed=1, deselected=1)
    res.stdout.fnmatch_lines(["*deadline: the wait for deadline*", "*| vCPU0*| host*"])
    # The same events against the fixed twin: the replay passes.
    fixed = rep.schedule.replace("hlt_loop.py#", "hlt_loop_fixed.py#")
    res = pytester.runpytest_inprocess(*quiet, f"--micropv-replay={fixed}")
    res.assert_outcomes(passed=1, deselected=1)
    res = pytester.runpytest_inprocess(*quiet, "--micropv-replay=nonsense")
    assert res.ret == pytest.ExitCode.USAGE_ERROR


# RISC-V host steps --------------------------------------------------------------------------------
def test_riscv_tracking_reversed_order_is_caught_shipped_order_is_clean():
    ok = hoststeps.riscv_tracking(PENDING_FIRST)
    assert ok.failing is None and ok.runs == 6  # every merge of 2 + 2 steps
    bad = hoststeps.riscv_tracking(MASK_FIRST)
    assert bad.failing == [("producer", "irqs_pending_mask"), ("consumer", "xchg irqs_pending_mask"),
                           ("consumer", "hvip"), ("producer", "irqs_pending")]  # fmt: skip
    assert "wfi never wakes" in bad.message
    assert bad.schedule.startswith("sw=producer:irqs_pending_mask,consumer:")
    assert hoststeps.riscv_tracking(MASK_FIRST, max_preemptions=1).failing is not None
