# A 1 kHz tick plus backend traffic while blocking: the guest sleeps from tick to tick with
# yield_until, and the host backend sends at seeded pseudo-random virtual times in between.
# Every tick must come on time and every send must reach the handler.
#   micropv run examples/mixed.py [--seed S] [--arg ticks=100] [--arg sends=50] [--arg hz=1000]
import random

US = 1000
MS = 1000000
READY = 1  # sync stage: the guest is set up; the sends are timed from here
SLOT = 100 * US  # sends land on distinct 100 us slots: no two coalesce by accident


def backend(machine, args):
    """Host side: one channel, `sends` sends on distinct random slots of the ticking span."""
    rng = random.Random(machine.seed)
    be = machine.backend
    port = be.alloc_unbound(machine.domid)
    period = 1000000000 // args.get("hz", 1000)
    span = args.get("ticks", 100) * period
    slots = max(span // SLOT - 1, 1)
    n = min(args.get("sends", 50), slots)
    # A random offset inside each slot keeps sends off the tick boundaries' exact times.
    plan = sorted((s + 1) * SLOT + rng.randrange(SLOT // 2) for s in rng.sample(range(slots), n))

    def on_sync(m, msg):
        if msg.a == READY:
            for t in plan:
                be.send_at(port, m.clock.now + t)

    machine.on_sync = on_sync
    return {"backend_port": port, "sends": n}


def main(rt):
    cfg = rt.config
    hz = cfg.get("hz", 1000)
    ticks = cfg.get("ticks", 100)
    period = 1000000000 // hz
    ev = rt.events
    port = ev.bind_interdomain(0, cfg["backend_port"])
    ev.clear(port)  # Xen marks a freshly bound port pending; not an event
    got = [0]

    def on_event(p):
        got[0] += 1

    rt.bind(port, on_event)
    rt.sync(READY)
    start = rt.clock_monotonic()
    late = 0
    for i in range(1, ticks + 1):
        deadline = start + i * period
        while rt.clock_monotonic() < deadline:
            rt.yield_until(deadline)  # returns early for each backend event
        if rt.clock_monotonic() - deadline > period // 2:
            late += 1
    # The last send may land just before the last tick; give its handler time to run.
    rt.sleep_until(rt.clock_monotonic() + period)
    ok = late == 0 and got[0] == cfg["sends"]
    rt.console_write("mixed: %d ticks at %d Hz, %d of %d backend events, %s\n"
                     % (ticks, hz, got[0], cfg["sends"],
                        "ok" if ok else "%d ticks late" % late))  # fmt: skip
    return 0 if ok else 1
