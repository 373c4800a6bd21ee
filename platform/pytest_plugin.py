# micropv's pytest plugin (entry point `pytest11`): run guests from tests.
#   def test_hello(micropv_run):
#       result = micropv_run(main)            # main(rt), or a path to a guest file
#       assert result.status == 0
import pytest


def pytest_addoption(parser):
    group = parser.getgroup("micropv")
    group.addoption("--micropv-board", default="pvh-x86_64", help="board for micropv_run")


@pytest.fixture
def micropv_board(request):
    from micropv import boards

    return boards.get(request.config.getoption("--micropv-board"))


@pytest.fixture
def micropv_machine(micropv_board):
    """A fresh machine; call .run_python(main) on it after any host-side set-up."""
    from micropv.platform.machine import Machine

    return Machine(micropv_board, budget_ns=10 * 10**9, trace=True)


@pytest.fixture
def micropv_run(micropv_board):
    """micropv_run(guest, budget_ns=..., board=...) -> Result; guest is main(rt) or a path."""
    from micropv.platform.machine import Machine, load_guest

    from micropv import boards

    def run(guest, budget_ns=10 * 10**9, board=None, trace=True):
        b = boards.get(board) if isinstance(board, str) else (board or micropv_board)
        main = load_guest(str(guest)) if not callable(guest) else guest
        return Machine(b, budget_ns=budget_ns, trace=trace).run_python(main)

    return run
