# An event storm: the host backend sends bursts on several channels at seeded pseudo-random
# virtual times, while the guest masks and unmasks those ports at random and blocks in
# between. Made for `micropv compare storm`, where it shows which policies lose events.
#   micropv run examples/storm.py [--seed S] [--arg ports=4] [--arg bursts=40] [--arg ms=20]
#
# Two details make the known losses happen on every seed, not by luck:
# - The guest unmasks inside a critical section (interrupts off), as a driver does from its
#   interrupt handler or under a spin_lock_irqsave. With software resend and the per-vCPU
#   LAPIC vector, unmasking a port that became pending while masked gets stuck for good
#   (guest-anchors §7.6).
# - Each handler run acknowledges the backend (a send back on the same channel). Once a port's
#   last burst is out, the backend answers the next acknowledgement with one more event, at
#   once: it arrives while the guest's handler for that port is still running, so a guest
#   that clears pending after its handler erases it (guest-anchors §7.4).
import random

US = 1000
MS = 1000000
READY = 1  # sync stage: the guest is set up; the bursts are timed from here
DRAIN = 2 * MS  # after the storm: long enough for the last deliveries and re-sends


def backend(machine, args):
    """Host side: one channel per port, a seeded burst plan, the re-send on acknowledgement."""
    rng = random.Random(machine.seed)
    be = machine.backend
    nports = args.get("ports", 4)
    span = args.get("ms", 20) * MS
    bports = [be.alloc_unbound(machine.domid) for _ in range(nports)]
    plan = []  # (offset from READY in ns, backend port)
    for _ in range(args.get("bursts", 40)):
        port = rng.choice(bports)
        t = rng.randrange(span)
        for _ in range(rng.randint(1, 4)):
            plan.append((t, port))
            t += rng.randrange(200, 3000)  # sends within a burst: a few hundred ns to 3 us
    plan.sort()
    last = {}
    for t, port in plan:
        last[port] = t
    state = {"t0": None, "resent": set()}

    def on_sync(m, msg):
        if msg.a == READY:
            state["t0"] = t0 = m.clock.now
            for t, port in plan:
                be.send_at(port, t0 + t)

    def on_ack(port):
        t0 = state["t0"]
        if t0 is None or port in state["resent"] or port not in last:
            return
        if machine.clock.now >= t0 + last[port]:  # the port's last burst is out
            state["resent"].add(port)
            be.send(port)

    for port in bports:
        be.on_event(port, on_ack)
    machine.on_sync = on_sync
    end = plan[-1][0] if plan else 0
    return {"backend_ports": bports, "storm_ns": end + 1, "planned": len(plan)}


class LCG:
    """A small seeded generator the guest can run on MicroPython (no `random` there)."""

    def __init__(self, seed):
        self.x = (seed * 2654435761 + 1) & 0x7FFFFFFF

    def next(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


def main(rt):
    cfg = rt.config
    ev = rt.events
    ports = []
    for bport in cfg["backend_ports"]:
        port = ev.bind_interdomain(0, bport)
        ev.clear(port)  # Xen marks a freshly bound port pending; not an event
        ports.append(port)
    runs = {}

    def on_event(port):
        runs[port] += 1
        ev.send(port)  # acknowledge: tell the backend its requests were consumed

    for port in ports:
        runs[port] = 0
        rt.bind(port, on_event)

    def unmask(port):
        rt.arch.cli()  # a critical section, as in an interrupt handler
        ev.unmask(port)
        rt.arch.sti()

    rng = LCG(cfg["seed"])
    masked = []
    masks = 0
    rt.sync(READY)
    end = rt.clock_monotonic() + cfg["storm_ns"]
    while True:
        now = rt.clock_monotonic()
        if now >= end:
            break
        r = rng.next(4)
        if r == 0 and len(masked) < len(ports):
            port = ports[rng.next(len(ports))]
            if port not in masked:
                ev.mask(port)
                masked.append(port)
                masks += 1
        elif r == 1 and masked:
            unmask(masked.pop(rng.next(len(masked))))
        rt.yield_until(now + 20 * US + rng.next(300) * US)
    while masked:
        unmask(masked.pop())
    rt.sleep_until(rt.clock_monotonic() + DRAIN)
    stuck = [p for p in ports if ev.is_pending(p)]
    total = sum(runs[p] for p in ports)
    rt.console_write("storm: %d handler runs on %d ports, %d masks, %d planned sends, %s\n"
                     % (total, len(ports), masks, cfg["planned"],
                        "ok" if not stuck else "ports %r left pending" % stuck))  # fmt: skip
    return 0 if not stuck and all(runs[p] for p in ports) else 1
