# Event channels, 2-level ABI, as Xen implements them. Ref: xen/common/event_channel.c (the
# channel table and its operations) and xen/common/event_2l.c (the pending/mask bitmaps).
# A Domain owns a port table; the guest domain's bitmaps live in its shared_info page, the
# host backend's in Python (platform/xen/backend.py).
from micropv.runtime.abi import event_channel as E
from micropv.runtime.abi import xen as X

from .errors import XenError

ECS_FREE = 0
ECS_RESERVED = 1
ECS_UNBOUND = 2
ECS_INTERDOMAIN = 3
ECS_PIRQ = 4
ECS_VIRQ = 5
ECS_IPI = 6
STATE_NAMES = {ECS_FREE: "free", ECS_RESERVED: "reserved", ECS_UNBOUND: "unbound",
               ECS_INTERDOMAIN: "interdomain", ECS_PIRQ: "pirq", ECS_VIRQ: "virq",
               ECS_IPI: "ipi"}  # fmt: skip

# Xen grows a domain's valid port range in buckets (EVTCHNS_PER_BUCKET); ports beyond the
# last allocated bucket are invalid (-EINVAL), even below the ABI's limit.
BUCKET = 64
# What libxl gives a domain by default (event_channels = 1023): ports 1..1023.
DEFAULT_MAX_PORT = 1023


class Channel:
    __slots__ = ("port", "state", "notify_vcpu", "remote_domid", "remote", "virq")

    def __init__(self, port):
        self.port = port
        self.state = ECS_FREE
        self.notify_vcpu = 0
        self.remote_domid = 0  # ECS_UNBOUND: who may bind to it
        self.remote = None  # ECS_INTERDOMAIN: (domain, port)
        self.virq = 0


