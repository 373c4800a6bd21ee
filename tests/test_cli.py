# The command line as a user meets it: the demo, board listing, errors, exit statuses, bench.
import json
import subprocess
import sys
from pathlib import Path

import pytest
from micropv.platform import cli

REPO = Path(__file__).resolve().parent.parent


def micropv(*args):
    return subprocess.run([sys.executable, "-m", "micropv.platform.cli", *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_hello_example_prints_and_exits_0():
    r = micropv("run", str(REPO / "examples" / "hello.py"))
    assert r.returncode == 0, r.stderr
    assert "Hello from a Python guest on micropv!" in r.stdout
    assert "Xen 4.19-micropv found at CPUID leaf 0x40000000" in r.stdout
    assert "pvclock:" in r.stdout and "wallclock: 1767225600." in r.stdout


def test_two_runs_print_the_same(tmp_path):
    a = micropv("run", str(REPO / "examples" / "hello.py"))
    b = micropv("run", str(REPO / "examples" / "hello.py"))
    assert a.stdout == b.stdout


def test_boards_lists_pvh_x86_64(capsys):
    assert cli.main(["boards"]) == 0
    assert "pvh-x86_64" in capsys.readouterr().out


@pytest.mark.parametrize(
    "body, status, stderr_has",
    [
        ("def main(rt):\n    return 7\n", 7, None),
        ("def main(rt):\n    raise ValueError('boom')\n", 1, "ValueError: boom"),
        ("def main(rt):\n    rt.check(1 == 2, 'one is two')\n", 1, "one is two"),
        ("def main(rt):\n    rt.arch.halt()\n", 3, "halted with interrupts disabled"),
        ("def main(rt):\n    while True:\n        rt.hal.r32(0x1000)\n", 5, "budget"),
    ],
    ids=["status", "exception", "check", "hlt-if0", "budget"],
)
def test_run_exit_statuses(tmp_path, body, status, stderr_has):
    guest = tmp_path / "g.py"
    guest.write_text(body)
    r = micropv("run", str(guest), "--max-virtual-ns", "2000000")
    assert r.returncode == status, r.stderr
    if stderr_has:
        assert stderr_has in r.stderr


def test_check_failure_names_file_and_line(tmp_path):
    guest = tmp_path / "g.py"
    guest.write_text("def main(rt):\n    rt.check(False, 'nope')\n")
    r = micropv("run", str(guest))
    assert "g.py:2" in r.stderr


def test_bad_input_is_a_clear_error(tmp_path):
    r = micropv("run", str(tmp_path / "missing.py"))
    assert r.returncode == 2 and "no such guest file" in r.stderr
    r = micropv("run", str(REPO / "examples" / "hello.py"), "--board", "nope")
    assert r.returncode == 2 and "unknown board 'nope'" in r.stderr
    (tmp_path / "nomain.py").write_text("x = 1\n")
    r = micropv("run", str(tmp_path / "nomain.py"))
    assert r.returncode == 2 and "main(rt)" in r.stderr


def test_bench_writes_json_rows(tmp_path):
    out = tmp_path / "bench.json"
    r = micropv("bench", "--quick", "--json", str(out))
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())
    metrics = {row["metric"] for row in rows}
    assert {"null_hypercalls_per_s", "injections_per_s", "floor_hook_roundtrip_us"} <= metrics
    for row in rows:
        assert set(row) == {"metric", "board", "callback", "value", "unit"}
        assert row["value"] > 0
        assert row["metric"] in r.stdout


def test_a_guest_stuck_in_pure_python_is_stopped_by_the_watchdog(tmp_path):
    # No machine call means no virtual time passes, so only the progress watchdog can end it.
    guest = tmp_path / "spin.py"
    guest.write_text("def main(rt):\n    while True:\n        pass\n")
    r = micropv("run", str(guest), "--stall-s", "0.5")
    assert r.returncode == 5
    assert "no machine call" in r.stderr and "spin.py\", line 2" in r.stderr
