# A backend domain driven from the host: domain 0 as tests, examples and the CLI see it.
# It binds interdomain channels with the guest, sends at chosen virtual times, and records
# every event the guest sends it. Its pending bits live in Python (it has no shared_info).
from ..clock import Timer
from .evtchn import Domain

DOM0 = 0


class BackendDomain(Domain):
    def __init__(self, xen):
        super().__init__(DOM0, 1)
        self.xen = xen
        self.clock = xen.machine.clock
        self.trace = xen.machine.trace
        self.pending = set()
        self.masked = set()
        self.handlers = {}
        self.received = []  # (virtual ns, port) for every event the guest sent us

    # What a test or example calls ---------------------------------------------------------------
    def on_event(self, port, fn):
        """fn(port) runs when the guest notifies port; the event is then consumed."""
        self.handlers[port] = fn

    def send(self, port):
        # Traced so that `micropv compare` can time each event from the moment the host sent
        # it (the set_pending that follows shows which guest port it reached).
        self.trace.event("backend_send", -1, port=port)
        return super().send(port)

    def send_at(self, port, when):
        """Send on port at virtual time `when` (now, if it is already past)."""
        self.clock.set_timer(Timer(lambda: self.send(port), f"dom0.send{port}"), when)

    # 2-level operations, host side ----------------------------------------------------------------
    def set_pending(self, port):
        self.stats["set_pending"] += 1
        if port in self.pending:
            self.stats["coalesced"] += 1
            return
        self.received.append((self.clock.now, port))
        self.trace.event("backend_event", -1, port=port)
        fn = self.handlers.get(port)
        if fn is None or port in self.masked:
            self.pending.add(port)
            return
        fn(port)

    def unmask(self, port):
        self.masked.discard(port)
        if port in self.pending and port in self.handlers:
            self.pending.discard(port)
            self.handlers[port](port)

    def clear_pending(self, port):
        self.pending.discard(port)

    def is_pending(self, port):
        return port in self.pending

    def is_masked(self, port):
        return port in self.masked
