# The Xen stub for one domain: hypercall dispatch, CPUID leaves, MSRs, I/O ports, the shared
# page, time records and shutdown. Hypercall families live in hypercalls/; they reach guest
# memory only through the copy helpers here, which turn a bad pointer into -EFAULT.
import struct

from micropv.runtime.abi import cpuid as C
from micropv.runtime.abi import hvm as H
from micropv.runtime.abi import sched as S
from micropv.runtime.abi import shared_info as SI
from micropv.runtime.abi import vcpu as V
from micropv.runtime.abi import xen as X

from ..emu.lapic import MSR_IA32_APICBASE
from ..emu.ram import GuestMemoryError
from . import hypercalls
from .backend import BackendDomain
from .errors import XenError, efault
from .event_2l import GuestDomain
from .sbi import VirtualSBI
from .shared_info import SharedInfoPage
from .upcall_riscv import RiscvUpcallDelivery
from .upcall_x86 import X86UpcallDelivery
from .vcpu import XenVCPU

# How an upcall reaches a vCPU, per architecture (Xen's arch_evtchn_inject).
UPCALL_DELIVERY = {"x86_64": X86UpcallDelivery, "riscv64": RiscvUpcallDelivery}

UCALL_PORT = 0x1000  # guest->harness messages, as KVM selftests' ucall port
MASK64 = 0xFFFFFFFFFFFFFFFF
# Hypercalls whose first argument is a sub-operation (cmd); the trace records it as `op`.
SUBOP_HYPERCALLS = frozenset((
    X.HYPERVISOR_sched_op_compat, X.HYPERVISOR_memory_op, X.HYPERVISOR_xen_version,
    X.HYPERVISOR_console_io, X.HYPERVISOR_grant_table_op, X.HYPERVISOR_vm_assist,
    X.HYPERVISOR_vcpu_op, X.HYPERVISOR_nmi_op, X.HYPERVISOR_sched_op, X.HYPERVISOR_callback_op,
    X.HYPERVISOR_event_channel_op, X.HYPERVISOR_physdev_op, X.HYPERVISOR_hvm_op,
    X.HYPERVISOR_kexec_op, X.HYPERVISOR_argo_op, X.HYPERVISOR_xenpmu_op, X.HYPERVISOR_hypfs_op,
))  # fmt: skip


def hypercall_name(nr):
    return X.HYPERCALL_NAMES.get(nr, f"hypercall_{nr}")


def hypercall_subop(nr, args):
    """The sub-operation a hypercall's first argument names, as its handler reads it; None
    for hypercalls without one. memory_op keeps a continuation's extent in the upper bits."""
    if not args or nr not in SUBOP_HYPERCALLS:
        return None
    return args[0] & (0x3F if nr == X.HYPERVISOR_memory_op else 0xFFFFFFFF)


