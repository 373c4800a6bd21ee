# Event channel ABI: EVTCHNOP_* commands, argument structs, 2-level and FIFO constants.
# Ref: xen/include/public/event_channel.h
from .._compat import const

# event_channel_op(cmd, &arg). Ports (evtchn_port_t) are u32. OUT fields are written back
# only on success.
EVTCHNOP_bind_interdomain = const(0)
EVTCHNOP_bind_virq = const(1)
EVTCHNOP_bind_pirq = const(2)
EVTCHNOP_close = const(3)
EVTCHNOP_send = const(4)
EVTCHNOP_status = const(5)
EVTCHNOP_alloc_unbound = const(6)
EVTCHNOP_bind_ipi = const(7)
EVTCHNOP_bind_vcpu = const(8)
EVTCHNOP_unmask = const(9)
EVTCHNOP_reset = const(10)
EVTCHNOP_init_control = const(11)
EVTCHNOP_expand_array = const(12)
EVTCHNOP_set_priority = const(13)
# 14 (reset_cont) is Xen-internal.

# evtchn_status.status
EVTCHNSTAT_closed = const(0)
EVTCHNSTAT_unbound = const(1)
EVTCHNSTAT_interdomain = const(2)
EVTCHNSTAT_pirq = const(3)
EVTCHNSTAT_virq = const(4)
EVTCHNSTAT_ipi = const(5)

# 2-level ABI: sizeof(xen_ulong_t)^2 * 64 ports on 64-bit guests (1024 for 32-bit compat).
# Port p is bit p % 64 of evtchn_pending[p // 64] (same for mask); selector bit is p // 64.
EVTCHN_2L_NR_CHANNELS = const(4096)

# struct evtchn_alloc_unbound (8 bytes)
ALLOC_UNBOUND_SIZE = const(8)
ALLOC_UNBOUND_dom = const(0)  # u16
ALLOC_UNBOUND_remote_dom = const(2)  # u16
ALLOC_UNBOUND_port = const(4)  # u32, OUT

# struct evtchn_bind_interdomain (12 bytes)
BIND_INTERDOMAIN_SIZE = const(12)
BIND_INTERDOMAIN_remote_dom = const(0)  # u16
BIND_INTERDOMAIN_remote_port = const(4)  # u32
BIND_INTERDOMAIN_local_port = const(8)  # u32, OUT

# struct evtchn_bind_virq (12 bytes)
BIND_VIRQ_SIZE = const(12)
BIND_VIRQ_virq = const(0)  # u32
BIND_VIRQ_vcpu = const(4)  # u32
BIND_VIRQ_port = const(8)  # u32, OUT

# struct evtchn_bind_pirq (12 bytes)
BIND_PIRQ_SIZE = const(12)
BIND_PIRQ_pirq = const(0)  # u32
BIND_PIRQ_flags = const(4)  # u32
BIND_PIRQ_port = const(8)  # u32, OUT
BIND_PIRQ__WILL_SHARE = const(1)  # flags bit

# struct evtchn_bind_ipi (8 bytes)
BIND_IPI_SIZE = const(8)
BIND_IPI_vcpu = const(0)  # u32
BIND_IPI_port = const(4)  # u32, OUT

# struct evtchn_close / evtchn_send / evtchn_unmask (4 bytes, the port only)
PORT_ARG_SIZE = const(4)
PORT_ARG_port = const(0)  # u32

# struct evtchn_status (24 bytes); u is a union at 16, its members overlap.
STATUS_SIZE = const(24)
STATUS_dom = const(0)  # u16
STATUS_port = const(4)  # u32
STATUS_status = const(8)  # u32, OUT (EVTCHNSTAT_*)
STATUS_vcpu = const(12)  # u32, OUT (vCPU the port notifies)
STATUS_u = const(16)  # union, OUT
STATUS_unbound_dom = const(16)  # u16, OUT (u.unbound.dom)
STATUS_interdomain_dom = const(16)  # u16, OUT (u.interdomain.dom)
STATUS_interdomain_port = const(20)  # u32, OUT (u.interdomain.port)
STATUS_pirq = const(16)  # u32, OUT (u.pirq)
STATUS_virq = const(16)  # u32, OUT (u.virq)

# struct evtchn_bind_vcpu (8 bytes)
BIND_VCPU_SIZE = const(8)
BIND_VCPU_port = const(0)  # u32
BIND_VCPU_vcpu = const(4)  # u32

# struct evtchn_reset (2 bytes)
RESET_SIZE = const(2)
RESET_dom = const(0)  # u16

# struct evtchn_init_control (24 bytes); bytes 17..23 are _pad.
INIT_CONTROL_SIZE = const(24)
INIT_CONTROL_control_gfn = const(0)  # u64 (guest frame number)
INIT_CONTROL_offset = const(8)  # u32
INIT_CONTROL_vcpu = const(12)  # u32
INIT_CONTROL_link_bits = const(16)  # u8, OUT

# struct evtchn_expand_array (8 bytes)
EXPAND_ARRAY_SIZE = const(8)
EXPAND_ARRAY_array_gfn = const(0)  # u64 (guest frame number)

# struct evtchn_set_priority (8 bytes)
SET_PRIORITY_SIZE = const(8)
SET_PRIORITY_port = const(0)  # u32
SET_PRIORITY_priority = const(4)  # u32

# FIFO ABI. Priority 0 is the highest.
EVTCHN_FIFO_PRIORITY_MAX = const(0)
EVTCHN_FIFO_PRIORITY_DEFAULT = const(7)
EVTCHN_FIFO_PRIORITY_MIN = const(15)
EVTCHN_FIFO_MAX_QUEUES = const(16)

# Event word (u32): bit numbers of the flags, LINK in bits 16..0.
EVTCHN_FIFO_PENDING = const(31)
EVTCHN_FIFO_MASKED = const(30)
EVTCHN_FIFO_LINKED = const(29)
EVTCHN_FIFO_BUSY = const(28)
EVTCHN_FIFO_LINK_BITS = const(17)
EVTCHN_FIFO_LINK_MASK = const(0x1FFFF)
EVTCHN_FIFO_NR_CHANNELS = const(131072)  # 1 << EVTCHN_FIFO_LINK_BITS

# Event array: pages of 1024 event words, up to 128 pages, added with EXPAND_ARRAY.
# (Xen-internal names from common/event_fifo.c, not in the public header.)
EVTCHN_FIFO_EVENT_WORDS_PER_PAGE = const(1024)
EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES = const(128)

# struct evtchn_fifo_control_block (72 bytes), per vCPU at (control_gfn, offset); offset is
# 8-byte aligned and the block must not cross the page. Bytes 4..7 are _rsvd.
FIFO_CONTROL_BLOCK_SIZE = const(72)
FIFO_CONTROL_BLOCK_ready = const(0)  # u32, bit q set when queue q became non-empty
FIFO_CONTROL_BLOCK_head = const(8)  # u32[EVTCHN_FIFO_MAX_QUEUES], first port of each queue
