# Conflict segments (race-explorer.md §2.3): moving a host event across a step that touches
# none of its shared words gives an equivalent run, so one placement per segment is tried.
#
# A step (the piece of execution between two choice points) conflicts with an event when:
#   - it reads or writes a word the event writes, or writes a word the event reads: the port's
#     pending and mask words, and -- unless the port is masked then -- the selector and
#     upcall_pending (and the LAPIC IRR, always written with them); time and the timer for a
#     timer expiry;
#   - it changes RFLAGS.IF, halts or sleeps, takes an interrupt, runs a handler, writes EOI,
#     or makes any hypercall but console/version ones (each touches event state in Xen);
#   - it runs guest Python while the event, landing there, would be delivered at once
#     (IF=1, port unmasked): the handler's Python effects are invisible to the HAL, so they
#     must be assumed to race with the step's own Python code;
#   - it holds something a monitor reads: the runtime noting the port's handler run (for a
#     send), a wait opening or closing (for a timer expiry).
# A send to a port already pending changes no state (Xen coalesces it), but it is still tried:
# the lost-wakeup check is about sends, and a coalesced one is exactly how a clear-after-
# handler demux loses an event.
# Logging is complete for Python guests (every shared access goes through the HAL or a
# hypercall) and for the runtime's stubs (each instruction is classified).
from . import events as E
from .record import (
    HAL,
    IDLE,
    INSN,
    P_ADDR,
    P_IF,
    P_KIND,
    P_OP,
    P_RW,
    P_SIZE,
    P_ST,
    P_TLEN,
    P_TSC,  # fmt: skip
    P_W,
)

ALL = "ALL"
_INERT_HYPERCALLS = frozenset(("console_io", "xen_version"))
_TIMER_HYPERCALLS = frozenset(("set_timer_op", "vcpu_op"))
_ALL_TRACE = frozenset((
    "upcall_pending", "inject", "eoi", "hlt", "wake", "block", "handler_start", "handler_end",
    "ucall", "end", "callback_via", "upcall_vector", "register_vcpu_info", "map_shared_info",
    "hypercall_page", "poll_timeout", "mmio",
))  # fmt: skip
_TIMER_TRACE = frozenset(("timer_set", "timer_stop", "timer_fire"))
# Stub instructions: these touch IF, halt, trap to Xen, reach devices or MSRs.
_ALL_MNEMONICS = frozenset((
    "sti", "cli", "popf", "popfq", "iret", "iretq", "iretd", "hlt", "vmcall", "vmmcall", "out",
    "in", "outsb", "insb", "wrmsr", "rdmsr", "lgdt", "lidt", "ltr", "int3", "int", "ud2",
    "retf", "retfq", "syscall", "sysret", "sysretq", "mov ss",
))  # fmt: skip
_STACK_MNEMONICS = frozenset(("push", "pop", "call", "ret", "lea", "pushfq", "jmp"))


class Sig:
    """What one step touched: conflicts with everything (all), or read/write sets of shared
    words; python: the step runs guest Python (handler effects may race with it)."""

    __slots__ = ("all", "reads", "writes", "python", "handled", "waits")

    def __init__(self):
        self.all = False
        self.reads = set()
        self.writes = set()
        self.python = False
        self.handled = set()  # guest ports whose handler the runtime noted in this step
        self.waits = False  # the runtime opened or closed a wait (HAL.note wait / woke)


_DISASM = []


def classify_instruction(code, address):
    """'all', 'time' or 'plain' for the instruction at the start of code."""
    if not _DISASM:
        from capstone import CS_ARCH_X86, CS_MODE_64, Cs

        _DISASM.append(Cs(CS_ARCH_X86, CS_MODE_64))
    for _, _, mnemonic, op_str in _DISASM[0].disasm_lite(code, address, 1):
        if mnemonic in ("rdtsc", "rdtscp"):
            return "time"
        if mnemonic in _ALL_MNEMONICS or (mnemonic == "mov" and op_str.startswith("ss")):
            return "all"
        if "[" in op_str and mnemonic not in _STACK_MNEMONICS:
            return "all"  # a memory operand: maybe MMIO (the LAPIC) or a shared page
        return "plain"
    return "all"


def shared_words(layout, addr, size):
    """The shared words [addr, addr+size) overlaps: ('P', w), ('M', w), 'SEL', 'UP', 'TIME'."""
    out = []
    si = layout["si"]
    if si is None or addr is None:
        return out
    end = addr + size
    for tag, off in (("P", layout["pending"]), ("M", layout["mask"])):
        lo = si + off
        if addr < lo + 512 and end > lo:
            first = max(addr, lo) - lo
            last = min(end, lo + 512) - 1 - lo
            out.extend((tag, w) for w in range(first >> 3, (last >> 3) + 1))
    vi = layout["vcpu_info"]
    if vi is not None and addr < vi + layout["vcpu_info_size"] and end > vi:
        a, b = max(addr, vi) - vi, min(end, vi + layout["vcpu_info_size"]) - vi
        if a <= layout["upcall_pending"] < b:
            out.append("UP")
        sel = layout["pending_sel"]
        if a < sel + 8 and b > sel:
            out.append("SEL")
        t = layout["time"]
        if a < t + 32 and b > t:
            out.append("TIME")
    return out


