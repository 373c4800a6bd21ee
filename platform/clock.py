# Virtual time. Nothing in micropv reads the wall clock: time advances by a fixed, documented
# cost per operation and jumps to the next deadline when the vCPU is idle. Same guest, board,
# options and seed give the same times, so traces and races replay exactly (DESIGN §3).
import heapq

from .emu.stop import EXIT_BUDGET, Outcome, Stop

# The cost model, in virtual nanoseconds (docs/virtual-time.md explains the choice).
COST_HAL_MEM_NS = 5  # one guest memory access made by guest Python through the HAL
COST_RUN_SLICE_NS = 40  # one run of emulated guest code between two returns to the host
COST_HYPERCALL_NS = 250  # a hypercall: trap, handler and return
COST_INJECT_NS = 100  # delivering one interrupt (frame push and gate lookup)
COST_BRIDGE_NS = 20  # emulated code calling into a guest Python handler

# The virtual TSC runs at 2 GHz, so pvclock's scale is exact: mul = 2^31, shift = 0.
TSC_HZ = 2_000_000_000
TSC_PER_NS = TSC_HZ // 1_000_000_000


class BudgetExceeded(Stop):
    """Virtual time went past the run's budget: the run ends, whatever the guest was doing."""

    def __init__(self, now, budget):
        super().__init__(
            Outcome("budget", EXIT_BUDGET, f"virtual-time budget of {budget} ns exhausted")
        )
        self.now = now
        self.budget = budget


class Timer:
    """A one-shot host event at an absolute virtual time (Xen's struct timer)."""

    __slots__ = ("deadline", "fn", "name", "active", "_seq")

    def __init__(self, fn, name):
        self.fn = fn
        self.name = name
        self.active = False
        self.deadline = 0
        self._seq = 0


class VirtualClock:
    def __init__(self, budget_ns=None):
        self.now = 0
        self.budget_ns = budget_ns
        self._heap = []
        self._seq = 0
        # The earliest time at which advancing has something to do (a timer or the budget);
        # hot paths inline `now += ns; if now >= due: settle()`. It may be early, never late.
        self._limit = budget_ns + 1 if budget_ns is not None else float("inf")
        self.due = self._limit

    def tsc(self):
        return self.now * TSC_PER_NS

    def advance(self, ns):
        self.now += ns
        if self.now >= self.due:
            self.settle()

    def settle(self):
        """Fire what is due and enforce the budget."""
        self._fire_due()
        if self.budget_ns is not None and self.now > self.budget_ns:
            raise BudgetExceeded(self.now, self.budget_ns)

    # Timers -----------------------------------------------------------------------------
    def set_timer(self, timer, deadline):
        """Arm (or re-arm) timer at an absolute virtual time; a past deadline fires at the
        next advance, as Xen's timer softirq would run it on the way back to the guest."""
        self._seq += 1
        timer.deadline = deadline
        timer.active = True
        timer._seq = self._seq
        heapq.heappush(self._heap, (deadline, self._seq, timer))
        if deadline < self.due:
            self.due = deadline

    def stop_timer(self, timer):
        timer.active = False  # lazily dropped from the heap

    def next_deadline(self):
        while self._heap:
            deadline, seq, timer = self._heap[0]
            if timer.active and timer._seq == seq:
                return deadline
            heapq.heappop(self._heap)
        return None

    def fire_due(self):
        if self._heap and self._heap[0][0] <= self.now:
            self._fire_due()

    def _fire_due(self):
        while self._heap and self._heap[0][0] <= self.now:
            deadline, seq, timer = heapq.heappop(self._heap)
            if timer.active and timer._seq == seq:
                timer.active = False
                timer.fn()
        self.due = min(self._heap[0][0], self._limit) if self._heap else self._limit

    def skip_to_next_deadline(self):
        """Idle: jump to the next deadline and fire it. False when nothing is armed."""
        deadline = self.next_deadline()
        if deadline is None:
            return False
        if self.budget_ns is not None and deadline > self.budget_ns:
            self.now = self.budget_ns
            raise BudgetExceeded(deadline, self.budget_ns)
        if deadline > self.now:
            self.now = deadline
        self._fire_due()
        return True
