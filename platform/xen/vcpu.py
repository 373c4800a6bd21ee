# Xen's per-vCPU state: where its vcpu_info lives, its upcall vector, its timers, and whether it
# is blocked or polling. Ref: xen/include/xen/sched.h (struct vcpu), xen/common/sched/core.c.
from micropv.runtime.abi import xen as X

from ..clock import Timer
from ..emu.stop import EXIT_DEADLOCK, Outcome

MILLISECS = 1_000_000


class XenVCPU:
    def __init__(self, xen, cpu):
        self.xen = xen
        self.cpu = cpu  # the emulated vCPU
        self.id = cpu.id
        self.trace = xen.machine.trace
        self.clock = xen.machine.clock
        self.vcpu_info_gpa = None  # set by VCPUOP_register_vcpu_info
        self.upcall_vector = 0  # HVMOP_set_evtchn_upcall_vector
        self.upcalls = 0
        self.singleshot = Timer(self._timer_fired, f"vcpu{self.id}.singleshot")
        self.periodic = Timer(self._periodic_fired, f"vcpu{self.id}.periodic")
        self.period_ns = 0  # PVH vCPUs start with no periodic tick
        self.periodic_last = 0
        self.poll_timer = Timer(self._poll_timeout, f"vcpu{self.id}.poll")
        self.poll_evtchn = None  # None: not polling; -1: any port; else the one port
        self.kicked = False
        self.refresh_vcpu_info()
        # How an asserted upcall reaches this vCPU is the architecture's business.
        self.delivery = xen.upcall_delivery(self)

    def vcpu_info(self):
        """(buffer, offset) of this vCPU's vcpu_info: its slot in shared_info, or wherever
        VCPUOP_register_vcpu_info put it. Cached: it is read at every interrupt window."""
        return self._vi

    def refresh_vcpu_info(self):
        """Call whenever shared_info or this vcpu_info moves."""
        if self.vcpu_info_gpa is None:
            si = self.xen.shared_info
            self._vi = (si.buf, si.base + self.xen.layout.vcpu_info(self.id))
        else:
            self._vi = (self.xen.machine.ram.buf, self.vcpu_info_gpa)

    # Notification -------------------------------------------------------------------------------
    def mark_events_pending(self):
        """vcpu_mark_events_pending: only the 0->1 change of upcall_pending notifies."""
        buf, base = self.vcpu_info()
        if buf[base] & 1:
            return
        buf[base] |= 1
        self.trace.event("upcall_pending", self.id)
        self.assert_evtchn_irq()

    def assert_evtchn_irq(self):
        """hvm_assert_evtchn_irq / arch_evtchn_inject: make the upcall pending on the CPU."""
        self.delivery.assert_evtchn_irq()

    def _poll_timeout(self):
        self.trace.event("poll_timeout", self.id)
        self.kick()

    def kick(self):
        self.kicked = True
        if self.poll_evtchn is not None:
            self.poll_evtchn = None

    def need_delivery(self):
        """local_events_need_delivery on HVM: an injectable interrupt that is not blocked."""
        cpu = self.cpu
        return cpu.pending_source() is not None and cpu.interrupts_enabled()

    def wait(self, what):
        """Sleep inside a hypercall until kicked, letting virtual time run to each next timer.
        Returns False when nothing can ever kick us (the run is then over: deadlock)."""
        self.trace.event("block", self.id, what=what)
        self.deschedule()
        while not self.kicked:
            if not self.clock.skip_to_next_deadline():
                self.xen.machine.finish(Outcome(
                    "deadlock", EXIT_DEADLOCK,
                    f"vCPU{self.id} blocked in {what} with nothing that could wake it "
                    "(no event can arrive and no timer is armed)"))  # fmt: skip
                return False
        self.trace.event("wake", self.id, what=what)
        self.schedule_in()
        return True

    # Scheduling (xen/common/sched/core.c) ----------------------------------------------------
    def deschedule(self):
        """The vCPU stops running (blocked or halted): Xen stops its periodic timer
        (sched_context_switch), so a periodic tick never wakes a sleeping vCPU."""
        self.clock.stop_timer(self.periodic)

    def schedule_in(self):
        """Running again: refresh the time record and catch up on the periodic timer
        (vcpu_periodic_timer_work): overdue ticks collapse into one event, now."""
        self.xen.update_vcpu_system_time(self.cpu)
        if self.period_ns:
            self._periodic_work()

    # Timers ---------------------------------------------------------------------------------------
    def set_singleshot(self, deadline):
        self.clock.set_timer(self.singleshot, deadline)
        self.trace.event("timer_set", self.id, timer="singleshot", deadline=deadline)

    def stop_singleshot(self):
        if self.singleshot.active:
            self.trace.event("timer_stop", self.id, timer="singleshot")
        self.clock.stop_timer(self.singleshot)

    def send_timer_event(self):
        self.xen.domain.send_virq(self.id, X.VIRQ_TIMER)

    def _timer_fired(self):
        self.trace.event("timer_fire", self.id, timer="singleshot")
        self.send_timer_event()

    def set_periodic(self, period_ns):
        self.period_ns = period_ns
        if period_ns:
            self.periodic_last = self.clock.now
            deadline = self.clock.now + period_ns
            self.clock.set_timer(self.periodic, deadline)
            self.trace.event("timer_set", self.id, timer="periodic", deadline=deadline,
                             period=period_ns)  # fmt: skip
        else:
            if self.periodic.active:
                self.trace.event("timer_stop", self.id, timer="periodic")
            self.clock.stop_timer(self.periodic)

    def _periodic_fired(self):
        self._periodic_work()

    def _periodic_work(self):
        now = self.clock.now
        deadline = self.periodic_last + self.period_ns
        if now >= deadline:
            self.trace.event("timer_fire", self.id, timer="periodic", periodic=True)
            self.send_timer_event()
            self.periodic_last = now
            deadline = now + self.period_ns
        self.clock.set_timer(self.periodic, deadline)
