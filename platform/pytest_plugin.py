# micropv's pytest plugin (entry point `pytest11`): run guests from tests, once per callback
# method. docs/pytest.md has the whole surface; the short of it:
#   @pytest.mark.callbacks("vector", "lapic")     # optional: restrict the methods
#   def test_pingpong(micropv_guest, callback_method):
#       result = micropv_guest("examples/pingpong.py", args={"n": 200})
#       assert result.status == 0                 # ran with callback = callback_method
import pytest

DEFAULT_BUDGET_NS = 10 * 10**9
_ALL = "all"


def pytest_addoption(parser):
    group = parser.getgroup("micropv")
    group.addoption(
        "--micropv-board",
        default="pvh-x86_64",
        help="board the micropv fixtures run guests on (default pvh-x86_64)",
    )
    group.addoption("--micropv-callback", default=_ALL, metavar="all|METHOD[,METHOD...]",
                    help="callback methods the callback_method fixture runs over: 'all' (every "
                         "method that delivers events on the board; on pvh-x86_64 vector and "
                         "lapic) or a comma-separated list, e.g. 'lapic' or 'vector,gsi'")  # fmt: skip
    group.addoption("--micropv-replay", metavar="SCHEDULE", default=None,
                    help="run this race-explorer schedule string (as `micropv explore` prints "
                         "it) instead of the collected tests: fails while it still breaks a "
                         "check")  # fmt: skip


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "callbacks(*methods): run this test only with these callback methods (applies to "
        "the callback_method fixture; the test is skipped if none of them is selected)",
    )
    if config.getoption("--micropv-callback") != _ALL:
        selected_callbacks(config)  # a bad name is a usage error now, not at collection
    if config.getoption("--micropv-replay"):
        from micropv.platform.explore import replay

        replay.configure(config, config.getoption("--micropv-replay"))


# Callback-method selection ----------------------------------------------------------------------
def _board(config):
    from micropv import boards

    try:
        return boards.get(config.getoption("--micropv-board"))
    except ValueError as e:
        raise pytest.UsageError(f"--micropv-board: {e}") from None


def delivering_callbacks(board):
    """The board's callback methods that deliver events (what `all` means)."""
    return tuple(c for c in board.callbacks if c not in board.inert_callbacks)


def selected_callbacks(config, board=None):
    """The methods --micropv-callback selects, in the order given."""
    board = board or _board(config)
    value = config.getoption("--micropv-callback")
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names or names == [_ALL]:
        return delivering_callbacks(board)
    unknown = [n for n in names if n not in board.callbacks]
    if unknown:
        raise pytest.UsageError(f"--micropv-callback: board {board.name} has no callback "
                                f"method {', '.join(map(repr, unknown))}; it has "
                                f"{', '.join(board.callbacks)} (or 'all')")  # fmt: skip
    return tuple(dict.fromkeys(names))


def _parametrized_by_test(metafunc, name):
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(argnames, str):
            argnames = [a.strip() for a in argnames.split(",")]
        if name in argnames:
            return True
    return False


def pytest_generate_tests(metafunc):
    if "callback_method" not in metafunc.fixturenames:
        return
    if _parametrized_by_test(metafunc, "callback_method"):
        return  # the test chose its own values
    board = _board(metafunc.config)
    methods = selected_callbacks(metafunc.config, board)
    mark = metafunc.definition.get_closest_marker("callbacks")
    if mark is not None:
        unknown = [m for m in mark.args if m not in board.callbacks]
        if unknown:
            raise ValueError(f"@pytest.mark.callbacks: board {board.name} has no callback "
                             f"method {', '.join(map(repr, unknown))}")  # fmt: skip
        methods = tuple(m for m in methods if m in mark.args)
    if methods:
        metafunc.parametrize("callback_method", methods, ids=list(methods), indirect=True)
    else:
        why = (
            f"callback methods {', '.join(mark.args) if mark else '-'} not selected by "
            f"--micropv-callback={metafunc.config.getoption('--micropv-callback')}"
        )
        metafunc.parametrize("callback_method", [pytest.param(None, marks=pytest.mark.skip(
            reason=why))], ids=["no-callback"], indirect=True)  # fmt: skip


@pytest.fixture
def callback_method(request):
    """The upcall method this run of the test uses ("vector", "lapic", ...): the test runs
    once per method --micropv-callback selects, narrowed by @pytest.mark.callbacks.
    micropv_guest / micropv_run use it unless told otherwise."""
    return request.param


# Boards, machines, guests ---------------------------------------------------------------------------
@pytest.fixture
def micropv_board(request):
    return _board(request.config)


@pytest.fixture
def micropv_machine(micropv_board):
    """A fresh machine; call .run_python(main) on it after any host-side set-up."""
    from micropv.platform.machine import Machine

    return Machine(micropv_board, budget_ns=DEFAULT_BUDGET_NS, trace=True)


def _runner(request, default_board):
    from micropv.platform.launch import run_guest

    def run(guest, budget_ns=DEFAULT_BUDGET_NS, board=None, trace=True, *, options=None,
            config=None, args=None, callback=None, seed=0, setup=None, console=None):  # fmt: skip
        """Run a guest; returns its Result (.status, .console, .trace, .messages, .outcome,
        .virtual_ns) with .machine set to the machine it ran on.

        guest: main(rt), a path to a guest file, or a module-like object with main (and
        optionally OPTIONS and backend(machine, args), as for `micropv run`).
        options: guest policies over the guest's OPTIONS; callback: options["callback"]
        (default: the test's callback_method, if it uses that fixture).
        args: what `--arg` gives (backend and rt.config); config: more rt.config entries.
        setup(machine): host-side set-up just before the run (e.g. machine.on_sync = ...);
        it may return more rt.config entries."""
        opts = dict(options or {})
        if callback is not None:
            opts["callback"] = callback
        elif "callback" not in opts and "callback_method" in request.fixturenames:
            method = request.getfixturevalue("callback_method")
            if method is not None:
                opts["callback"] = method
        machine, result = run_guest(guest, board=board or default_board, options=opts,
                                    args=args, seed=seed, budget_ns=budget_ns, trace=trace,
                                    console=console, config=config, setup=setup)  # fmt: skip
        result.machine = machine
        return result

    return run


@pytest.fixture
def micropv_guest(request, micropv_board):
    """micropv_guest(guest, options=..., config=..., args=..., setup=..., budget_ns=...,
    board=..., callback=..., seed=..., trace=True) -> Result. See _runner.run."""
    return _runner(request, micropv_board)


@pytest.fixture
def micropv_run(request, micropv_board):
    """The same runner as micropv_guest (older name): micropv_run(main_or_path, budget_ns=...,
    board=..., trace=..., options=..., ...) -> Result."""
    return _runner(request, micropv_board)
