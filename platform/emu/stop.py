# How a run ends. A Stop unwinds the guest's Python stack from whichever HAL call it is in;
# it derives from BaseException so a guest's `except Exception` cannot swallow it.
from dataclasses import dataclass, field

# Exit statuses of `micropv run` that are not the guest's own (docs/cli.md).
EXIT_GUEST_ERROR = 1  # the guest's Python raised, or a guest check failed
EXIT_VCPU_FAULT = 3  # CPU exception, hlt with interrupts off, bad trap: the vCPU is dead
EXIT_DEADLOCK = 4  # every vCPU blocked with nothing left that could wake it
EXIT_BUDGET = 5  # the virtual-time budget ran out


@dataclass
class Outcome:
    kind: str  # "shutdown", "fault", "deadlock", "budget", "guest-error", "check"
    status: int
    message: str
    report: str = ""
    reason: int | None = None  # SHUTDOWN_* for kind == "shutdown"
    details: dict = field(default_factory=dict)


class Stop(BaseException):
    def __init__(self, outcome: Outcome):
        super().__init__(outcome.message)
        self.outcome = outcome


class HostBug(Exception):
    """A host-side exception inside a Unicorn hook: a micropv bug, never the guest's fault,
    so it is re-raised with its own traceback instead of being reported as a guest error."""
