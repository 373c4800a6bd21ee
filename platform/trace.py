# The run's event record: hypercalls, injections, halts and wakes, with virtual time and vCPU.
# Disabled by default; when off, event() is one attribute test.


class Trace:
    def __init__(self, clock, enabled=False):
        self.clock = clock
        self.enabled = enabled
        self.events = []

    def event(self, what, vcpu, /, **fields):  # positional-only: fields may be named `what`
        if self.enabled:
            self.events.append((self.clock.now, vcpu, what, fields))

    def of_kind(self, what):
        return [e for e in self.events if e[2] == what]
