# Scheduler ABI: SCHEDOP_* commands, shutdown reasons, argument structs.
# Ref: xen/include/public/sched.h
from .._compat import const

# sched_op(cmd, &arg)
SCHEDOP_yield = const(0)
SCHEDOP_block = const(1)
SCHEDOP_shutdown = const(2)
SCHEDOP_poll = const(3)
SCHEDOP_remote_shutdown = const(4)
SCHEDOP_shutdown_code = const(5)
SCHEDOP_watchdog = const(6)
SCHEDOP_pin_override = const(7)

# Shutdown reasons (sched_shutdown.reason, sched_remote_shutdown.reason).
SHUTDOWN_poweroff = const(0)
SHUTDOWN_reboot = const(1)
SHUTDOWN_suspend = const(2)
SHUTDOWN_crash = const(3)
SHUTDOWN_watchdog = const(4)
SHUTDOWN_soft_reset = const(5)
SHUTDOWN_MAX = const(5)

# Struct layouts below use the struct name without "sched_": SHUTDOWN_reason is the offset
# of the reason field, not a reason value.

# struct sched_shutdown (4 bytes)
SHUTDOWN_SIZE = const(4)
SHUTDOWN_reason = const(0)  # u32 (SHUTDOWN_*)

# struct sched_poll (24 bytes). timeout is an absolute system time in ns, 0 = forever.
# (32-bit compat: 16 bytes, nr_ports at 4, timeout at 8.)
SCHED_POLL_MAX_PORTS = const(128)
POLL_SIZE = const(24)
POLL_ports = const(0)  # guest handle (u64) to evtchn_port_t[nr_ports]
POLL_nr_ports = const(8)  # u32; bytes 12..15 are padding
POLL_timeout = const(16)  # u64

# struct sched_remote_shutdown (8 bytes)
REMOTE_SHUTDOWN_SIZE = const(8)
REMOTE_SHUTDOWN_domain_id = const(0)  # u16
REMOTE_SHUTDOWN_reason = const(4)  # u32 (SHUTDOWN_*)
