# Host events the explorer places, and when each is possible (enabledness, Regehr's rule):
#   send(P)  the backend domain (dom0) sends on its port P: only while P is bound to a guest
#            port (an interdomain channel the guest's backend() offered and the guest bound)
#   timer    vCPU0's singleshot timer expires: only while it is armed (set_timer_op or
#            VCPUOP_set_singleshot_timer); virtual time moves up to its deadline, never back
from micropv.runtime.abi import xen as X

from ..xen.evtchn import ECS_INTERDOMAIN

# Per-point event state, one small int per event kind (record.py stores a tuple of them).
ENABLED = 1
MASKED = 2  # the guest port's mask bit is set
PENDING = 4  # the guest port's pending bit is set: a send now coalesces


class EventKind:
    moves_time = False
    name = spec = "?"

    def guest_port(self, m):
        raise NotImplementedError

    def enabled(self, m):
        raise NotImplementedError

    def fire(self, m):
        raise NotImplementedError

    def prober(self, m):
        """A function () -> ENABLED | MASKED | PENDING for this kind on machine m, now (0
        when not enabled). It runs at every choice point, so it caches what it can."""
        cache = [None]  # (guest port, buf, pending byte, mask byte, bit)

        def state():
            if not self.enabled(m):
                return 0
            g = self.guest_port(m)
            if g is None:
                return ENABLED
            c = cache[0]
            if c is None or c[0] != g or c[1] is not m.hypervisor.shared_info.buf:
                si = m.hypervisor.shared_info
                lay = m.hypervisor.layout
                w = 8 * (g >> 6) + ((g & 63) >> 3)
                c = cache[0] = (g, si.buf, si.base + lay.evtchn_pending + w,
                                si.base + lay.evtchn_mask + w, 1 << (g & 7))  # fmt: skip
            _, buf, pa, ma, bit = c
            st = ENABLED
            if buf[ma] & bit:
                st |= MASKED
            if buf[pa] & bit:
                st |= PENDING
            return st

        return state

    def __repr__(self):
        return self.name

    def __eq__(self, other):
        return isinstance(other, EventKind) and self.name == other.name

    def __hash__(self):
        return hash(self.name)


class Send(EventKind):
    def __init__(self, port):
        self.port = port
        self.name = f"send({port})"
        self.spec = f"send:{port}"

    def enabled(self, m):
        chn = m.hypervisor.backend.channels.get(self.port)
        return chn is not None and chn.state == ECS_INTERDOMAIN

    def guest_port(self, m):
        chn = m.hypervisor.backend.channels.get(self.port)
        if chn is None or chn.state != ECS_INTERDOMAIN:
            return None
        return chn.remote[1]

    def fire(self, m):
        m.hypervisor.backend.send(self.port)

    def prober(self, m):
        # The backend's Channel object for our port is made once and changes in place.
        chans = m.hypervisor.backend.channels
        port = self.port
        bits = [None]  # (guest port, buf, pending byte, mask byte, bit)
        si = m.hypervisor.shared_info
        lay = m.hypervisor.layout

        def state():
            chn = chans.get(port)
            if chn is None or chn.state != ECS_INTERDOMAIN:
                return 0
            g = chn.remote[1]
            c = bits[0]
            if c is None or c[0] != g or c[1] is not si.buf:
                w = 8 * (g >> 6) + ((g & 63) >> 3)
                c = bits[0] = (g, si.buf, si.base + lay.evtchn_pending + w,
                               si.base + lay.evtchn_mask + w, 1 << (g & 7))  # fmt: skip
            _, buf, pa, ma, bit = c
            return ENABLED | (MASKED if buf[ma] & bit else 0) | (PENDING if buf[pa] & bit else 0)

        return state


class Timer(EventKind):
    moves_time = True
    name = "timer"
    spec = "timer"

    def enabled(self, m):
        return m.hypervisor.vcpus[0].singleshot.active

    def guest_port(self, m):
        return m.hypervisor.domain.virq_to_port[0][X.VIRQ_TIMER] or None

    def fire(self, m):
        t = m.hypervisor.vcpus[0].singleshot
        clock = m.clock
        if t.deadline > clock.now:
            clock.now = t.deadline  # forward only: the guest's pvclock stays monotonic
        clock.fire_due()

    def prober(self, m):
        timer = m.hypervisor.vcpus[0].singleshot
        general = super().prober(m)

        def state():
            return general() if timer.active else 0

        return state


def parse_events(spec):
    """'send:1,send:2,timer' -> [Send(1), Send(2), Timer()]."""
    kinds = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item == "timer":
            kinds.append(Timer())
        elif item.startswith("send:"):
            try:
                kinds.append(Send(int(item[5:], 0)))
            except ValueError:
                raise ValueError(f"--events: bad port in {item!r}") from None
        else:
            raise ValueError(f"--events: unknown event {item!r} (send:PORT or timer)")
    if len(set(kinds)) != len(kinds):
        raise ValueError("--events: an event is listed twice")
    return kinds


def parse_kind(name):
    """'send(1)' or 'timer' (the schedule string's spelling) -> an EventKind."""
    if name == "timer":
        return Timer()
    if name.startswith("send(") and name.endswith(")"):
        return Send(int(name[5:-1], 0))
    raise ValueError(f"unknown event {name!r} in schedule")


def default_kinds(machine):
    """Every port the guest's backend() set up on dom0, plus the vCPU timer."""
    from ..xen.evtchn import ECS_FREE, ECS_RESERVED

    be = machine.backend
    ports = sorted(p for p, c in be.channels.items() if c.state not in (ECS_FREE, ECS_RESERVED))
    return [Send(p) for p in ports] + [Timer()]
