# The first guest to run: say hello, then show what the runtime found at boot.
#   micropv run examples/hello.py


def main(rt):
    rt.console_write("Hello from a Python guest on micropv!\n")
    major, minor = rt.xen_version
    rt.console_write("Xen %d.%d%s found at %s\n"
                     % (major, minor, rt.extraversion(), rt.xen_found_at))  # fmt: skip
    t1 = rt.clock_monotonic()
    t2 = rt.clock_monotonic()
    rt.console_write("pvclock: %d ns since boot, then %d ns\n" % (t1, t2))
    wall = rt.clock_wall()
    rt.console_write("wallclock: %d.%09d s since the Unix epoch\n"
                     % (wall // 1000000000, wall % 1000000000))  # fmt: skip
    return 0
