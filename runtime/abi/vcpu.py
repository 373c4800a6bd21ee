# vCPU ABI: VCPUOP_* commands, runstate, timers, vcpu_info registration, pvclock record.
# Ref: xen/include/public/vcpu.h, xen/include/public/xen.h (struct vcpu_time_info)
from .._compat import const

# vcpu_op(cmd, vcpuid, &arg)
VCPUOP_initialise = const(0)
VCPUOP_up = const(1)
VCPUOP_down = const(2)
VCPUOP_is_up = const(3)
VCPUOP_get_runstate_info = const(4)
VCPUOP_register_runstate_memory_area = const(5)
VCPUOP_set_periodic_timer = const(6)
VCPUOP_stop_periodic_timer = const(7)
VCPUOP_set_singleshot_timer = const(8)
VCPUOP_stop_singleshot_timer = const(9)
VCPUOP_register_vcpu_info = const(10)
VCPUOP_send_nmi = const(11)
VCPUOP_get_physid = const(12)
VCPUOP_register_vcpu_time_memory_area = const(13)
VCPUOP_register_runstate_phys_area = const(14)
VCPUOP_register_vcpu_time_phys_area = const(15)

# vcpu_runstate_info.state
RUNSTATE_running = const(0)
RUNSTATE_runnable = const(1)
RUNSTATE_blocked = const(2)
RUNSTATE_offline = const(3)
# Set in state_entry_time while Xen updates the area (VMASST_TYPE_runstate_update_flag).
XEN_RUNSTATE_UPDATE = const(1 << 63)

# vcpu_set_singleshot_timer.flags (flag bit 0; current Xen ignores it).
VCPU_SSHOTTMR_future = const(1)

# struct vcpu_set_singleshot_timer (16 bytes; 32-bit compat: 12)
SET_SINGLESHOT_TIMER_SIZE = const(16)
SET_SINGLESHOT_TIMER_timeout_abs_ns = const(0)  # u64, absolute system time
SET_SINGLESHOT_TIMER_flags = const(8)  # u32 (VCPU_SSHOTTMR_*)

# struct vcpu_set_periodic_timer (8 bytes)
SET_PERIODIC_TIMER_SIZE = const(8)
SET_PERIODIC_TIMER_period_ns = const(0)  # u64

# struct vcpu_register_vcpu_info (16 bytes)
REGISTER_VCPU_INFO_SIZE = const(16)
REGISTER_VCPU_INFO_mfn = const(0)  # u64, a GFN for HVM/PVH
REGISTER_VCPU_INFO_offset = const(8)  # u32, offset of vcpu_info inside that frame
REGISTER_VCPU_INFO_rsvd = const(12)  # u32

# struct vcpu_runstate_info (48 bytes; 32-bit compat: 44, state_entry_time at 4, time at 12)
RUNSTATE_INFO_SIZE = const(48)
RUNSTATE_INFO_state = const(0)  # int (RUNSTATE_*)
RUNSTATE_INFO_state_entry_time = const(8)  # u64, may carry XEN_RUNSTATE_UPDATE
RUNSTATE_INFO_time = const(16)  # u64[4], ns spent in each RUNSTATE_*

# struct vcpu_time_info (32 bytes, every arch). Seqlock-style: retry if version is odd or
# changed. now = system_time + (((tsc - tsc_timestamp) << tsc_shift, or >> -tsc_shift)
# * tsc_to_system_mul >> 32).
TIME_INFO_SIZE = const(32)
TIME_INFO_version = const(0)  # u32, odd while Xen updates
TIME_INFO_pad0 = const(4)  # u32
TIME_INFO_tsc_timestamp = const(8)  # u64, TSC (Arm: counter) at last update
TIME_INFO_system_time = const(16)  # u64, ns since boot at tsc_timestamp
TIME_INFO_tsc_to_system_mul = const(24)  # u32, 32.32 fixed point
TIME_INFO_tsc_shift = const(28)  # s8
TIME_INFO_flags = const(29)  # u8 (XEN_PVCLOCK_*)
TIME_INFO_pad1 = const(30)  # u8[2]

# vcpu_time_info.flags
XEN_PVCLOCK_TSC_STABLE_BIT = const(1 << 0)
XEN_PVCLOCK_GUEST_STOPPED = const(1 << 1)
