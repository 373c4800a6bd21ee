# Hypercall handlers, one module per family; each is a plain function registered by number.
# A handler gets (xen, vcpu, *args) with as many 64-bit arguments as it declares, and returns
# Xen's long result; it raises XenError(errno) for -errno. Unlisted numbers get -ENOSYS, as an
# HVM/PVH guest sees for hypercalls outside xen/include/hypercall-defs.c's hvm64 column.
from micropv.runtime.abi import xen as X

from . import console, event_channel, hvm, memory, sched, vcpu, version

TABLE = {
    X.HYPERVISOR_memory_op: (memory.memory_op, 2),
    X.HYPERVISOR_xen_version: (version.xen_version, 2),
    X.HYPERVISOR_console_io: (console.console_io, 3),
    X.HYPERVISOR_sched_op: (sched.sched_op, 2),
    X.HYPERVISOR_set_timer_op: (vcpu.set_timer_op, 1),
    X.HYPERVISOR_vcpu_op: (vcpu.vcpu_op, 3),
    X.HYPERVISOR_event_channel_op: (event_channel.event_channel_op, 2),
    X.HYPERVISOR_hvm_op: (hvm.hvm_op, 2),
}