class Xen:
    def __init__(self, machine, board):
        self.machine = machine
        self.board = board
        self.layout = SI.ARCH_LAYOUTS[board.arch]
        self.cpuid_base = board.cpuid_base
        self.shared_info = SharedInfoPage(machine, self.layout)
        self.shutdown_code = None
        self.hypercall_page = None
        self.table = dict(hypercalls.TABLE)
        self.counts = {}  # hypercall number -> calls, for benchmarks and reports
        self.hvm_params = {}
        self.grant_frames = {}  # grant-table frame idx -> gpfn (grant_table.py)
        self.grant_pages = {}  # gpfn above guest RAM -> host page of a grant frame there
        self.on_yield = []  # fn(vcpu) on SCHEDOP_yield: backends that poll (pvconsole)
        self.callback_type = None  # HVM_PARAM_CALLBACK_IRQ type (None: no callback)
        self.callback_vector = 0
        self.vcpus = [XenVCPU(self, cpu) for cpu in machine.vcpus]
        self.domain = GuestDomain(self, machine.domid, len(self.vcpus))
        self.sbi = VirtualSBI(self) if board.arch == "riscv64" else None  # ecall's other half
        self.backend = BackendDomain(self)
        self.domains = {machine.domid: self.domain, self.backend.domid: self.backend}
        self.domain.domains = self.backend.domains = self.domains
        self._write_wallclock()

    # Dispatch -------------------------------------------------------------------------------
    def hypercall(self, vcpu, nr):
        entry = self.table.get(nr)
        self.counts[nr] = self.counts.get(nr, 0) + 1
        trace = self.machine.trace
        entered = self.machine.clock.now
        if entry is None:
            result = -X.ENOSYS
            args = ()
        else:
            fn, nargs = entry
            args = vcpu.hypercall_args(nargs)
            try:
                result = fn(self, vcpu, *args)
            except XenError as e:
                result = -e.errno
        result &= MASK64
        if trace.enabled:
            # Recorded on the way out, so its time is the return; slept is how long the vCPU
            # blocked inside (SCHEDOP_block/poll), 0 for the rest.
            trace.event("hypercall", vcpu.id, nr=nr, name=hypercall_name(nr),
                        op=hypercall_subop(nr, args), args=tuple(args),
                        result=result - (1 << 64) if result >> 63 else result,
                        slept=self.machine.clock.now - entered)  # fmt: skip
        return result

    # Guest memory, validated ----------------------------------------------------------------
    def copy_from_guest(self, addr, n):
        try:
            self.machine.ram.check(addr, n)
        except GuestMemoryError:
            raise efault(addr, n) from None
        return self.machine.ram.read(addr, n)

    def copy_to_guest(self, addr, data):
        try:
            self.machine.ram.check(addr, len(data))
        except GuestMemoryError:
            raise efault(addr, len(data)) from None
        self.machine.ram.write(addr, data)

    def guest_u16(self, addr):
        return struct.unpack("<H", self.copy_from_guest(addr, 2))[0]

    def guest_u32(self, addr):
        return struct.unpack("<I", self.copy_from_guest(addr, 4))[0]

    def guest_set32(self, addr, v):
        self.copy_to_guest(addr, struct.pack("<I", v & 0xFFFFFFFF))

    # The shared page and frames -------------------------------------------------------------
    def map_shared_info(self, gfn):
        self.shared_info.map_at(gfn)
        for xv in self.vcpus:
            xv.refresh_vcpu_info()
        self.machine.trace.event("map_shared_info", 0, gfn=gfn)
        for vcpu in self.machine.vcpus:
            self.update_vcpu_system_time(vcpu)

    def remove_frame(self, gfn):
        if gfn == self.shared_info.gfn:
            self.shared_info.unmap()
            for xv in self.vcpus:
                xv.refresh_vcpu_info()
        else:
            self.machine.set_hole(gfn, True)

    def register_vcpu_info(self, xv, gfn, offset):
        """VCPUOP_register_vcpu_info: vcpu_info moves into guest RAM. Xen copies the current
        contents, then sets every selector bit and calls vcpu_mark_events_pending: the guest
        takes one (spurious) upcall and rescans. Ref: common/domain.c."""
        size = self.layout.vcpu_info_size
        # Xen's order (common/domain.c common_vcpu_op, then map_guest_area): address overflow
        # or an offset leaving the frame -EINVAL, already registered -EBUSY, misaligned or
        # page-crossing -ENXIO, not RAM -EINVAL.
        if gfn >= 1 << 52 or offset >= X.PAGE_SIZE:
            raise XenError(X.EINVAL, "vcpu_info address overflows its frame")
        if xv.vcpu_info_gpa is not None:
            raise XenError(X.EBUSY, "vcpu_info already registered")
        if offset & 7 or offset + size > X.PAGE_SIZE:
            raise XenError(X.ENXIO, "vcpu_info must be 8-byte aligned within one page")
        gpa = (gfn << X.PAGE_SHIFT) + offset
        if not self.machine.ram.valid(gpa, size):
            raise XenError(X.EINVAL, f"frame {gfn:#x} is not guest RAM")
        buf, base = xv.vcpu_info()
        contents = bytes(buf[base : base + size])
        self.machine.ram.write(gpa, contents)
        xv.vcpu_info_gpa = gpa
        xv.refresh_vcpu_info()
        self.machine.ram.set64(gpa + self.layout.pending_sel, (1 << 64) - 1)
        self.machine.trace.event("register_vcpu_info", xv.id, gpa=gpa)
        # The 0->1 edge rule applies: no new assertion if upcall_pending was already 1
        # (map_guest_area -> vcpu_mark_events_pending, xen/common/domain.c).
        xv.mark_events_pending()
        self.update_vcpu_system_time(xv.cpu)
        return 0

    # Event delivery -------------------------------------------------------------------------
    def upcall_delivery(self, xv):
        return UPCALL_DELIVERY[self.board.arch](xv)

    def set_callback_via(self, value):
        """HVM_PARAM_CALLBACK_IRQ (hvm_set_callback_via). Only the vector type does anything on
        PVH: for GSI, PCI INTx or 0 a domain without vIOAPIC/vPIC returns before tearing down
        the old via, so the old one (a vector, say) stays and nothing is re-asserted. The value
        is still stored (hvm_op.py), so value 1, the 'PV drivers loaded' trick, is harmless."""
        arch_via = getattr(UPCALL_DELIVERY[self.board.arch], "set_callback_via", None)
        if arch_via is not None:
            return arch_via(self, value)  # riscv64: micropv's own via (upcall_riscv.py)
        ctype = value >> H.HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT
        self.machine.trace.event("callback_via", -1, type=ctype, value=value)
        # xen/arch/x86/hvm/irq.c: via_type != vector && !has_vioapic(d) -> return
        if ctype != H.HVM_PARAM_CALLBACK_TYPE_VECTOR:
            return
        self.callback_type = ctype
        self.callback_vector = value & 0xFF
        for xv in self.vcpus:
            xv.assert_evtchn_irq()

    def check_pollers(self, port):
        """evtchn_check_pollers: wake a vCPU polling this port, or polling several."""
        for xv in self.vcpus:
            if xv.poll_evtchn is not None and (xv.poll_evtchn < 0 or xv.poll_evtchn == port):
                xv.kick()

    # Time (Xen's update_vcpu_system_time and update_domain_wallclock_time) -----------------
    def update_vcpu_system_time(self, vcpu):
        """Write vcpu_time_info under its seqlock: version odd while fields change, then even.
        It lives in the vCPU's current vcpu_info, wherever VCPUOP_register_vcpu_info put it
        (xen/arch/x86/time.c: __update_vcpu_system_time writes vcpu_info(v, time))."""
        buf, base = self.vcpus[vcpu.id].vcpu_info()
        t = base + self.layout.time
        version = struct.unpack_from("<I", buf, t + V.TIME_INFO_version)[0]
        struct.pack_into("<I", buf, t + V.TIME_INFO_version, ((version + 1) | 1) & 0xFFFFFFFF)
        # The board's counter (x86 TSC at 2 GHz, RISC-V `time` at 10 MHz) and its exact scale;
        # system_time is the stamp scaled, so guest time is a function of the counter alone
        # and never runs backwards across updates.
        b = self.board
        ticks = self.machine.clock.now * b.counter_hz // 1_000_000_000
        shifted = ticks << b.pvclock_shift if b.pvclock_shift >= 0 else ticks >> -b.pvclock_shift
        struct.pack_into("<Q", buf, t + V.TIME_INFO_tsc_timestamp, ticks & MASK64)
        struct.pack_into("<Q", buf, t + V.TIME_INFO_system_time,
                         ((shifted * b.pvclock_mul) >> 32) & MASK64)  # fmt: skip
        struct.pack_into("<I", buf, t + V.TIME_INFO_tsc_to_system_mul, b.pvclock_mul)
        buf[t + V.TIME_INFO_tsc_shift] = b.pvclock_shift & 0xFF
        buf[t + V.TIME_INFO_flags] = V.XEN_PVCLOCK_TSC_STABLE_BIT
        struct.pack_into("<I", buf, t + V.TIME_INFO_version,
                         (((version + 1) | 1) + 1) & 0xFFFFFFFF)  # fmt: skip

    def _write_wallclock(self):
        si, lay = self.shared_info, self.layout
        epoch = self.machine.wallclock_epoch_ns
        version = si.u32(lay.wc_version)
        si.set32(lay.wc_version, (version + 1) | 1)
        secs = epoch // 1_000_000_000
        si.set32(lay.wc_sec, secs)
        si.set32(lay.wc_nsec, epoch % 1_000_000_000)
        si.set32(lay.wc_sec_hi, secs >> 32)
        si.set32(lay.wc_version, ((version + 1) | 1) + 1)

    def vcpu_block(self, vcpu):
        self.vcpus[vcpu.id].deschedule()

    def vcpu_wake(self, vcpu):
        self.vcpus[vcpu.id].schedule_in()

    # Shutdown -------------------------------------------------------------------------------
    def domain_shutdown(self, reason):
        self.machine.shutdown(reason, self.shutdown_code)

    # CPUID, MSRs, ports (x86) ---------------------------------------------------------------
    def cpuid(self, vcpu, leaf, sub):
        if not 0x40000000 <= leaf <= 0x4FFFFFFF:
            return None
        base = self.cpuid_base
        i = leaf - base
        if i < 0 or i > 5:
            return (0, 0, 0, 0)  # no hypervisor answers here
        if i == 0:
            return (base + 5, C.XEN_CPUID_SIGNATURE_EBX, C.XEN_CPUID_SIGNATURE_ECX,
                    C.XEN_CPUID_SIGNATURE_EDX)  # fmt: skip
        if i == C.XEN_CPUID_LEAF_VERSION:
            return (X.XEN_VERSION_MAJOR << 16 | X.XEN_VERSION_MINOR, 0, 0, 0)
        if i == C.XEN_CPUID_LEAF_HYPERCALL:
            return (1, self.board.hypercall_msr, 0, 0)
        if i == C.XEN_CPUID_LEAF_HVM:
            flags = C.XEN_HVM_CPUID_VCPU_ID_PRESENT | C.XEN_HVM_CPUID_DOMID_PRESENT
            flags |= C.XEN_HVM_CPUID_UPCALL_VECTOR
            return (flags, vcpu.id, self.machine.domid, 0)
        return (0, 0, 0, 0)

    def wrmsr(self, vcpu, msr, value):
        if msr == self.board.hypercall_msr:
            return self._install_hypercall_page(vcpu, value)
        if msr == MSR_IA32_APICBASE:
            return vcpu.lapic.write_base_msr(value)
        return False

    def rdmsr(self, vcpu, msr):
        if msr == MSR_IA32_APICBASE:
            return vcpu.lapic.read_base_msr()
        return None

    def _install_hypercall_page(self, vcpu, value):
        # The low 12 bits select a page index; Xen has one page, so they must be 0 (#GP).
        if value & 0xFFF:
            return False
        gpa = value & ~0xFFF
        if not self.machine.ram.valid(gpa, X.PAGE_SIZE):
            return False
        page = bytearray(b"\xcc" * X.PAGE_SIZE)  # int3 filler
        vmcall = b"\x0f\x01\xd9" if self.board.cpu_vendor == "amd" else b"\x0f\x01\xc1"
        for nr in range(C.HYPERCALL_PAGE_SLOTS):
            slot = nr * C.HYPERCALL_PAGE_SLOT_SIZE
            if nr == X.HYPERVISOR_iret:
                page[slot : slot + 2] = b"\x0f\x0b"  # ud2: HVM guests have no iret hypercall
                continue
            page[slot : slot + 9] = b"\xb8" + nr.to_bytes(4, "little") + vmcall + b"\xc3"
        self.machine.ram.write(gpa, bytes(page))
        self.hypercall_page = gpa
        for v in self.machine.vcpus:
            v.sync_code(gpa, X.PAGE_SIZE)
        self.machine.trace.event("hypercall_page", vcpu.id, gpa=gpa)
        return True

    def io_out(self, vcpu, port, size, value):
        if port == UCALL_PORT and size == 4:
            self.machine.ucall(vcpu, value)
        elif port == 0xE9:  # XEN_HVM_DEBUGCONS_IOPORT
            self.machine.console_write(bytes([value & 0xFF]))

    def io_in(self, vcpu, port, size):
        return 0xE9 if port == 0xE9 else (1 << (8 * size)) - 1  # open bus reads all ones


SHUTDOWN_NAMES = {
    S.SHUTDOWN_poweroff: "poweroff",
    S.SHUTDOWN_reboot: "reboot",
    S.SHUTDOWN_suspend: "suspend",
    S.SHUTDOWN_crash: "crash",
    S.SHUTDOWN_watchdog: "watchdog",
    S.SHUTDOWN_soft_reset: "soft_reset",
}