class Domain:
    """A domain's event-channel table. Subclasses provide the 2-level bitmap operations
    set_pending / unmask / clear_pending / is_pending / is_masked on ports."""

    def __init__(self, domid, nr_vcpus, max_port=DEFAULT_MAX_PORT):
        self.domid = domid
        self.nr_vcpus = nr_vcpus
        self.max_port = min(max_port, E.EVTCHN_2L_NR_CHANNELS - 1)
        self.channels = {0: Channel(0)}
        self.channels[0].state = ECS_RESERVED  # port 0 is never handed out
        self.valid = BUCKET
        self.virq_to_port = [[0] * X.NR_VIRQS for _ in range(nr_vcpus)]
        self.domains = None  # domid -> Domain, set by the hypervisor (for interdomain)
        self.stats = {"set_pending": 0, "coalesced": 0, "sends": 0}

    # The table --------------------------------------------------------------------------------
    def port_is_valid(self, port):
        return 0 <= port < self.valid

    def channel(self, port):
        """The channel for a valid port (free ones included), else -EINVAL."""
        if not self.port_is_valid(port):
            raise XenError(X.EINVAL, f"port {port} is not valid")
        chn = self.channels.get(port)
        if chn is None:
            chn = self.channels[port] = Channel(port)
        return chn

    def get_free_port(self):
        """Lowest free port, as Xen's get_free_port(); -ENOSPC when all are in use."""
        for port in range(1, self.max_port + 1):
            chn = self.channels.get(port)
            if chn is None or chn.state == ECS_FREE:
                if port >= self.valid:
                    self.valid = (port // BUCKET + 1) * BUCKET
                return self.channel(port)
        raise XenError(X.ENOSPC, "no free event channel")

    def lookup_domain(self, domid):
        if domid == X.DOMID_SELF or domid == self.domid:
            return self
        dom = self.domains.get(domid) if self.domains else None
        if dom is None:
            raise XenError(X.ESRCH, f"no domain {domid}")
        return dom

    def _vcpu_ok(self, vcpu):
        if not 0 <= vcpu < self.nr_vcpus:
            raise XenError(X.ENOENT, f"no vCPU {vcpu}")

    # Operations (EVTCHNOP_*) ------------------------------------------------------------------
    def alloc_unbound(self, remote_domid):
        chn = self.get_free_port()
        chn.state = ECS_UNBOUND
        chn.notify_vcpu = 0
        chn.remote_domid = self.domid if remote_domid == X.DOMID_SELF else remote_domid
        return chn.port

    def bind_interdomain(self, remote_domid, remote_port):
        rd = self.lookup_domain(remote_domid)
        lchn = self.get_free_port()
        if not rd.port_is_valid(remote_port):
            raise XenError(X.EINVAL, f"remote port {remote_port} is not valid")
        rchn = rd.channel(remote_port)
        if rchn.state != ECS_UNBOUND or rchn.remote_domid != self.domid:
            raise XenError(X.EINVAL, f"remote port {remote_port} is not unbound for us")
        lchn.state = ECS_INTERDOMAIN
        lchn.notify_vcpu = 0
        lchn.remote = (rd, remote_port)
        rchn.state = ECS_INTERDOMAIN
        rchn.remote = (self, lchn.port)
        # Xen marks the new local end pending: events sent while it was unbound are not lost.
        self.set_pending(lchn.port)
        return lchn.port

    def bind_virq(self, virq, vcpu):
        if not 0 <= virq < X.NR_VIRQS:
            raise XenError(X.EINVAL, f"VIRQ {virq}")
        per_vcpu = virq in X.PER_VCPU_VIRQS
        if not per_vcpu and vcpu != 0:
            raise XenError(X.EINVAL, f"VIRQ {virq} is global: bind it on vCPU 0")
        self._vcpu_ok(vcpu)
        if not per_vcpu and virq not in X.PER_DOMAIN_VIRQS:
            # Global VIRQs belong to their handler domain (the hardware domain by default).
            raise XenError(X.EBUSY, f"VIRQ {virq} belongs to another domain")
        if self.virq_to_port[vcpu][virq]:
            raise XenError(X.EEXIST, f"VIRQ {virq} already bound on vCPU {vcpu}")
        chn = self.get_free_port()
        chn.state = ECS_VIRQ
        chn.virq = virq
        chn.notify_vcpu = vcpu
        self.virq_to_port[vcpu][virq] = chn.port
        return chn.port

    def bind_ipi(self, vcpu):
        self._vcpu_ok(vcpu)
        chn = self.get_free_port()
        chn.state = ECS_IPI
        chn.notify_vcpu = vcpu
        return chn.port

    def send(self, port):
        chn = self.channel(port)
        self.stats["sends"] += 1
        if chn.state == ECS_INTERDOMAIN:
            rd, rport = chn.remote
            rd.set_pending(rport)
        elif chn.state == ECS_IPI:
            self.set_pending(port)
        elif chn.state == ECS_UNBOUND:
            pass  # nobody listens yet: silently dropped
        else:
            raise XenError(X.EINVAL, f"cannot send on a {STATE_NAMES[chn.state]} port")
        return 0

    def close(self, port):
        chn = self.channel(port)
        if chn.state in (ECS_FREE, ECS_RESERVED):
            raise XenError(X.EINVAL, f"port {port} is not in use")
        if chn.state == ECS_VIRQ:
            self.virq_to_port[chn.notify_vcpu][chn.virq] = 0
        elif chn.state == ECS_INTERDOMAIN:
            rd, rport = chn.remote
            rchn = rd.channel(rport)
            rchn.state = ECS_UNBOUND  # the other end may be bound again, by us
            rchn.remote_domid = self.domid
            rchn.remote = None
        # Freeing clears pending and resets the notify vCPU; the mask bit is left alone.
        self.clear_pending(port)
        chn.state = ECS_FREE
        chn.notify_vcpu = 0
        chn.remote = None
        chn.virq = 0
        return 0

    def status(self, port):
        """(EVTCHNSTAT_*, vcpu, u-fields dict) of a valid port."""
        chn = self.channel(port)
        st = chn.state
        if st in (ECS_FREE, ECS_RESERVED):
            return E.EVTCHNSTAT_closed, chn.notify_vcpu, {}
        if st == ECS_UNBOUND:
            return E.EVTCHNSTAT_unbound, chn.notify_vcpu, {"dom": chn.remote_domid}
        if st == ECS_INTERDOMAIN:
            rd, rport = chn.remote
            return E.EVTCHNSTAT_interdomain, chn.notify_vcpu, {"dom": rd.domid, "port": rport}
        if st == ECS_VIRQ:
            return E.EVTCHNSTAT_virq, chn.notify_vcpu, {"virq": chn.virq}
        if st == ECS_IPI:
            return E.EVTCHNSTAT_ipi, chn.notify_vcpu, {}
        return E.EVTCHNSTAT_pirq, chn.notify_vcpu, {}

    def bind_vcpu(self, port, vcpu):
        self._vcpu_ok(vcpu)
        chn = self.channel(port)
        if chn.state == ECS_VIRQ and chn.virq not in X.PER_VCPU_VIRQS:
            chn.notify_vcpu = vcpu
        elif chn.state in (ECS_UNBOUND, ECS_INTERDOMAIN, ECS_PIRQ):
            chn.notify_vcpu = vcpu
        else:
            raise XenError(X.EINVAL, f"a {STATE_NAMES[chn.state]} port cannot move")
        return 0

    def reset(self):
        for port, chn in list(self.channels.items()):
            if chn.state not in (ECS_FREE, ECS_RESERVED):
                self.close(port)
        return 0

    def send_virq(self, vcpu, virq):
        """send_guest_vcpu_virq(): nothing happens unless the VIRQ is bound."""
        port = self.virq_to_port[vcpu][virq]
        if port:
            self.set_pending(port)

    def notify_vcpu_of(self, port):
        chn = self.channels.get(port)
        return chn.notify_vcpu if chn is not None else 0

    # 2-level bitmap operations (subclasses) ---------------------------------------------------
    def set_pending(self, port):
        raise NotImplementedError

    def unmask(self, port):
        raise NotImplementedError

    def clear_pending(self, port):
        raise NotImplementedError

    def is_pending(self, port):
        raise NotImplementedError

    def is_masked(self, port):
        raise NotImplementedError
