# The MicroPython gate: runtime/ compiles with mpy-cross and tests/runtime/ passes under the
# MicroPython unix port. The work is in tools/mpcheck.py; tests/conftest.py prints the summary.
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _load_mpcheck():
    spec = importlib.util.spec_from_file_location("micropv_mpcheck", REPO / "tools" / "mpcheck.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_micropython_gate(micropython_gate_record):
    ok, summary, details = _load_mpcheck().check(REPO)
    micropython_gate_record(summary)
    assert ok, f"{summary}\n{details}"
