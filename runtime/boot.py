# Boot a guest: arch set-up, Xen discovery, hypercall page, shared_info, then the guest's
# main(rt). The order is a PVH guest's (reference/xen-abi.md §18): CPUID base search ->
# hypercall page MSR -> XENVER_version and get_features -> XENMEM_add_to_physmap(shared_info).
from . import console, hypervisor, pvclock, sched, timer, ucall
from ._compat import caller
from .abi import sched as S
from .abi import shared_info as SI
from .abi import xen as X
from .argstack import ArgStack
from .evtchn import CLEAR_FIRST, UNMASK_HYPERCALL_IF_PENDING, EventChannels
from .hypercall import Hypercalls
from .shared_info import map_shared_info
from .upcall import CALLBACK_VECTOR, HANDLERS_IRQ, Upcall

# Guest policies a run can choose (DESIGN §5); a guest's OPTIONS and the command line
# override these defaults.
DEFAULT_OPTIONS = {
    "callback": CALLBACK_VECTOR,
    "unmask": UNMASK_HYPERCALL_IF_PENDING,
    "handlers": HANDLERS_IRQ,
    "clear": CLEAR_FIRST,
}


def _arch_for(hal):
    if hal.arch == "x86_64":
        from .arch.x86_64 import Arch

        return Arch(hal)
    if hal.arch == "riscv64":
        from .arch.riscv64 import Arch

        return Arch(hal)
    raise ValueError("no runtime arch layer for %r" % hal.arch)


class Runtime:
    """What a guest's main(rt) is given: the machine through the HAL, the hypercalls, and a
    Solo5-like surface (console_write, clock_monotonic, clock_wall, exit) plus test messages."""

    def __init__(self, hal, options=None, config=None):
        self.hal = hal
        self.options = dict(DEFAULT_OPTIONS)
        if options:
            self.options.update(options)
        # What the host told this guest at boot (a command line, in PVH terms).
        self.config = dict(config or {})
        lay = hal.layout
        self.arch = _arch_for(hal)
        if not (options and options.get("callback")):
            self.options["callback"] = self.arch.callbacks[0]  # the arch's default method
        self.layout = SI.ARCH_LAYOUTS[hal.arch]
        self.args = ArgStack(lay["scratch"], 0x1000)
        self.hc = Hypercalls(self.arch)
        self.vcpu_id = 0
        # x86: CPUID signature search and the hypercall page; riscv64: SBI probe_extension.
        self.xen_found_at = self.arch.find_xen(self)
        self.xen_version = hypervisor.version(self)
        self.features = hypervisor.features(self, 0)
        self.shared_info = map_shared_info(self, lay["shared_info_gfn"])
        self._events = None
        self.upcall = None
        self.timer_port = 0
        self.timer_fired = False

    # Events, set up on first use -------------------------------------------------------------
    @property
    def events(self):
        """The event-channel layer. The first use sets it up as Solo5 and Mini-OS do at boot:
        mask every port, register the upcall (callback method from options), bind VIRQ_TIMER,
        then enable interrupts."""
        if self._events is None:
            opts = self.options
            self._events = EventChannels(self, opts["unmask"], opts["clear"])
            self.upcall = Upcall(self, opts["callback"], opts["handlers"])
            self._events.mask_all()
            self.upcall.setup()
            self.timer_port = self._events.bind_virq(X.VIRQ_TIMER, self.vcpu_id)
            self.bind(self.timer_port, self._on_timer)
            self.arch.sti()
        return self._events

    def _on_timer(self, port):
        self.timer_fired = True

    def bind(self, port, handler):
        """Run handler(port) on each event on port (top half or bottom half, per options),
        and unmask it."""
        ev = self.events
        ev.handlers[port] = handler
        ev.unmask(port)
        return port

    def bind_virq(self, virq, handler, vcpu=0):
        return self.bind(self.events.bind_virq(virq, vcpu), handler)

    def block_domain(self, until):
        """Mini-OS block_domain: call with interrupts off."""
        timer.block_domain(self, until)

    def poll(self, ports, timeout=0):
        return timer.poll(self, ports, timeout)

    def extraversion(self):
        return hypervisor.extraversion(self)

    # Solo5-style API ------------------------------------------------------------------------
    def console_write(self, text):
        console.write(self, text)

    def clock_monotonic(self):
        """Nanoseconds since boot (pvclock)."""
        return pvclock.system_time(self.hal, self.shared_info.time(self.vcpu_id), self.arch.counter)

    def clock_wall(self):
        """Nanoseconds since the Unix epoch: Xen's wallclock base plus system time."""
        base = pvclock.wallclock_base(self.hal, self.shared_info)
        return base + self.clock_monotonic()

    def yield_until(self, deadline):
        """Solo5's solo5_yield: wait until an event arrives or monotonic time reaches
        deadline; returns the list of ports that had events (empty on timeout)."""
        ev = self.events
        up = self.upcall
        up.run_deferred()  # queued handlers run before their ports are reported
        ready = up.take_ready()
        if ready:
            return [p for p in ready if p != self.timer_port]
        timer.block_until(self, deadline, lambda: any(p != self.timer_port for p in up.ready))
        return [p for p in up.take_ready() if p != self.timer_port] if ev else []

    def sleep_until(self, deadline):
        """Block until monotonic time reaches deadline, whatever arrives meanwhile."""
        while self.clock_monotonic() < deadline:
            self.yield_until(deadline)

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


def run(hal, main, options=None, config=None):
    """Boot and run main(rt); main's return value (None = 0) becomes the exit status."""
    rt = Runtime(hal, options, config)
    status = main(rt)
    rt.exit(0 if status is None else status)
