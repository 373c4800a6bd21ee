# The sweep as a picture: the latency CDF of each combination, and what each paid per event,
# by kind of exit. matplotlib is an optional extra (`pip install 'micropv[plot]'`): it is
# imported here, when a plot is asked for, and with the Agg backend, so no display is needed.
from .report import AXES

EXIT_KINDS = (("hypercall", "hypercalls_per_event"), ("hlt", "hlts_per_event"),
              ("EOI", "eois_per_event"), ("other MMIO", "mmio_per_event"))  # fmt: skip
MISSING = "--plot needs matplotlib, which is not installed: pip install 'micropv[plot]'"


def available():
    """True when matplotlib can be imported (checked before a sweep, not after it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _labels(rows):
    """One short label per row from the combination values that vary in the sweep."""
    axes = [a for a in AXES if len({r[a] for r in rows}) > 1] or ["callback"]
    return [" ".join(str(r[a]) if a != "seed" else f"seed {r[a]}" for a in axes) for r in rows]


def write_png(results, path):
    """results: [(row, sorted latencies)], as sweep.run_all returns them. Writes a PNG with
    the latency CDFs on the left and exits per delivered event on the right."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(MISSING) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r, _ in results]
    labels = _labels(rows)
    fig, (cdf, bars) = plt.subplots(1, 2, figsize=(14, 6), width_ratios=(1, 1.2))
    title = f"{rows[0]['workload']} on {rows[0]['board']}" if rows else "micropv compare"
    fig.suptitle(f"micropv compare: {title} (virtual time)")

    colors = plt.get_cmap("tab20").colors
    styles = ("-", "--", ":", "-.")
    for i, (label, (_, lat)) in enumerate(zip(labels, results)):
        if not lat:
            continue  # nothing delivered: no curve (the bars say so too)
        n = len(lat)
        # Runs often coincide for most events; colours and dash styles keep them apart.
        cdf.step([v / 1000 for v in lat], [(k + 1) / n for k in range(n)], where="post",
                 label=label, color=colors[i % len(colors)],
                 linestyle=styles[(i // len(colors)) % len(styles)])  # fmt: skip
    cdf.set_xscale("log")
    cdf.set_xlabel("latency from send to handler start (virtual us)")
    cdf.set_ylabel("fraction of delivered events")
    cdf.set_ylim(0, 1.02)
    cdf.grid(True, which="both", alpha=0.3)
    if cdf.lines:
        cdf.legend(fontsize="small")
    else:
        cdf.text(0.5, 0.5, "no event delivered", ha="center", transform=cdf.transAxes)

    width = 0.8 / len(EXIT_KINDS)
    for k, (name, key) in enumerate(EXIT_KINDS):
        xs = [i + (k - (len(EXIT_KINDS) - 1) / 2) * width for i in range(len(rows))]
        bars.bar(xs, [r[key] or 0 for r in rows], width, label=name)
    bars.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize="small")
    bars.set_ylabel("exits per delivered event")
    for i, r in enumerate(rows):
        if not r["delivered"]:
            bars.annotate("nothing delivered", (i, 0), ha="center", va="bottom",
                          rotation=90, fontsize="x-small")  # fmt: skip
    bars.legend(fontsize="small")
    bars.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