def piece_sig(rec, j):
    """The Sig of the step between point j and point j+1 (cached on the record)."""
    cache = rec.__dict__.setdefault("_sigs", {})
    sig = cache.get(j)
    if sig is not None:
        return sig
    sig = Sig()
    pts = rec.points
    p = pts[j]
    lay = rec.layout
    if j + 1 >= len(pts):
        sig.all = True  # the run ends after it
        cache[j] = sig
        return sig
    q = pts[j + 1]
    if p[P_IF] != q[P_IF]:
        sig.all = True
    for ev in rec.trace[p[P_TLEN] : q[P_TLEN]]:
        what = ev[2]
        if what == "hypercall":
            name = ev[3].get("name")
            if name in _INERT_HYPERCALLS:
                continue
            if name in _TIMER_HYPERCALLS:
                sig.reads.add("TIMER")
                sig.writes.add("TIMER")
                continue
            sig.all = True
        elif what == "set_pending":
            port = ev[3]["port"]
            sig.writes.add(("P", port >> 6))
            sig.reads.add(("M", port >> 6))
            if not ev[3].get("coalesced"):
                sig.writes.update(("SEL", "UP"))
        elif what in _ALL_TRACE:
            sig.all = True
        elif what in _TIMER_TRACE:
            sig.writes.add("TIMER")
        elif what == "note":
            # What the monitors read: a send moved across its port's handler run, or a timer
            # expiry across a wait's start or end, changes the verdict if not the state.
            note = ev[3].get("what")
            if note in ("handler", "dispatch"):
                sig.handled.add(ev[3].get("value"))
            elif note in ("wait", "woke"):
                sig.waits = True
    if q[P_TSC] != p[P_TSC]:
        sig.reads.add("TIME")
    kind = p[P_KIND]
    if kind == HAL:
        if p[P_OP] == "run":
            sig.python = not rec.layout.get("stub_points", True)
        else:
            sig.python = True
            rw = p[P_RW]
            for word in shared_words(lay, p[P_ADDR], p[P_SIZE]):
                if "r" in rw:
                    sig.reads.add(word)
                if "w" in rw:
                    sig.writes.add(word)
    elif kind == INSN:
        addr = p[P_ADDR]
        if addr == lay.get("return_point"):
            sig.python = True  # the return to Python: guest code runs until the next HAL call
        else:
            cls = lay["insn_class"].get(addr, "all")
            if cls == "all":
                sig.all = True
            elif cls == "time":
                sig.reads.add("TIME")
    elif kind == IDLE:
        sig.all = True
    cache[j] = sig
    return sig


def event_access(kind, st, layout):
    """(reads, writes) of the shared words a host event of kind touches in state st."""
    g = layout["guest_ports"].get(kind.name)
    reads, writes = set(), set()
    if g is not None:
        w = g >> 6
        reads.update((("P", w), ("M", w)))
        writes.add(("P", w))
        if not st & E.MASKED:
            reads.update(("SEL", "UP"))
            writes.update(("SEL", "UP"))
    if kind.moves_time:
        reads.update(("TIME", "TIMER"))
        writes.update(("TIME", "TIMER"))
    return reads, writes


def conflicts(rec, j, ki, kind):
    """Does the step after point j conflict with an event of kind (index ki) placed at j?"""
    sig = piece_sig(rec, j)
    if sig.all:
        return True
    st = rec.points[j][P_ST][ki]
    if sig.handled and rec.layout["guest_ports"].get(kind.name) in sig.handled:
        return True
    if sig.waits and kind.moves_time:
        return True
    reads, writes = event_access(kind, st, rec.layout)
    if sig.writes & (reads | writes) or sig.reads & writes:
        return True
    if (sig.python and rec.points[j][P_IF] and not st & E.MASKED and st & E.ENABLED
            and j not in rec.safe):  # fmt: skip
        return True  # delivered at once: its handler's Python races with this step's Python
    return False


def segments(rec, ki, kind, lo=0, prune=True):
    """(start, end) point ranges from lo on, each a set of equivalent placements for kind:
    the event placed anywhere in [start, end] gives the same run. Without prune, every point
    is its own segment (the plain enumeration)."""
    n = len(rec.points)
    start = lo
    for j in range(lo, n):
        if not prune or j == n - 1 or conflicts(rec, j, ki, kind):
            yield start, j
            start = j + 1


def enabled_count(rec, ki, lo=0, hi=None):
    """How many choice points in [lo, hi) have kind ki enabled (plain placements there),
    the plain stub instructions each stored point stands for included."""
    pts = rec.points
    hi = len(pts) if hi is None else hi
    return sum(pts[j][P_W] for j in range(lo, hi) if pts[j][P_ST][ki] & E.ENABLED)


def width(rec, s, e):
    """Choice points in the segment [s, e]."""
    return sum(p[P_W] for p in rec.points[s : e + 1])
