# Boot a guest: arch set-up, Xen discovery, hypercall page, shared_info, then the guest's
# main(rt). The order is a PVH guest's (reference/xen-abi.md §18): CPUID base search ->
# hypercall page MSR -> XENVER_version and get_features -> XENMEM_add_to_physmap(shared_info).
from . import console, hypervisor, pvclock, sched, ucall
from ._compat import caller
from .abi import sched as S
from .abi import shared_info as SI
from .argstack import ArgStack
from .hypercall import Hypercalls
from .shared_info import map_shared_info


def _arch_for(hal):
    if hal.arch == "x86_64":
        from .arch.x86_64 import Arch

        return Arch(hal)
    raise ValueError("no runtime arch layer for %r" % hal.arch)


class Runtime:
    """What a guest's main(rt) is given: the machine through the HAL, the hypercalls, and a
    Solo5-like surface (console_write, clock_monotonic, clock_wall, exit) plus test messages."""

    def __init__(self, hal):
        self.hal = hal
        lay = hal.layout
        self.arch = _arch_for(hal)
        self.layout = SI.ARCH_LAYOUTS[hal.arch]
        self.args = ArgStack(lay["scratch"], 0x1000)
        self.hc = Hypercalls(self.arch)
        self.vcpu_id = 0
        base = hypervisor.find_cpuid_base(self.arch)
        if base is None:
            raise RuntimeError("not running on Xen: no XenVMMXenVMM CPUID signature")
        self.cpuid_base = base
        self.hypercall_msr = hypervisor.install_hypercall_page(
            self.arch, base, lay["hypercall_page"]
        )
        self.xen_version = hypervisor.version(self)
        self.features = hypervisor.features(self, 0)
        self.shared_info = map_shared_info(self, lay["shared_info_gfn"])
        self._wall_base = None

    def extraversion(self):
        return hypervisor.extraversion(self)

    # Solo5-style API ------------------------------------------------------------------------
    def console_write(self, text):
        console.write(self, text)

    def clock_monotonic(self):
        """Nanoseconds since boot (pvclock)."""
        return pvclock.system_time(self.hal, self.shared_info.time(self.vcpu_id), self.arch.rdtsc)

    def clock_wall(self):
        """Nanoseconds since the Unix epoch: Xen's wallclock base plus system time."""
        base = pvclock.wallclock_base(self.hal, self.shared_info)
        return base + self.clock_monotonic()

    def exit(self, status=0):
        """End the guest: status 0 powers off, anything else crashes, as Solo5's xen
        binding does; the status itself reaches the harness through a ucall first."""
        f, line = caller(1)
        ucall.send(self, ucall.UCALL_EXIT, f, line, status)
        sched.shutdown(self, S.SHUTDOWN_poweroff if status == 0 else S.SHUTDOWN_crash)
        raise SystemExit(status)  # not reached on micropv: shutdown ends the run

    # Guest -> test messages -----------------------------------------------------------------
    def sync(self, stage=0, value=0):
        f, line = caller(1)
        ucall.send(self, ucall.UCALL_SYNC, f, line, stage, value)

    def check(self, cond, msg="check failed"):
        if not cond:
            f, line = caller(1)
            ucall.send(self, ucall.UCALL_ABORT, f, line, 0, 0, msg)
        return cond

    def check_eq(self, a, b, msg=""):
        if a != b:
            f, line = caller(1)
            text = "%r != %r" % (a, b) + (": " + msg if msg else "")
            ucall.send(self, ucall.UCALL_ABORT, f, line, 0, 0, text)
        return a == b

    def done(self):
        f, line = caller(1)
        ucall.send(self, ucall.UCALL_DONE, f, line)


def run(hal, main):
    """Boot and run main(rt); main's return value (None = 0) becomes the exit status."""
    rt = Runtime(hal)
    status = main(rt)
    rt.exit(0 if status is None else status)
