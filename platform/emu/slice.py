# What every vCPU's run loop does around one emu_start and one bridge call, in one place.
from ..clock import COST_BRIDGE_NS
from .stop import HostBug, Stop


def run_slice(vcpu, pc):
    """emu_start(pc) until the CPU stops; returns Unicorn's error code. A Stop (or the
    watchdog's KeyboardInterrupt) raised in a hook propagates as is; any other hook exception
    is a micropv bug and says so; a run that has ended raises Stop."""
    uc = vcpu.uc
    uc._hook_exception = None
    err = vcpu.fast.start(pc)
    exc = uc._hook_exception
    if exc is not None:
        uc._hook_exception = None
        if isinstance(exc, (Stop, KeyboardInterrupt)):
            raise exc
        raise HostBug(f"host exception in a Unicorn hook: {exc!r}") from exc
    if vcpu.machine.outcome is not None:
        raise Stop(vcpu.machine.outcome)
    return err


def run_bridge(vcpu, fn, at):
    """Guest code reached the bridge instruction at `at`: run the Python handler behind it.
    The host knows the bridge's address, not the runtime's vector."""
    vcpu.clock.advance(COST_BRIDGE_NS)
    trace = vcpu.trace
    if trace.enabled:
        trace.event("handler_start", vcpu.id, rip=at)
        fn()
        trace.event("handler_end", vcpu.id, rip=at)
    else:
        fn()
