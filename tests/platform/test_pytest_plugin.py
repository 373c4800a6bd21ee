# The pytest plugin itself: callback_method parametrisation (ids, --micropv-callback, the
# callbacks marker) checked on inner pytest runs, and the guest runner's inputs and outputs.
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Inner runs: no cache, and no hypothesis plugin (its terminal summary costs ~1 s a run).
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

INNER = """
import pytest

def test_any(callback_method):
    pass

@pytest.mark.callbacks("lapic")
def test_lapic_only(callback_method):
    pass

@pytest.mark.callbacks("gsi")
def test_gsi_only(callback_method):
    pass

@pytest.mark.parametrize("callback_method", ["intx"])
def test_own_values(callback_method):
    assert callback_method == "intx"

def test_runs_with_it(micropv_guest, callback_method):
    seen = {}

    def main(rt):
        seen["callback"] = rt.options["callback"]

    result = micropv_guest(main)
    assert result.status == 0 and seen["callback"] == callback_method
"""


def _ids(pytester, *args):
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("--collect-only", "-q", *QUIET, *args)
    return sorted(line.split("::", 1)[1] for line in result.outlines if "::" in line)


def test_callback_method_ids_default_to_the_delivering_methods(pytester):
    assert _ids(pytester) == [
        "test_any[lapic]", "test_any[vector]", "test_gsi_only[no-callback]",
        "test_lapic_only[lapic]", "test_own_values[intx]",
        "test_runs_with_it[lapic]", "test_runs_with_it[vector]",
    ]  # fmt: skip


def test_micropv_callback_option_selects(pytester):
    assert _ids(pytester, "--micropv-callback=lapic") == [
        "test_any[lapic]", "test_gsi_only[no-callback]", "test_lapic_only[lapic]",
        "test_own_values[intx]", "test_runs_with_it[lapic]",
    ]  # fmt: skip
    assert _ids(pytester, "--micropv-callback=vector,gsi") == [
        "test_any[gsi]", "test_any[vector]", "test_gsi_only[gsi]", "test_lapic_only[no-callback]",
        "test_own_values[intx]", "test_runs_with_it[gsi]", "test_runs_with_it[vector]",
    ]  # fmt: skip


def test_unknown_callback_method_is_a_usage_error(pytester):
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("--micropv-callback=msi", *QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no callback method 'msi'*"])


def test_inner_run_results(pytester):
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest(*QUIET, "-rs")
    result.assert_outcomes(passed=6, skipped=1)
    result.stdout.fnmatch_lines(["*callback methods gsi not selected by --micropv-callback=all*"])


def test_marker_is_registered(pytester):
    result = pytester.runpytest("--markers", *QUIET)
    result.stdout.fnmatch_lines(["@pytest.mark.callbacks(*methods):*"])


# The runner ----------------------------------------------------------------------------------
def test_runner_takes_a_path_with_options_args_and_config(micropv_guest):
    result = micropv_guest(EXAMPLES / "pingpong.py", callback="lapic",
                           options={"unmask": "always-hypercall"}, args={"n": 3},
                           config={"unused": 1})  # fmt: skip
    assert result.status == 0 and result.console.endswith("round trips: 3\n")
    assert result.machine.hypervisor.vcpus[0].upcall_vector == 0x20
    assert result.trace.of_kind("hypercall") and result.virtual_ns > 0
    assert result.outcome.kind == "shutdown"


def test_runner_takes_a_module_like_object_and_setup(micropv_guest):
    order = []

    class Guest:
        OPTIONS = {"handlers": "deferred"}

        @staticmethod
        def backend(machine, args):
            order.append(("backend", args))
            return {"from_backend": 1}

        @staticmethod
        def main(rt):
            order.append(
                (
                    "main",
                    rt.options["handlers"],
                    rt.config["from_backend"],
                    rt.config["from_config"],
                    rt.config["from_setup"],
                    rt.config["k"],
                )
            )
            rt.sync(7, 9)
            rt.console_write("hi\n")
            return 3

    def setup(machine):
        order.append(("setup",))
        machine.on_sync = lambda m, msg: order.append(("sync", msg.a, msg.b))
        return {"from_setup": 2}

    result = micropv_guest(Guest, args={"k": "v"}, config={"from_config": 4}, setup=setup)
    assert order == [("backend", {"k": "v"}), ("setup",), ("main", "deferred", 1, 4, 2, "v"),
                     ("sync", 7, 9)]  # fmt: skip
    assert (result.status, result.console) == (3, "hi\n")
    assert [m.kind for m in result.messages] == ["sync", "exit"]


def test_explicit_callback_beats_callback_method(micropv_guest, callback_method):
    seen = []
    result = micropv_guest(lambda rt: seen.append(rt.options["callback"]), callback="gsi")
    assert result.status == 0 and seen == ["gsi"]


def test_micropv_run_still_takes_main_and_budget(micropv_run):
    result = micropv_run(lambda rt: rt.sleep_until(10**9), 10**6)
    assert (result.status, result.outcome.kind) == (5, "budget")
