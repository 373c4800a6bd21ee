# A sweep's rows as people and programs read them: a table (plain text, or rich's on a
# terminal when rich is installed), JSON and CSV. JSON and CSV hold every key of every row;
# the table shows the ones worth a glance, and names the combination values that did not vary
# once, above it, instead of repeating them on every line.
import csv
import json

# Combination columns; one with a single value across the sweep moves to the title.
AXES = ("callback", "unmask", "handlers", "clear", "seed")
# (header, row key, formatter name) of the table's metric columns.
METRICS = (
    ("end", "status", "end"),
    ("sent", "sent", "int"),
    ("deliv", "delivered", "int"),
    ("coal", "coalesced", "int"),
    ("lost", "lost", "int"),
    ("held", "withheld", "int"),
    ("upc", "upcalls", "int"),
    ("spur", "spurious", "int"),
    ("eoi", "eois", "int"),
    ("hc/ev", "hypercalls_per_event", "ratio"),
    ("hlt/ev", "hlts_per_event", "ratio"),
    ("eoi/ev", "eois_per_event", "ratio"),
    ("mmio/ev", "mmio_per_event", "ratio"),
    ("hc/unm", "hypercalls_per_unmask", "ratio"),
    ("p50", "latency_p50_ns", "ns"),
    ("p99", "latency_p99_ns", "ns"),
    ("max", "latency_max_ns", "ns"),
    ("wall", "wall_s", "wall"),
)


def _ns(v):
    """Virtual ns, short: 185 ns, 12.3 us, 2.89 ms."""
    if v < 1000:
        return f"{v} ns"
    if v < 1_000_000:
        return f"{v / 1000:.1f} us"
    return f"{v / 1_000_000:.2f} ms"


def cell(row, key, kind):
    v = row[key]
    if kind == "end":
        if v == 0:
            return "ok"
        return f"exit {v}" if row["outcome"] == "shutdown" else f"{row['outcome']} ({v})"
    if v is None:
        return "-"
    if kind == "ratio":
        return f"{v:.2f}"
    if kind == "ns":
        return _ns(v)
    if kind == "wall":
        return f"{v:.2f} s"
    return str(v)


def layout(rows):
    """(title, headers, cell rows, which columns are numbers) of a non-empty sweep."""
    axes = [a for a in AXES if len({r[a] for r in rows}) > 1] or ["callback"]
    fixed = [f"{a} {rows[0][a]}" for a in AXES if a not in axes]
    title = f"{rows[0]['workload']} on {rows[0]['board']}" + (
        f": {', '.join(fixed)}" if fixed else ""
    )
    headers = axes + [h for h, _, _ in METRICS]
    cells = [[str(r[a]) for a in axes] + [cell(r, k, kind) for _, k, kind in METRICS]
             for r in rows]  # fmt: skip
    numeric = [False] * len(axes) + [kind != "end" for _, _, kind in METRICS]
    return title, headers, cells, numeric


def plain_table(rows):
    """The table as plain text: columns padded, numbers right-aligned."""
    if not rows:
        return "(no runs)\n"
    title, headers, cells, numeric = layout(rows)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values):
        out = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(headers), rule] + [line(c) for c in cells]) + "\n"


def rich_table(rows):
    """The same table as a rich Table, or None when rich is not installed."""
    try:
        from rich.table import Table
    except ImportError:
        return None
    title, headers, cells, numeric = layout(rows)
    table = Table(title=title, title_justify="left")
    for i, (h, num) in enumerate(zip(headers, numeric)):
        # Never squeeze a number into an ellipsis: a terminal too narrow wraps the lines.
        width = max(len(h), *(len(c[i]) for c in cells))
        table.add_column(h, justify="right" if num else "left", no_wrap=True, min_width=width)
    for c in cells:
        table.add_row(*c)
    return table


def print_table(rows, out, plain=False):
    """Rich's table when rich is installed and `out` is a terminal (a pipe or a file gets plain
    text, which does not depend on a terminal width); plain text otherwise."""
    if rows and not plain and hasattr(out, "isatty") and out.isatty():
        table = rich_table(rows)
        if table is not None:
            from rich.console import Console

            Console(file=out).print(table, crop=False)  # see min_width above
            return
    out.write(plain_table(rows))


def columns(rows):
    """Every key, in the order rows have them (all rows have the same keys)."""
    return list(rows[0]) if rows else []


def write_json(rows, path):
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns(rows))
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
