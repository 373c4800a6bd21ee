# Shared pytest setup for micropv's own tests.
import sys
import uuid
from pathlib import Path

import pytest

# tests/runtime/ modules import their shim as a top-level module (`from _rt import rt`), the
# way they must under MicroPython. pytest's default import mode puts that folder on sys.path
# by itself; appending it here keeps that working under --import-mode=importlib too.
_RUNTIME_TESTS = str(Path(__file__).resolve().parent / "runtime")
if _RUNTIME_TESTS not in sys.path:
    sys.path.append(_RUNTIME_TESTS)

# tests/test_micropython_gate.py stores its one-line summary in the pytest cache (the only
# channel from an xdist worker back to the controller); the controller prints it at the end.
# A per-session id stored next to it keeps a summary from an earlier run from being shown.
SUMMARY_KEY = "micropv/micropython_summary"
SESSION_KEY = "micropv/micropython_summary_session"
_INPUT_KEY = "micropv_session_id"


def _session_id(config):
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: the controller sent its id
        return workerinput.get(_INPUT_KEY)
    return getattr(config, "_micropv_session_id", None)


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        config._micropv_session_id = uuid.uuid4().hex


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):  # pytest-xdist, on the controller, once per worker
    node.workerinput[_INPUT_KEY] = node.config._micropv_session_id


@pytest.fixture
def micropython_gate_record(request):
    """Call with the gate's summary line to have it printed at the end of the run."""
    config = request.config

    def record(summary):
        config._micropv_gate_summary = summary  # same process (no xdist)
        cache = getattr(config, "cache", None)
        if cache is not None:
            cache.set(SUMMARY_KEY, summary)
            cache.set(SESSION_KEY, _session_id(config))

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return
    summary = getattr(config, "_micropv_gate_summary", None)
    cache = getattr(config, "cache", None)
    if summary is None and cache is not None:
        if cache.get(SESSION_KEY, None) == config._micropv_session_id:
            summary = cache.get(SUMMARY_KEY, None)
    if summary:
        terminalreporter.write_line(summary, bold=True)
