# Scheduler operations: yield and shutdown. Ref: public/sched.h.
from .abi import sched as S


def _with_reason(rt, cmd, reason):
    arg = rt.args.alloc(S.SHUTDOWN_SIZE)
    try:
        rt.hal.w32(arg + S.SHUTDOWN_reason, reason)
        return rt.hc.sched_op(cmd, arg)
    finally:
        rt.args.free(arg)


def shutdown(rt, reason):
    """SCHEDOP_shutdown: the domain stops; on micropv this call does not return."""
    return _with_reason(rt, S.SCHEDOP_shutdown, reason)


def shutdown_code(rt, reason):
    return _with_reason(rt, S.SCHEDOP_shutdown_code, reason)


def yield_(rt):
    return rt.hc.sched_op(S.SCHEDOP_yield)
